"""Calibration view and Eval tab: pick a threshold on held-out scores, store it, and see the line use it."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt  # noqa: E402

from engine.data.decode import read_image  # noqa: E402
from engine.data.layouts import load_dataset  # noqa: E402
from engine.data.synthetic import generate_dataset  # noqa: E402
from engine.evaluation.calibrate import at_threshold, below_with_margin  # noqa: E402
from engine.evaluation.evaluate import scores_arrays  # noqa: E402
from engine.inference import Inspector  # noqa: E402
from engine.modelfile import read_meta, save_model  # noqa: E402
from engine.training import TrainConfig, fit  # noqa: E402
from engine.types import RuntimeOptions  # noqa: E402
from visinspect_gui.widgets.calibration_view import CalibrationView, ScoredImages  # noqa: E402
from visinspect_gui.widgets.common import format_threshold  # noqa: E402
from visinspect_gui.widgets.eval_tab import EvalTab  # noqa: E402

FAST = TrainConfig(backbone="vgg16_bn", backbone_weights="none", image_size=64, epochs=30, lr=1e-3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small model trained on a synthetic product, saved; returns (dataset root, model path, TrainResult)."""
    base = tmp_path_factory.mktemp("calibration")
    root = generate_dataset(base / "widget", n_train_good=16, n_test_good=4, n_per_defect=6, image_size=64).root
    result = fit(load_dataset(root), FAST, product="widget")
    path = save_model(base / "widget.safetensors", result.model, result.meta)
    return root, path, result


@pytest.fixture()
def model_copy(trained, tmp_path) -> Path:
    """A private copy of the trained model file that a test may rewrite."""
    return Path(shutil.copy(trained[1], tmp_path / "widget.safetensors"))


def _view(qtbot, labels, scores, **kwargs) -> CalibrationView:
    view = CalibrationView()
    qtbot.addWidget(view)
    view.resize(1100, 700)
    view.show()
    view.set_data(labels, scores, **kwargs)
    return view


def test_no_miss_button_shows_zero_missed_in_the_confusion_grid(qtbot, trained) -> None:
    labels, scores = scores_arrays(trained[2].report)
    view = _view(qtbot, labels, scores)
    qtbot.mouseClick(view.no_miss_button, Qt.MouseButton.LeftButton)
    counts = view.confusion.counts()
    assert counts["fn"] == 0 and counts["tp"] == int(labels.sum())
    assert sum(counts.values()) == len(labels)
    assert view.threshold() == pytest.approx(below_with_margin(scores[labels == 1].min()))  # the stated margin below it
    assert view.threshold_spin.value() == pytest.approx(round(view.threshold(), 4))
    assert "miss rate <b>0.0%</b>" in view.rates.text()
    assert not view.store_button.isEnabled()  # no model file to store into


def test_moving_the_line_updates_counts_and_rates(qtbot) -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.05, 0.2, 0.45, 0.7, 0.3, 0.6, 0.8, 0.95], dtype=np.float32)
    view = _view(qtbot, labels, scores)
    seen = []
    view.threshold_changed.connect(seen.append)
    for t in (0.1, 0.5, 0.75, 0.99):
        view.line.setValue(t)  # what a drag does
        cal = at_threshold(labels, scores, t)
        assert view.confusion.counts() == {"tp": cal.tp, "fn": cal.fn, "fp": cal.fp, "tn": cal.tn}
        assert f"({cal.fp} of 4)" in view.rates.text() and f"({cal.fn} of 4)" in view.rates.text()
    assert seen[-1] == pytest.approx(0.99)
    view.threshold_spin.setValue(0.4)  # typing a value moves the line too
    assert view.threshold() == pytest.approx(0.4) and view.confusion.counts()["fp"] == 2


def test_max_false_reject_button_respects_the_percentage(qtbot) -> None:
    rng = np.random.default_rng(1)
    labels = np.array([0] * 40 + [1] * 20)
    scores = np.concatenate([rng.beta(2, 5, 40), rng.beta(5, 2, 20)]).astype(np.float32)
    view = _view(qtbot, labels, scores)
    view.false_reject_spin.setValue(5.0)
    qtbot.mouseClick(view.false_reject_button, Qt.MouseButton.LeftButton)
    assert view.confusion.counts()["fp"] <= 2  # 5 % of 40
    qtbot.mouseClick(view.balanced_button, Qt.MouseButton.LeftButton)
    rows = [view.table.item(r, 0).text() for r in range(view.table.rowCount())]
    assert rows == ["no-miss", "max-false-reject:1", "max-false-reject:5", "balanced"]


