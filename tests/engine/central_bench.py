"""Measure `visinspect sync` throughput (rows/s) into a throwaway local PostgreSQL with fsync on, and the peak memory
a sync allocates for logs of different sizes (it must not grow with the backlog).

    python -m tests.engine.central_bench [--rows 20000] [--share]

--share also measures a sync that copies each ANOMALY's saved frame (a real JPEG) to a share folder on this disk.
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
import tracemalloc
from pathlib import Path

from engine.central import sync_log
from engine.results import ResultsLog
from engine.results.schema import COLUMNS
from tests.engine.pg_server import PgServer

PASSWORD = "bench-only"


def make_log(path: Path, n: int) -> Path:
    """n rows like a live run's: one in ten an ANOMALY with boxes, regions and a frame path."""
    ResultsLog(path).close()
    box = "[[12, 30, 40, 22, 0.91, 1.3]]"
    rows = (
        {c: None for c in COLUMNS} | {
            "time": 1.7e9 + i * 0.1, "run_id": "live-20261130-080000-ab12", "source": "camera 0", "item": str(i),
            "model_path": "/srv/models/bottle.safetensors", "model_hash": "ab" * 32, "threshold": 0.5,
            "verdict": "ANOMALY" if i % 10 == 0 else "GOOD", "p_anomaly": 0.93 if i % 10 == 0 else 0.02,
            "boxes": box if i % 10 == 0 else "[]", "regions": box, "box_threshold": 0.5, "min_area": 0.001,
        }
        for i in range(n)
    )  # fmt: skip
    with sqlite3.connect(path) as conn:
        conn.executemany(f"INSERT INTO results ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})", rows)
    conn.close()
    return path


def add_frames(log: Path) -> int:
    """Save a JPEG frame for every ANOMALY row as the station does (frames/DATE/<id>.jpg); the frame's size in bytes."""
    from datetime import datetime

    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:768, 0:1024]
    image = ((x + y)[..., None] * np.array([0.1, 0.15, 0.2]) + rng.normal(0, 6, (768, 1024, 3))).clip(0, 255).astype(np.uint8)
    jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    with sqlite3.connect(log) as conn:
        rows = conn.execute("SELECT id, time FROM results WHERE verdict = 'ANOMALY'").fetchall()
        for row_id, when in rows:
            relative = f"frames/{datetime.fromtimestamp(when):%Y-%m-%d}/{row_id}.jpg"
            (log.parent / relative).parent.mkdir(parents=True, exist_ok=True)
            (log.parent / relative).write_bytes(jpeg)
            conn.execute("UPDATE results SET frame_path = ? WHERE id = ?", (relative, row_id))
    conn.close()
    return len(jpeg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--share", action="store_true", help="only measure syncs that copy anomaly frames to a share")
    args = parser.parse_args()
    server, why = PgServer.find(PASSWORD, fsync=True)
    if server is None:
        raise SystemExit(why)
    os.environ["PGPASSWORD"] = PASSWORD
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if args.share:
                for run in range(2):
                    (Path(tmp) / f"share-{run}").mkdir()
                    log = make_log(Path(tmp) / f"share-{run}" / "results.sqlite3", args.rows)
                    size = add_frames(log)
                    share = Path(tmp) / f"share-out-{run}"
                    share.mkdir()
                    t0 = time.perf_counter()
                    report = sync_log(server.url(), log, station=f"share-{run}", share=share)
                    seconds = time.perf_counter() - t0
                    copies = sum(1 for p in share.rglob("*.jpg"))
                    print(f"with a share: {report.sent} rows and {copies} frames of {size / 1024:.0f} KiB copied in "
                          f"{seconds:.2f} s = {report.sent / seconds:,.0f} rows/s ({copies / seconds:,.0f} frames/s)")  # fmt: skip
                return
            for batch in (100, 500, 2000):
                log = make_log(Path(tmp) / f"rate-{batch}.sqlite3", args.rows)
                t0 = time.perf_counter()
                report = sync_log(server.url(), log, station=f"bench-{batch}", batch_size=batch)
                seconds = time.perf_counter() - t0
                print(f"batch {batch:5d}: {report.sent} rows in {seconds:.2f} s = {report.sent / seconds:,.0f} rows/s")
            for n in (args.rows // 4, args.rows, args.rows * 4):
                log = make_log(Path(tmp) / f"mem-{n}.sqlite3", n)
                tracemalloc.start()
                sync_log(server.url(), log, station=f"mem-{n}")
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                print(f"backlog {n:6d} rows: peak Python memory during sync {peak / 2**20:.1f} MiB")
    finally:
        server.close()


if __name__ == "__main__":
    main()
