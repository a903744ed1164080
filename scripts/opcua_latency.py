"""Measure the station's OPC UA latencies on this machine: PLC Trigger write -> the line job has the part, and
hub.publish -> a subscribed PLC sees ResultCounter move. The PLC is an asyncua client in a separate process (as on a
line); no model runs, so these are the I/O overheads that add to inference.

    python scripts/opcua_latency.py [--rounds 200] [--interval-ms 10]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def plc(address: str, rounds: int, interval_ms: float, out) -> None:
    """The PLC process: per round write PartId, raise Trigger (time it), wait for ResultCounter to move (time it)."""
    from asyncua import Client

    from engine.lineio.opcua import NAMESPACE_URI

    async def run():
        async with Client(address) as client:
            idx = await client.get_namespace_index(NAMESPACE_URI)
            station = await client.nodes.objects.get_child(f"{idx}:VisInspect")
            part, trigger, counter = [
                await station.get_child(f"{idx}:{n}") for n in ("PartId", "Trigger", "ResultCounter")
            ]
            seen: asyncio.Queue = asyncio.Queue()

            class Handler:
                def datachange_notification(self, node, value, data):
                    seen.put_nowait((value, time.monotonic()))

            sub = await client.create_subscription(interval_ms, Handler())
            await sub.subscribe_data_change(counter)
            await seen.get()  # the initial value
            writes, results = [], []
            for n in range(1, rounds + 1):
                await part.write_value(f"P{n}")
                writes.append(time.monotonic())
                await trigger.write_value(True)
                value, at = await seen.get()
                assert value == n, (value, n)
                results.append(at)
                await trigger.write_value(False)
            await sub.delete()
            out.put((writes, results))

    asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--interval-ms", type=float, default=10.0, help="the PLC's subscription publishing interval")
    args = parser.parse_args()

    from engine.lineio.hub import LineHub, LineVerdict
    from engine.lineio.opcua import OpcUaEndpoint

    hub = LineHub(station="bench")
    got, published = [], []

    def line_job():  # takes each trigger and answers at once, as a zero-time model would
        for _ in range(args.rounds):
            part = hub.next_trigger(30)
            got.append(time.monotonic())
            published.append(time.monotonic())
            hub.publish(LineVerdict.GOOD, 0.01, part=part)

    with OpcUaEndpoint(hub, host="127.0.0.1", port=0) as endpoint:
        job = threading.Thread(target=line_job)
        job.start()
        out = mp.get_context("spawn").Queue()
        child = mp.get_context("spawn").Process(target=plc, args=(endpoint.address, args.rounds, args.interval_ms, out))
        child.start()
        writes, results = out.get(timeout=300)
        child.join()
        job.join()

    def line(label: str, ms: list[float]) -> str:
        q = statistics.quantiles(ms, n=20)
        return f"{label}: p50 {statistics.median(ms):.1f} ms, p95 {q[18]:.1f} ms, max {max(ms):.1f} ms"

    print(f"OPC UA on loopback, {args.rounds} rounds, PLC subscription interval {args.interval_ms:g} ms")
    print(line("Trigger write -> line job has the part", [(g - w) * 1000 for w, g in zip(writes, got)]))
    print(line("publish -> PLC sees ResultCounter", [(r - p) * 1000 for p, r in zip(published, results)]))
    print(line("Trigger write -> PLC sees the result (no model)", [(r - w) * 1000 for w, r in zip(writes, results)]))


if __name__ == "__main__":
    main()
