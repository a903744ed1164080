"""Take the README screenshots from the real station: first run builds the demo, then every tab, at two sizes.

Run under a display (e.g. `Xvfb :99 -screen 0 1600x1000x24 & DISPLAY=:99 python docs/screenshots/take_screenshots.py`).
Each view is saved at 1600x1000 (NAME.png) and at 1280x720 (NAME-1280x720.png), the smallest screen the
station is made for. Uses fresh data and weights folders under a temporary directory, so nothing of yours is touched.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent
WORK = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="visinspect-shots-"))
os.environ["VISINSPECT_DATA"] = str(WORK / "data")
os.environ["VISINSPECT_WEIGHTS"] = str(WORK / "weights")
(WORK / "weights").mkdir(parents=True, exist_ok=True)
REUSED = (WORK / "weights" / "demo-synthetic.safetensors").is_file()

import numpy as np  # noqa: E402
from PySide6.QtCore import QEventLoop  # noqa: E402

from engine.data.decode import read_image, read_mask  # noqa: E402
from engine.sources import list_images  # noqa: E402
from engine.types import Verdict  # noqa: E402
from visinspect_gui.app import build_window, parse_args, setup_application  # noqa: E402

app = setup_application()
window = build_window(parse_args([]))  # first run: no model, so the demo is built
window.resize(1600, 1000)
window.show()


def wait(condition, timeout: float) -> None:
    end = time.time() + timeout
    while time.time() < end and not condition():
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
    if not condition():
        raise SystemExit(f"timed out after {timeout} s")


def settle(seconds: float = 0.5) -> None:
    end = time.time() + seconds
    while time.time() < end:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)


SIZES = ((1600, 1000, ""), (1280, 720, "-1280x720"))


def shot(name: str, prepare=None) -> None:
    """Save the window as it is at each size (prepare() runs again after each resize, e.g. to reselect a row)."""
    for width, height, suffix in SIZES:
        window.resize(width, height)
        settle()
        if prepare is not None:
            prepare()
            settle()
        assert (window.width(), window.height()) == (width, height), f"{name}: the window grew to {window.width()}x{window.height()}"
        target = OUT / f"{Path(name).stem}{suffix}.png"
        window.grab().save(str(target))
        print("saved", target)
    window.resize(*SIZES[0][:2])


# 1. First run: the demo is being built (skipped when WORK already holds a demo from an earlier run).
if not REUSED:
    wait(lambda: window.demo_panel.progress.value() > 150, 300)
    shot("first-run.png")
else:  # an existing model is simply loaded: replay the demo line as the demo would
    window.source_panel.set_source(str(WORK / "data" / "demo" / "line"), loop=True, max_fps=5.0)
    window.start_when_loaded()

# 2. Live: the demo line loops; then show a defective part whose box lands on its defect.
wait(lambda: window.live.counters.inspected >= 60, 600)
window.station.stop()
wait(lambda: not window.station.active_workers(), 30)

dataset = WORK / "data" / "demo" / "dataset"
line = WORK / "data" / "demo" / "line"
parts = list_images(dataset / "test")
order = np.random.default_rng(0).permutation(len(parts))  # how engine.demo laid out the line
inspector = window.station.inspector
best, best_score = None, -1.0
for n, i in enumerate(order, start=1):
    src = parts[i]
    if src.parent.name == "good":
        continue
    mask = read_mask(dataset / "ground_truth" / src.parent.name / f"{src.stem}_mask.png")
    insp = inspector.inspect([read_image(src)])[0]
    if not insp.is_anomaly or not insp.boxes:
        continue
    b = insp.boxes[0]
    inside = mask[b.y0 : b.y1, b.x0 : b.x1].sum() / max(1, mask.sum())
    score = inside - 0.5 * (b.width * b.height) / mask.size  # covers the defect with a tight box
    if score > best_score:
        best, best_score = line / f"part-{n:04d}.png", score
window.source_panel.set_source([str(best)], loop=False)
window.station.step([str(best)])
wait(lambda: window.live.result is not None and window.live.result.frame.path == str(best), 60)
window.live.flush()
window.live.counters.flush()
shot("live.png")

# 3. Review: the whole line folder, an anomaly selected.
window.tabs.setCurrentWidget(window.review)
window.review.start(str(line))
wait(lambda: window.review._batch is None and window.review.model.rows, 300)
review = window.review
row = next(r for r in range(review.proxy.rowCount()) if Path(review.model.rows[review.proxy.mapToSource(review.proxy.index(r, 0)).row()].path) == best)
review.table.selectRow(row)
wait(lambda: review.viewer.image is not None, 60)
shot("review.png")

# 4. History: everything logged, anomalies only; then the audit trail of changes.
window.tabs.setCurrentWidget(window.history)
settle(1.0)
combo = window.history.filter_bar.verdict_combo
combo.setCurrentIndex(combo.findData(Verdict.ANOMALY))
settle(1.5)
wait(lambda: any(r.frame_path for r in window.history.model.rows), 30)  # the live run saved its anomaly frames; Review did not


def select_saved_frame() -> None:
    window.history.table.selectRow(next(i for i, r in enumerate(window.history.model.rows) if r.frame_path))
    wait(lambda: window.history.viewer.image is not None, 30)


select_saved_frame()
shot("history.png", select_saved_frame)
window.history.views.setCurrentWidget(window.history.changes)
settle(1.0)
shot("changes.png")
window.history.views.setCurrentIndex(0)

# 5. Train: the demo dataset trained as the demo recipe does; curves, the held-out report, calibration.
train = window.train
window.tabs.setCurrentWidget(train)
train.set_dataset_folder(str(dataset))
wait(lambda: train.dataset is not None, 60)
train.options.weights.set_value("none")  # also sets the recipe that trains from random init (vgg16_bn, lr 1e-3)
train.options.field_widget("image_size").setValue(96)
train.options.field_widget("epochs").setValue(30)
train.set_product("demo-retrained")
assert train.start_training()
wait(lambda: not train.is_busy() and train.result is not None and train.saved_path, 900)
train.results.setCurrentWidget(train.curves)
shot("train.png")
train.results.setCurrentWidget(train.report_view)
shot("report.png")
train.results.setCurrentWidget(train.calibration)
train.calibration.no_miss_button.click()
shot("calibration.png")

# 6. Evaluate: the demo model on its own dataset (its held-out images), as the Evaluate tab starts.
evaluate = window.evaluate
window.tabs.setCurrentWidget(evaluate)
evaluate.set_model(str(inspector.path))
evaluate.set_dataset_folder(str(dataset))
settle(2.0)
assert evaluate.start_evaluation()
wait(lambda: not evaluate.is_busy() and evaluate.done is not None, 600)
shot("evaluate.png")

# 7. Operator mode: an engineer PIN set and the station locked: verdict, counters, Start / Stop only.
window.access.set_pin("2468")
window.access.lock()
window.tabs.setCurrentWidget(window.live)
shot("operator.png")

window.close()
print("work folder:", WORK)
