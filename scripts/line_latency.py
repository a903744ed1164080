"""Measure trigger -> result published on this machine, p50/p95, with the real triggered live job and a model.

Two PLCs: a LineHub trigger in process (the job's own latency: grab + inspect + publish), and, when the OPC UA
endpoint is installed, an asyncua client in a separate process (PartId write, Trigger rising edge, then the
subscribed ResultCounter moving: what a PLC sees). Parts come one at a time, interval-ms apart.

    python scripts/line_latency.py [--size 224] [--rounds 100] [--source SPEC] [--model FILE] [--device cpu]
    PYLON_CAMEMU=1 python scripts/line_latency.py --source "pylon:0?trigger=software&image_dir={parts}"
({parts} in --source is the folder of synthetic parts the script writes.)
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _summary(label: str, ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=20) if len(ms) >= 2 else ms * 19
    return f"{label}: p50 {statistics.median(ms):.1f} ms, p95 {q[18]:.1f} ms, max {max(ms):.1f} ms ({len(ms)} parts)"


def _model(size: int, folder: Path, backbone: str) -> Path:
    """A random-init model at size px saved as a model file (nothing downloaded)."""
    import numpy as np
    import torch

    from engine.data.preprocess import Preprocess
    from engine.model import build_model
    from engine.modelfile import ModelMeta, save_model

    torch.manual_seed(0)
    model, origin = build_model(backbone=backbone, backbone_weights="none")
    meta = ModelMeta(product="latency", backbone=backbone, backbone_weights={"kind": origin.kind, "detail": origin.detail},
                     preprocess=Preprocess(size).to_dict())  # fmt: skip
    calibration = np.random.default_rng(2).integers(40, 220, (8, size, size, 3), dtype=np.uint8)  # lets int8 calibrate
    return save_model(folder / "latency.safetensors", model, meta, calibration=calibration)


def _parts(size: int, folder: Path, n: int = 16) -> Path:
    """n synthetic part images of size x size px (JPEG, as a camera folder would hold)."""
    import cv2
    import numpy as np

    parts = folder / "parts"
    parts.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        image = rng.integers(60, 200, (size, size, 3), dtype=np.uint8)
        cv2.circle(image, (int(rng.integers(20, size - 20)), int(rng.integers(20, size - 20))), 10, (20, 20, 20), -1)
        cv2.imwrite(str(parts / f"part{i:02d}.jpg"), image)
    return parts


class _Line:
    """The triggered live job on its own thread, as serve runs it; publish times noted per counter."""

    def __init__(self, source: str, model: Path, device: str, precision: str) -> None:
        from engine.inference.inspector import Inspector
        from engine.jobs.live import InspectorSlot, live_job
        from engine.lineio.hub import LineHub
        from engine.types import RuntimeOptions

        self.hub = LineHub(station="latency")
        self.published: dict[int, float] = {}
        self.inspect_ms: list[float] = []  # the inspection's own time (preprocess, model, heatmap) per part, in the job
        self.done = threading.Condition()
        self.hub.subscribe(self._on_change)
        inspector = Inspector.open(model, RuntimeOptions(device, precision))
        self.inspector = inspector
        self.runtime = f"{inspector.device_name}, {inspector.precision_name}"
        self.stop = threading.Event()
        self.failure: BaseException | None = None
        self._job = live_job(source, InspectorSlot(inspector, "latency"), None, loop=True, stop=self.stop, hub=self.hub, triggered=True)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.hub.state().ready:
            if self.failure is not None or time.monotonic() > deadline:
                raise SystemExit(f"the line job did not start: {self.failure}")
            time.sleep(0.01)

    def _on_change(self, state, result) -> None:
        if result is not None:
            with self.done:
                self.published[result.counter] = time.perf_counter()
                self.done.notify_all()

    def _run(self) -> None:
        from engine.inference.live import LiveResult

        try:
            for item in self._job:
                if isinstance(item, LiveResult):
                    self.inspect_ms.append(item.inspection.timings.total_ms)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            self.failure = exc

    def wait_for(self, counter: int, timeout: float = 30.0) -> float:
        with self.done:
            if not self.done.wait_for(lambda: counter in self.published, timeout):
                raise SystemExit(f"no result {counter} within {timeout:g} s")
            return self.published[counter]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


def hub_rounds(line: _Line, args) -> tuple[list[float], list[float], int]:
    """Trigger through the hub (a PLC with no transport), one part at a time: trigger -> result published per part,
    the inspection's own time in the job for the same parts, and how many parts were ERROR."""
    triggered, errors = [], 0
    first = len(line.inspect_ms)
    for n in range(args.warmup + args.rounds):
        time.sleep(args.interval_ms / 1000)
        counter = line.hub.state().result_counter + 1  # only this PLC triggers: the next result is this part's
        start = time.perf_counter()
        line.hub.trigger("test", part_id=f"H{n}")
        at = line.wait_for(counter)
        if n >= args.warmup:
            triggered.append((at - start) * 1000.0)
            errors += line.hub.state().last_result.verdict.name == "ERROR"
    return triggered, line.inspect_ms[first + args.warmup :], errors


