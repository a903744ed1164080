#!/usr/bin/env python
"""Endurance (soak) run: stream a looping source at line speed through the live inspection path for N minutes
and report memory (RSS), open file descriptors and threads every minute, plus their growth per hour.

    python scripts/soak.py --minutes 30 --fps 30                # real station window, offscreen
    python scripts/soak.py --minutes 10 --mode engine           # engine only: live_inspect + ResultsLog
    python scripts/soak.py --minutes 60 --model weights/x.safetensors --json soak.json

By default it writes a synthetic dataset, trains the tests' fast model on it (random-init VGG16-BN at 64 px,
about a minute on CPU), writes a looping MJPG video of the synthetic parts and plays it as an emulated camera
(a live source: frames the model cannot keep up with are dropped, as on the line). In window mode it drives the
real MainWindow with QT_QPA_PLATFORM=offscreen: the Station's worker, the Live tab drawing every result, the
results log saving every verdict and anomaly frame. Not part of the test suite; see docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

INTERRUPTED = threading.Event()  # Ctrl-C or SIGTERM: end the run early, still report and clean up
FAST_TRAIN = dict(backbone="vgg16_bn", backbone_weights="none", image_size=64, epochs=30, lr=1e-3)


# -- process figures -------------------------------------------------------------------------------


def _status_field(name: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return -1


def rss_mb() -> float:
    return _status_field("VmRSS") / 1024.0


def anon_mb() -> float:
    """Resident anonymous memory (heap, arrays): what a leak grows. VmRSS also counts mapped libraries,
    which the kernel may drop and reload under memory pressure."""
    return _status_field("RssAnon") / 1024.0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def os_threads() -> int:
    return _status_field("Threads")


@dataclass
class Sample:
    t_min: float
    inspected: int
    fps: float  # inspected per second over the last interval
    dropped: int
    rss_mb: float
    anon_mb: float
    fds: int
    threads: int  # OS threads of the process (Python, torch, Qt, SQLite)
    py_threads: int
    db_rows: int
    events: int


class Meter:
    """Counts results and events (from any thread) and takes samples."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.inspected = 0
        self.dropped = 0
        self.events: dict[str, int] = {}
        self.samples: list[Sample] = []
        self.after_close: Sample | None = None  # taken after the run was stopped; not in the growth figures
        self._last = (self.started, 0)
        self._lock = threading.Lock()

    def result(self, dropped_total: int) -> None:
        with self._lock:
            self.inspected += 1
            self.dropped = dropped_total

    def event(self, kind: str) -> None:
        with self._lock:
            self.events[kind] = self.events.get(kind, 0) + 1

    def sample(self, db_rows: int, *, keep: bool = True) -> Sample:
        now = time.monotonic()
        with self._lock:
            last_t, last_n = self._last
            fps = (self.inspected - last_n) / max(now - last_t, 1e-6)
            self._last = (now, self.inspected)
            s = Sample(
                t_min=round((now - self.started) / 60.0, 2),
                inspected=self.inspected,
                fps=round(fps, 1),
                dropped=self.dropped,
                rss_mb=round(rss_mb(), 1),
                anon_mb=round(anon_mb(), 1),
                fds=open_fds(),
                threads=os_threads(),
                py_threads=threading.active_count(),
                db_rows=db_rows,
                events=sum(self.events.values()),
            )
        if keep:
            self.samples.append(s)
        print(
            ("after close: " if not keep else "")
            + f"[{s.t_min:6.1f} min] inspected {s.inspected:7d} ({s.fps:5.1f}/s)  dropped {s.dropped:6d}  "
            f"RSS {s.rss_mb:7.1f} MB (anon {s.anon_mb:7.1f})  fds {s.fds:3d}  threads {s.threads:3d} (py {s.py_threads})  "
            f"db rows {s.db_rows:7d}  events {s.events}",
            flush=True,
        )
        return s


def slope_per_hour(samples: list[Sample], field: str, warmup_min: float) -> float | None:
    """Least-squares growth of a figure per hour over the samples after the warm-up."""
    pts = [(s.t_min, getattr(s, field)) for s in samples if s.t_min >= warmup_min]
    if len(pts) < 2:
        return None
    n = len(pts)
    mx = sum(p[0] for p in pts) / n
    my = sum(p[1] for p in pts) / n
    var = sum((p[0] - mx) ** 2 for p in pts)
    if var == 0:
        return None
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / var * 60.0


# -- inputs ----------------------------------------------------------------------------------------


