#!/usr/bin/env python
"""Does the window slow the line? Parts inspected per second with the station open vs the engine alone.

    python scripts/live_view_rate.py                       # random-init VGG16 at 224 px, 512 px JPEGs
    python scripts/live_view_rate.py --model weights/x.safetensors --images DIR --seconds 60 --json out.json
    PYLON_CAMEMU=1 python scripts/live_view_rate.py --source 'pylon:0?roi=0,0,512,512&frame_rate=120'   # a camera: no decoding

Three figures for the same model file and precision:
1. the live job with no window (what `serve` runs): the looping folder read, decoded, inspected and logged;
2. the engine alone: `Inspector.inspect` on one in-memory frame at batch 1 (`visinspect bench`'s live loop);
3. the real station window (offscreen unless a display is set) on the same looping folder "as fast as
   possible" (a folder is not a live source, so every frame is inspected: the model, not the reader,
   sets the pace), counting after a warm-up the parts inspected (the results log's rows), the results the
   Live tab counted, the frames it drew, and the longest gap between two turns of the GUI's event loop.
A shared machine's speed drifts by several per cent within minutes, so the window runs in --rounds rounds
with the engine alone timed before, between and after them; each round is compared with the mean of the
two engine runs beside it. The share that matters is the median over rounds of window parts/s over the
engine's batch-1 rate. Not part of the test suite; figures in docs/benchmark.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.types import PRECISIONS, RuntimeOptions  # noqa: E402  (torch-free; needs ROOT on sys.path)


class _LoopGaps:
    """The longest time between two turns of the GUI's event loop: a 5 ms timer that notes how late it fires."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.longest_ms = 0.0
        self._last = time.perf_counter()
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(5)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest_ms = max(self.longest_ms, (now - self._last) * 1000)
        self._last = now

    def stop(self) -> None:
        self._timer.stop()


def _rows(window) -> int:
    """Rows the station's results log holds (every part inspected is one; read-only, a second connection)."""
    import sqlite3

    with sqlite3.connect(f"file:{window.station.results.path}?mode=ro", uri=True) as db:
        return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model file (default: a random-init VGG16-CAM at 224 px)")
    p.add_argument("--images", help="folder of images to loop (default: 48 synthetic 512x512 JPEGs)")
    p.add_argument("--source", help="inspect this source spec instead of the looping folder (e.g. a pylon emulator camera: "
                   "'pylon:0?roi=0,0,512,512&frame_rate=120' with PYLON_CAMEMU=1); the engine figure uses its first frame")  # fmt: skip
    p.add_argument("--seconds", type=float, default=30.0, help="measured time for each part")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds of each window round not counted")
    p.add_argument("--rounds", type=int, default=3, help="window rounds, each with the engine alone timed before and after it (default 3)")
    p.add_argument("--engine-seconds", type=float, default=15.0, help="measured time of each engine-alone run")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", choices=PRECISIONS, help="numeric precision, as on visinspect gui")
    p.add_argument("--json", help="write the figures as JSON here")
    p.add_argument("--anomaly-share", type=float, default=1.0,
                   help="share of parts judged ANOMALY (default 1: threshold 0, every part has boxes to draw and a frame to "
                        "save, the worst case); e.g. 0.05 sets the threshold so about 5 %% of the looped images are anomalies, "
                        "as on a line")  # fmt: skip
    p.add_argument("--parts", default="engine,headless,window", help="which figures to measure (comma-separated; default all three)")
    return p


def _first_frame(spec: str):
    """One frame of a source (a camera's first image), for the engine-alone figure."""
    from engine.sources import open_source

    source = open_source(spec)
    source.open()
    try:
        for _ in range(50):
            frame = source.read()
            if frame is not None:
                return frame.image
    finally:
        source.close()
    raise SystemExit(f"{spec} gave no frame")


def _threshold_for_share(model_path: Path, images, args) -> float:
    """The decision threshold at which about args.anomaly_share of the looped images are judged ANOMALY."""
    import numpy as np

    from engine.data.walk import list_images
    from engine.inference import Inspector

    if args.source or not 0.0 < args.anomaly_share < 1.0:
        raise SystemExit("--anomaly-share below 1 needs the looping folder and a share between 0 and 1")

    inspector = Inspector.open(model_path, RuntimeOptions(args.device, args.precision))
    looped = list_images(Path(images))  # each file once: the loop repeats them in this order, so the share is the same
    p = np.array([r.inspection.p_anomaly for r in inspector.inspect_files(looped)])
    threshold = float(np.quantile(p, 1.0 - args.anomaly_share, method="higher"))
    share = float(np.mean(p >= threshold))
    print(f"threshold {threshold:.6f}: {share:.1%} of the {len(p)} looped images are anomalies", file=sys.stderr, flush=True)
    return threshold


def engine_rate(inspector, image, seconds: float) -> dict:
    """Batch-1 inferences per second of the engine alone: the benchmark's live-latency loop."""
    from engine.bench import bench_live

    live = bench_live(inspector, image, seconds, min_iters=5)
    return {"frames": live.iterations, "inferences_per_s": round(1000 / live.mean_ms, 2), "ms_per_frame": live.mean_ms}