def plc(address: str, rounds: int, interval_s: float, first_counter: int, out) -> None:
    """The PLC process: per part write PartId, raise Trigger (timed), wait for ResultCounter to move (timed), lower Trigger."""
    from asyncua import Client

    from engine.lineio.opcua import NAMESPACE_URI

    async def run():
        async with Client(address) as client:
            idx = await client.get_namespace_index(NAMESPACE_URI)
            station = await client.nodes.objects.get_child(f"{idx}:VisInspect")
            part, trigger, counter = [await station.get_child(f"{idx}:{n}") for n in ("PartId", "Trigger", "ResultCounter")]
            seen: asyncio.Queue = asyncio.Queue()

            class Handler:
                def datachange_notification(self, node, value, data):
                    seen.put_nowait((value, time.perf_counter()))

            sub = await client.create_subscription(5, Handler())
            await sub.subscribe_data_change(counter)
            await seen.get()  # the initial value
            latencies = []
            for n in range(rounds):
                await asyncio.sleep(interval_s)
                await part.write_value(f"O{n}")
                start = time.perf_counter()
                await trigger.write_value(True)
                while True:
                    value, at = await seen.get()
                    if value >= first_counter + n:
                        break
                latencies.append((at - start) * 1000.0)
                await trigger.write_value(False)
            await sub.delete()
            out.put(latencies)

    asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224, help="model input size in px (default 224)")
    parser.add_argument("--backbone", default="vgg16")
    parser.add_argument("--model", help="a model file to use instead of a random-init one")
    parser.add_argument("--source", help="source spec (default: a folder of 16 synthetic parts at --size px, looped)")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--interval-ms", type=float, default=100.0, help="pause between parts")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(args.model) if args.model else _model(args.size, Path(tmp), args.backbone)
        parts = _parts(args.size, Path(tmp))
        source = args.source.replace("{parts}", str(parts)) if args.source else str(parts)
        line = _Line(source, model, args.device, args.precision)
        try:
            print(f"triggered live job: {args.size} px {args.backbone if not args.model else model.name}, {line.runtime}, "
                  f"source {source}, a part every {args.interval_ms:g} ms + its latency")  # fmt: skip
            hub_ms, inspect_ms, errors = hub_rounds(line, args)
            print(_summary("LineHub trigger -> result published", hub_ms) + (f"; {errors} ERROR" if errors else ""))
            print(_summary("  of which the inspection itself (preprocess, model, heatmap)", inspect_ms))
            if len(inspect_ms) == len(hub_ms):
                print(_summary("  the rest (grab, decode, queue, publish)", [h - i for h, i in zip(hub_ms, inspect_ms)]))
            try:
                from engine.lineio.opcua import OpcUaEndpoint
            except ImportError as exc:
                print(f"OPC UA not measured: {exc}")
                return
            with OpcUaEndpoint(line.hub, host="127.0.0.1", port=0) as endpoint:
                out = mp.get_context("spawn").Queue()
                first = line.hub.state().result_counter + 1
                child = mp.get_context("spawn").Process(target=plc, args=(endpoint.address, args.warmup + args.rounds,
                                                                         args.interval_ms / 1000, first, out))  # fmt: skip
                child.start()
                opc_ms = out.get(timeout=600)[args.warmup :]
                child.join()
            print(_summary("OPC UA client (other process): Trigger write -> sees ResultCounter move", opc_ms))
        finally:
            line.close()


if __name__ == "__main__":
    main()