def test_one_class_only_offers_the_false_reject_target_alone(qtbot) -> None:
    view = _view(qtbot, [0, 0, 0], [0.1, 0.2, 0.3])
    assert not view.no_miss_button.isEnabled() and not view.balanced_button.isEnabled()  # they need defective images
    assert "needs defective images" in view.balanced_button.toolTip()
    rows = [view.table.item(r, 0).text() for r in range(view.table.rowCount())]
    assert rows == ["max-false-reject:1", "max-false-reject:2"] and view.confusion.counts()["fp"] == 0
    assert view.current().target == "max-false-reject:2" and "max-false-reject:2" in view.status.text()


def test_store_threshold_is_used_by_an_inspector_loaded_from_the_file(qtbot, trained, model_copy) -> None:
    root, _, result = trained
    labels, scores = scores_arrays(result.report)
    view = _view(qtbot, labels, scores, threshold=0.5, images=ScoredImages(str(model_copy), str(root), RuntimeOptions("cpu")))
    qtbot.mouseClick(view.no_miss_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(view.threshold_stored, timeout=30_000) as stored:
        qtbot.mouseClick(view.store_button, Qt.MouseButton.LeftButton)
    chosen = stored.args[1]  # chosen again on the scores of the precision the line runs at it
    assert stored.args[0] == str(model_copy) and view.threshold() == chosen
    meta = read_meta(model_copy)
    assert meta.threshold == chosen and meta.calibration["target"] == "no-miss"
    assert meta.calibration["fn"] == 0 and meta.calibration["n"] == len(labels)
    inspector = Inspector.from_file(model_copy, device="cpu")
    assert inspector.threshold == pytest.approx(chosen)
    anomalies = [s for s in result.report.scores if s.label == 1]
    inspections = inspector.inspect([read_image(s.path) for s in anomalies])
    assert all(i.threshold == pytest.approx(chosen) for i in inspections)
    assert all(i.is_anomaly for i in inspections)  # no-miss: every held-out anomaly is caught on the line
    qtbot.waitUntil(lambda: view.store_button.isEnabled())
    assert "Stored threshold" in view.status.text()


def test_eval_tab_evaluates_the_held_out_split_calibrates_and_exports(qtbot, trained, model_copy, tmp_path) -> None:
    root, _, result = trained
    tab = EvalTab(gallery_limit=8)
    qtbot.addWidget(tab)
    tab.resize(1300, 900)
    tab.show()
    tab.set_model(str(model_copy))
    assert tab.model_label.text() == "Reading the model file…"  # the header is read in a worker
    qtbot.waitUntil(lambda: not tab.is_probing(), timeout=10_000)
    assert "widget" in tab.model_label.text()
    assert tab.folder_edit.text() == str(root)  # the model's own dataset is proposed
    with qtbot.waitSignal(tab.evaluation_finished, timeout=60_000):
        qtbot.mouseClick(tab.eval_button, Qt.MouseButton.LeftButton)
    held_out = len(read_meta(model_copy).dataset["held_out"])
    assert sum(tab.report_view.confusion.counts().values()) == held_out
    assert "held-out" in tab.status_label.text()
    assert tab.report_view.confusion.counts()["tp"] == result.report.tp
    assert tab.report_view.gallery.count() == min(8, held_out)

    qtbot.mouseClick(tab.calibration.no_miss_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(tab.threshold_stored, timeout=30_000) as stored:
        qtbot.mouseClick(tab.calibration.store_button, Qt.MouseButton.LeftButton)
    assert tab.report_view.report.threshold == pytest.approx(stored.args[1])
    assert tab.report_view.confusion.counts()["fn"] == 0  # the report now shows the stored threshold
    # one number for the threshold everywhere, and a visible warning: it was chosen on the images scored here
    shown = format_threshold(stored.args[1])
    assert shown in tab.calibration.status.text() and shown in tab.report_view.headline.text()
    assert tab.report_view.metrics.text("threshold") == shown == tab.calibration.threshold_spin.text()
    assert tab.report_view.warning.isVisible() and "optimistic" in tab.report_view.warning_text()
    assert f"was calibrated (no-miss) on the model's {held_out} held-out images" in tab.report_view.warning_text()
    status = tab.status_label.text()  # the status line gives the figures at the stored threshold, not the old ones
    assert f"Threshold {shown} stored" in status and f"accuracy {tab.report_view.metrics.text('accuracy')}" in status

    out = tmp_path / "report.html"
    with qtbot.waitSignal(tab.report_exported, timeout=30_000):
        assert tab.export_report(str(out))
    qtbot.waitUntil(lambda: not tab.is_busy())
    text = out.read_text()
    assert text.count("data:image/jpeg;base64,") == tab.report_view.gallery.count()
    header = re.search(r"<p class='sub'>(.*?)</p>", text).group(1)  # recomputed at the stored threshold
    assert f"at threshold {shown}: accuracy {tab.report_view.metrics.text('accuracy')}" in header
    assert "held-out acc" not in header and "class='warn'" in text
    assert re.search(r"<td class=\"ok\">\d+<small>correct accept", text) and "no-miss" in text

    pdf = tmp_path / "report.pdf"
    with qtbot.waitSignal(tab.report_exported, timeout=60_000) as exported:
        assert tab.export_report(str(pdf))
    qtbot.waitUntil(lambda: not tab.is_busy())
    assert exported.args[0] == str(pdf)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert data.count(b"/Subtype /Image") >= tab.report_view.gallery.count()  # every gallery image is in it
    assert not list(tmp_path.glob(".report.pdf.tmp"))


def test_eval_tab_on_another_folder_uses_every_image(qtbot, trained, model_copy, tmp_path) -> None:
    other = generate_dataset(tmp_path / "other", n_train_good=3, n_test_good=2, n_per_defect=2, image_size=64, seed=5).root
    tab = EvalTab(gallery_limit=4)
    qtbot.addWidget(tab)
    tab.set_model(str(model_copy))
    tab.set_dataset_folder(str(other))
    assert tab.start_evaluation() is False and "Still reading" in tab.status_label.text()
    qtbot.waitUntil(lambda: not tab.is_probing(), timeout=10_000)
    assert tab.folder_edit.text() == str(other)  # the model's own dataset did not replace the folder chosen
    with qtbot.waitSignal(tab.evaluation_finished, timeout=60_000):
        assert tab.start_evaluation()
    assert tab.done.report.n == 11 and "not the model's training dataset" in tab.done.how
    assert sum(tab.report_view.confusion.counts().values()) == 11


def test_eval_tab_starts_with_the_loaded_model_but_never_replaces_one_chosen(qtbot, trained, model_copy, tmp_path) -> None:
    root = trained[0]
    tab = EvalTab()
    qtbot.addWidget(tab)
    tab.set_loaded_model(str(model_copy))  # the station loaded it: Evaluate starts with it, and its own dataset
    qtbot.waitUntil(lambda: not tab.is_probing(), timeout=10_000)
    assert tab.model_combo.currentText() == str(model_copy) and "widget" in tab.model_label.text()
    assert tab.folder_edit.text() == str(root)
    other = shutil.copy(model_copy, tmp_path / "other.safetensors")
    tab.set_model(other)  # chosen here (as Browse does)
    tab.set_loaded_model(str(model_copy))  # the station loading a model later does not take it back
    qtbot.waitUntil(lambda: not tab.is_probing(), timeout=10_000)
    assert tab.model_combo.currentText() == str(other)


def test_eval_tab_never_overwrites_a_folder_typed_or_a_model_path_being_typed(qtbot, trained, model_copy) -> None:
    tab = EvalTab()
    qtbot.addWidget(tab)
    tab.show()
    qtbot.keyClicks(tab.folder_edit, "/data/line-7")  # typed, not yet confirmed with Enter
    tab.set_model(str(model_copy))
    qtbot.waitUntil(lambda: not tab.is_probing(), timeout=10_000)
    assert "widget" in tab.model_label.text() and tab.folder_edit.text() == "/data/line-7"

    tab = EvalTab()
    qtbot.addWidget(tab)
    tab.show()
    tab.model_combo.lineEdit().setText(str(model_copy))  # its header arrives: its dataset is being looked up ...
    tab._on_model_read(read_meta(model_copy))
    qtbot.keyClicks(tab.model_combo.lineEdit(), ".old")  # ... while the user goes on typing another model's path
    qtbot.waitUntil(lambda: not tab.is_probing(), timeout=10_000)
    assert tab.model_combo.currentText() == f"{model_copy}.old"
    assert tab.folder_edit.text() == ""  # the first model's dataset did not land beside the path typed since