def headless_rate(model_path: Path, images: Path | str, *, seconds: float, warmup: float, device: str, precision: str, workdir: Path) -> dict:
    """The live job on the looping folder with the results log and no window: parts inspected per second."""
    import threading

    from engine.inference import Inspector
    from engine.inference.live import LiveResult
    from engine.jobs.live import InspectorSlot, live_job
    from engine.results import ResultsLog

    inspector = Inspector.open(model_path, RuntimeOptions(device, precision))
    results = ResultsLog(workdir / "headless.sqlite3")
    stop = threading.Event()
    counted, t0, start = 0, None, time.perf_counter()
    try:
        for item in live_job(str(images), InspectorSlot(inspector, "headless"), results, loop=True, stop=stop):
            if not isinstance(item, LiveResult):
                continue
            now = time.perf_counter()
            if t0 is None and now - start >= warmup:
                t0, counted = now, 0
            elif t0 is not None:
                counted += 1
                if now - t0 >= seconds:
                    break
    finally:
        stop.set()
        results.close()
    return {"precision": inspector.precision_name, "seconds": round(now - t0, 1), "parts": counted, "parts_per_s": round(counted / (now - t0), 2)}


def window_rate(
    model_path: Path, images: Path | str, *, seconds: float, warmup: float, device: str, precision: str, workdir: Path,
    rounds: int = 1, between: Callable[[], None] | None = None,
) -> dict:
    """Run the real station window on a looping folder; count results delivered and frames drawn.

    rounds: the source is started, measured and stopped this many times in the one window; between() runs while
    it is stopped before each round after the first (the engine alone, so each round has a reference beside it).
    """
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QTimer

    from visinspect_gui.app import setup_application
    from visinspect_gui.main_window import MainWindow

    app = setup_application()
    window = MainWindow(device=device, precision=precision, data_dir=workdir / "data", weights_dir=workdir / "weights", auto_demo=False, auto_load=False)
    window.resize(1400, 900)
    window.show()

    def spin(seconds_: float, until=None) -> None:
        """Run the event loop for seconds_, or until the signal until fires."""
        loop = QEventLoop()
        if until is not None:
            until.connect(loop.quit)
        QTimer.singleShot(int(seconds_ * 1000), loop.quit)
        loop.exec()

    window.open_model(str(model_path))
    spin(600, until=window.station.model_loaded)
    if window.station.inspector is None:
        raise SystemExit(f"the station could not load {model_path}")
    window.source_panel.set_source(str(images), loop=True, max_fps=None)
    counters = window.live.counters  # counts every result the Station delivers
    precision_name = window.station.inspector.precision_name
    measured = []
    for k in range(rounds):
        if k and between is not None:
            between()
        window.source_panel.start_button.click()
        spin(warmup)
        gaps = _LoopGaps()
        logged0 = _rows(window)
        r0, d0, t0 = counters.inspected, window.live.frames_drawn, time.perf_counter()
        spin(seconds)
        r1, d1, t1 = counters.inspected, window.live.frames_drawn, time.perf_counter()
        logged = _rows(window) - logged0
        gaps.stop()
        window.source_panel.stop_button.click()
        spin(1.0)  # the stopped run's last frames finish before anything else is timed
        measured.append(_window_figures(t1 - t0, logged, r1 - r0, d1 - d0, gaps.longest_ms))
    window.close()
    window.shutdown()
    app.processEvents()
    total = _window_figures(
        sum(m["seconds"] for m in measured), sum(m["parts_logged"] for m in measured), sum(m["results"] for m in measured),
        sum(m["frames_drawn"] for m in measured), max(m["longest_event_loop_gap_ms"] for m in measured),
    )  # fmt: skip
    return {"precision": precision_name, **total, "rounds": measured}


