"""Time the station's Review tab against `predict` on the same folder and model, both logging results (no test).

Run: QT_QPA_PLATFORM=offscreen python scripts/bench_review_speed.py MODEL FOLDER [--repeat N]
Each run uses a fresh results log, so nothing is resumed; the model is loaded once, before the clocks start.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QEventLoop  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from engine.csvfile import open_csv  # noqa: E402
from engine.inference.inspector import Inspector  # noqa: E402
from engine.jobs.review import CSV_COLUMNS, ReviewChunk, review_job  # noqa: E402
from engine.results import ResultsLog  # noqa: E402
from engine.types import RuntimeOptions  # noqa: E402
from visinspect_gui.widgets.review_tab import ReviewTab  # noqa: E402


def predict_seconds(inspector, folder: str, work: Path) -> float:
    """What `visinspect predict MODEL FOLDER --csv X --log DB` does after loading the model."""
    t0 = time.perf_counter()
    with ResultsLog(work / "predict.sqlite3") as log, open_csv(work / "predict.csv", CSV_COLUMNS) as writer:
        for event in review_job([folder], inspector, results=log, source="cli", final_flush_s=15.0, stop=threading.Event()):
            if isinstance(event, ReviewChunk):
                for row in event.rows:
                    writer.writerow(row.csv_cells(""))
    return time.perf_counter() - t0


def station_seconds(inspector, folder: str, work: Path, *, save_frames: bool) -> tuple[float, str]:
    """The Review tab from Inspect folder to review_finished, with the table shown."""
    with ResultsLog(work / f"station-{save_frames}.sqlite3") as log:
        tab = ReviewTab(log)
        tab.resize(1280, 720)
        tab.show()
        tab.set_inspector(inspector)
        if hasattr(tab, "frames_box"):
            tab.frames_box.setChecked(save_frames)
        loop = QEventLoop()
        tab.review_finished.connect(lambda _outcome: loop.quit())
        t0 = time.perf_counter()
        tab.start(folder)
        loop.exec()
        seconds = time.perf_counter() - t0
        tab.shutdown()
        return seconds, tab.summary.text()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("folder")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    inspector = Inspector.open(args.model, RuntimeOptions("cpu"))
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            p = predict_seconds(inspector, args.folder, work)
            with contextlib.redirect_stdout(io.StringIO()):
                s_off, _ = station_seconds(inspector, args.folder, work, save_frames=False)
                s_on, summary = station_seconds(inspector, args.folder, work, save_frames=True)
            print(f"predict {p:6.2f} s · station {s_off:6.2f} s ({s_off / p:.2f}x) · station saving anomaly frames "
                  f"{s_on:6.2f} s ({s_on / p:.2f}x)")
    print("summary:", summary)
    del app


if __name__ == "__main__":
    main()