def prepare_model(work: Path, model: str | None) -> Path:
    if model:
        return Path(model)
    from engine.data.layouts import load_dataset
    from engine.data.synthetic import generate_dataset
    from engine.modelfile import save_model
    from engine.training import TrainConfig, fit

    data = generate_dataset(work / "synthetic", image_size=128, seed=0).root
    print("training the fast model (random-init VGG16-BN, 64 px)...", flush=True)
    started = time.monotonic()
    result = fit(load_dataset(data), TrainConfig(**FAST_TRAIN), product="soak")
    path = save_model(work / "weights" / "soak.safetensors", result.model, result.meta)
    print(f"trained in {time.monotonic() - started:.0f} s -> {path}", flush=True)
    return path


def prepare_frames(work: Path, kind: str, size: int) -> Path:
    """A folder of synthetic parts, or an MJPG video of them (kind 'video')."""
    import cv2

    from engine.data.decode import read_image
    from engine.data.synthetic import generate_dataset
    from engine.sources import list_images

    data = work / "synthetic"
    if not data.exists():
        generate_dataset(data, image_size=128, seed=0)
    parts = list_images(data / "test")
    if kind == "folder":
        return parts[0].parents[1]
    path = work / "line.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (size, size))
    if not writer.isOpened():
        raise SystemExit("OpenCV cannot write an MJPG video here; use --source folder")
    for p in parts:
        image = cv2.resize(read_image(p), (size, size), interpolation=cv2.INTER_LINEAR)
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


class EmulatedCamera:
    """A looping video or folder presented as a live source, so late frames are dropped as with a camera."""

    is_live = True

    def __init__(self, inner) -> None:
        self.inner = inner
        self.description = f"emulated camera ({inner.description})"

    def open(self) -> None:
        self.inner.open()

    def read(self):
        return self.inner.read()

    def close(self) -> None:
        self.inner.close()

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()


def make_source(path: Path, camera: bool):
    from engine.sources import FolderSource, VideoSource

    inner = FolderSource(path, loop=True) if path.is_dir() else VideoSource(path, loop=True)
    return EmulatedCamera(inner) if camera else inner


def count_rows(db: Path) -> int:
    import sqlite3

    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT count(*) FROM results").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return -1


# -- the two ways to run ---------------------------------------------------------------------------


def run_window(args, model: Path, frames: Path, work: Path, meter: Meter) -> str:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QTimer

    from visinspect_gui.app import setup_application
    from visinspect_gui.main_window import MainWindow

    app = setup_application()
    data, weights = work / "data", work / "weights"
    data.mkdir(parents=True, exist_ok=True)
    weights.mkdir(parents=True, exist_ok=True)
    window = MainWindow(data_dir=data, weights_dir=weights, device=args.device)
    window.resize(1400, 900)
    window.show()
    db = window.results.path
    outcome = {"end": "time up"}

    def on_loaded(_inspector) -> None:
        if window.station.is_running:
            return
        source = make_source(frames, args.camera)
        print(f"running {source.description} at {args.fps} fps through the station window", flush=True)
        window.station.start(source, loop=True, max_fps=args.fps)

    def on_finished(reason: str) -> None:
        if not stopping:
            outcome["end"] = f"run finished early: {reason}"
            app.quit()

    stopping = False
    window.station.model_loaded.connect(on_loaded)
    window.station.model_failed.connect(lambda text: (outcome.update(end=f"model failed: {text}"), app.quit()))
    window.station.failed.connect(lambda text: print(f"station: {text}", flush=True))
    window.station.result_ready.connect(lambda r: meter.result(r.dropped_total))
    window.station.source_event.connect(lambda e: (meter.event(e.kind), print(f"event: {e.kind}: {e.message}", flush=True)))
    window.station.run_finished.connect(on_finished)

    sampler = QTimer()
    sampler.timeout.connect(lambda: meter.sample(count_rows(db)))
    sampler.start(int(args.report_every * 1000))

    def finish() -> None:
        nonlocal stopping
        stopping = True
        meter.sample(count_rows(db))
        window.close()  # stops the worker, releases the source, closes the results log
        meter.after_close = meter.sample(count_rows(db), keep=False)
        app.quit()

    QTimer.singleShot(int(args.minutes * 60_000), finish)
    interrupt_check = QTimer()
    interrupt_check.timeout.connect(lambda: INTERRUPTED.is_set() and not stopping and finish())
    interrupt_check.start(250)
    window.open_model(model)
    meter.sample(0)
    app.exec()
    sampler.stop()
    if outcome["end"] != "time up":
        window.close()
    return "interrupted" if INTERRUPTED.is_set() else outcome["end"]