def _window_figures(elapsed: float, logged: int, inferred: int, drawn: int, longest_gap_ms: float) -> dict:
    return {
        "seconds": round(elapsed, 1),
        "parts_logged": logged,
        "parts_per_s": round(logged / elapsed, 2),
        "results": inferred,
        "frames_drawn": drawn,
        "inferences_per_s": round(inferred / elapsed, 2),
        "longest_event_loop_gap_ms": round(longest_gap_ms, 1),
        "frames_shown_per_s": round(drawn / elapsed, 2),
        "shown_over_inferred": round(drawn / inferred, 3) if inferred else None,
    }


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    import torch

    from engine import bench
    from engine.data.decode import read_image
    from engine.inference import Inspector
    from engine.modelfile import save_model, update_meta

    with tempfile.TemporaryDirectory(prefix="visinspect-liverate-") as tmp:
        work = Path(tmp)
        (work / "data").mkdir()
        (work / "weights").mkdir()
        if args.model:  # a copy: the threshold is set to 0 below
            model_path = work / "weights" / Path(args.model).name
            shutil.copyfile(args.model, model_path)
        else:  # with calibration images and a held-out int8 check, as a trained model file has, so auto can choose int8
            loaded = bench.random_init_model(224)
            loaded = replace(loaded, meta=replace(loaded.meta, threshold=0.0))
            images_, _ = bench.calibration_images(32, [], work / "calibration")
            loaded = bench.with_int8_evidence(loaded, images_[:16], images_[16:])
            model_path = save_model(work / "weights" / "random-vgg16.safetensors", loaded.model, loaded.meta, calibration=loaded.calibration)
        images = Path(args.images) if args.images else work / "images"
        if not args.images:
            bench.make_image_set(images, 48)
        first = read_image(bench.list_images(images, 1)[0]) if not args.source else _first_frame(args.source)
        if args.source:
            images = args.source
        threshold = 0.0  # every frame is an ANOMALY with boxes and a saved frame: the most the view and the log have to do
        if args.anomaly_share < 1.0:
            threshold = _threshold_for_share(model_path, images, args)
        update_meta(model_path, threshold=threshold)
        parts = {p.strip() for p in args.parts.split(",") if p.strip()}
        unknown = parts - {"engine", "headless", "window"}
        if unknown:
            raise SystemExit(f"--parts takes engine, headless and window; got {', '.join(sorted(unknown))}")
        engine = headless = window = inspector = None
        if "headless" in parts:
            print(f"live job, no window, {args.warmup:.0f} s warm-up + {args.seconds:.0f} s ...", file=sys.stderr, flush=True)
            headless = headless_rate(model_path, images, seconds=args.seconds, warmup=args.warmup, device=args.device, precision=args.precision, workdir=work)
        references: list[float] = []  # the engine alone before, between and after the window's rounds

        def time_engine() -> None:
            print(f"engine alone, batch 1, {args.engine_seconds:.0f} s ...", file=sys.stderr, flush=True)
            references.append(engine_rate(inspector, first, args.engine_seconds)["inferences_per_s"])

        if "engine" in parts:
            inspector = Inspector.open(model_path, RuntimeOptions(args.device, args.precision))
            time_engine()
        if "window" in parts:
            rounds = args.rounds if inspector is not None else 1
            print(f"station window, {rounds} x ({args.warmup:.0f} s warm-up + {args.seconds:.0f} s) ...", file=sys.stderr, flush=True)
            window = window_rate(model_path, images, seconds=args.seconds, warmup=args.warmup, device=args.device, precision=args.precision,
                                 workdir=work, rounds=rounds, between=time_engine if inspector is not None else None)  # fmt: skip
            if inspector is not None:  # the machine's speed drifts: each round's reference is the mean of the runs beside it
                time_engine()
                for k, measured in enumerate(window["rounds"]):
                    reference = (references[k] + references[k + 1]) / 2
                    measured.update(engine_inferences_per_s=round(reference, 2), window_over_engine=round(measured["parts_per_s"] / reference, 3))
        if inspector is not None:
            engine = {"inferences_per_s": round(statistics.mean(references), 2), "runs": references, "precision": inspector.precision_name,
                      "seconds_each": args.engine_seconds}  # fmt: skip
            engine["ms_per_frame"] = round(1000 / engine["inferences_per_s"], 2)
        inspector = None  # frees the model before the results are written
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpu": bench.cpu_model(),
        "cores": bench.usable_cores(),
        "torch": torch.__version__,
        "load_average_1min": bench.load_average(),
        "engine_batch1": engine,
        "live_job_no_window": headless,
        "window": window,
        "threshold": threshold,
        "anomaly_share_asked": args.anomaly_share,
    }
    if engine:
        runs = ", ".join(f"{r:.2f}" for r in engine["runs"])
        print(f"engine alone, batch 1:     {engine['inferences_per_s']:.2f} inferences/s ({engine['ms_per_frame']} ms per frame, {engine['precision']}; runs {runs})")
    if headless:
        print(f"live job, no window:       {headless['parts_per_s']:.2f} parts/s ({headless['precision']}, results log on)")
    if window:
        print(
            f"station window ({window['precision']}):     {window['parts_per_s']:.2f} parts/s logged, {window['inferences_per_s']:.2f} results counted/s, "
            f"{window['frames_shown_per_s']:.2f} frames shown/s, longest event-loop gap {window['longest_event_loop_gap_ms']:.0f} ms"
        )
    if window and engine:
        shares = [m["window_over_engine"] for m in window["rounds"]]
        result["window_over_engine"] = round(statistics.median(shares), 3)
        each = ", ".join(f"{100 * x:.1f}%" for x in shares)
        share = f"window / engine:           {100 * result['window_over_engine']:.1f}% of the engine's batch-1 rate (median of rounds: {each})"
        if headless:
            result["window_over_live_job"] = round(window["parts_per_s"] / headless["parts_per_s"], 3)
            share += f"; {100 * result['window_over_live_job']:.1f}% of the live job with no window"
        print(share)
    print(f"load average (1 min):      {result['load_average_1min']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