def run_engine(args, model: Path, frames: Path, work: Path, meter: Meter) -> str:
    from engine.inference import Inspector
    from engine.inference.live import LiveResult, live_inspect
    from engine.results import ResultsLog, new_run_id
    from engine.sources import SourceEvent

    inspector = Inspector.from_file(model, device=args.device)
    db = work / "data" / "results.sqlite3"
    log = ResultsLog(db)
    run_id = new_run_id("soak")
    source = make_source(frames, args.camera)
    print(f"running {source.description} at {args.fps} fps through engine.inference.live", flush=True)
    stop = threading.Event()
    deadline = time.monotonic() + args.minutes * 60
    next_sample = time.monotonic()
    end = "time up"
    try:
        for item in live_inspect(source, inspector, stop=stop, max_fps=args.fps):
            if isinstance(item, LiveResult):
                meter.result(item.dropped_total)
                log.log_inspection(
                    run_id=run_id, source=source.description, item=item.frame.path or item.frame.index,
                    inspection=item.inspection, image=item.frame.image,
                )  # fmt: skip
            elif isinstance(item, SourceEvent):
                meter.event(item.kind)
                print(f"event: {item.kind}: {item.message}", flush=True)
            now = time.monotonic()
            if now >= next_sample:
                meter.sample(log.count())
                next_sample = now + args.report_every
            if (now >= deadline or INTERRUPTED.is_set()) and not stop.is_set():
                meter.sample(log.count())  # the last sample of the run, taken while it still runs
                stop.set()
        else:
            if not stop.is_set():
                end = "source ended early"
        if INTERRUPTED.is_set():
            end = "interrupted"
    finally:
        stop.set()
        log.close()
        meter.after_close = meter.sample(count_rows(db), keep=False)
    return end


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--fps", type=float, default=30.0, help="line speed the source is read at")
    p.add_argument("--mode", choices=["auto", "window", "engine"], default="auto", help="auto: the window if PySide6 and the station are importable")
    p.add_argument("--model", help="model file (default: train the tests' fast model on synthetic data)")
    p.add_argument("--source", choices=["video", "folder"], default="video")
    p.add_argument("--frame-size", type=int, default=256, help="video frame side in pixels")
    p.add_argument("--no-camera", dest="camera", action="store_false", help="play the file source as-is (no drops) instead of as a camera")
    p.add_argument("--device", default="cpu")
    p.add_argument("--report-every", type=float, default=60.0, help="seconds between samples")
    p.add_argument("--warmup", type=float, default=2.0, help="minutes left out of the growth figures")
    p.add_argument("--torch-threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--workdir", help="keep everything here instead of a temporary folder")
    p.add_argument("--json", help="write the samples and summary here")
    args = p.parse_args(argv)

    mode = args.mode
    if mode == "auto":
        try:
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
            import visinspect_gui.main_window  # noqa: F401

            mode = "window"
        except ImportError as exc:
            print(f"station window not importable ({exc}); using the engine path", flush=True)
            mode = "engine"
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: INTERRUPTED.set())
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="visinspect-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    try:
        model = prepare_model(work, args.model)
        frames = prepare_frames(work, args.source, args.frame_size)
        meter = Meter()
        print(f"soak: {args.minutes:g} min, {args.fps:g} fps, mode {mode}, model {model}, source {frames}", flush=True)
        run = run_window if mode == "window" else run_engine
        end = run(args, model, frames, work, meter)
        samples = meter.samples
        duration = samples[-1].t_min if samples else 0.0
        summary = {
            "mode": mode,
            "end": end,
            "minutes": duration,
            "fps_target": args.fps,
            "inspected": meter.inspected,
            "mean_fps": round(meter.inspected / max(duration * 60, 1e-6), 1),
            "dropped": meter.dropped,
            "events": meter.events,
            "rss_mb_start": samples[0].rss_mb if samples else None,
            "rss_mb_after_warmup": next((s.rss_mb for s in samples if s.t_min >= args.warmup), None),
            "rss_mb_end": samples[-1].rss_mb if samples else None,
            "rss_mb_max": max((s.rss_mb for s in samples), default=None),
            "anon_mb_start_after_warmup_end": [
                samples[0].anon_mb if samples else None,
                next((s.anon_mb for s in samples if s.t_min >= args.warmup), None),
                samples[-1].anon_mb if samples else None,
            ],
            "fds_start_end": [samples[0].fds, samples[-1].fds] if samples else None,
            "threads_start_end": [samples[0].threads, samples[-1].threads] if samples else None,
            "growth_per_hour_after_warmup": {
                f: slope_per_hour(samples, f, args.warmup) for f in ("rss_mb", "anon_mb", "fds", "threads", "py_threads")
            },
            "warmup_minutes": args.warmup,
            "after_close": asdict(meter.after_close) if meter.after_close else None,
        }
        print(json.dumps(summary, indent=2), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps({"summary": summary, "samples": [asdict(s) for s in samples]}, indent=2))
        return 0 if end == "time up" else 1
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
