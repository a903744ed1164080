"""Train and Evaluate in a 1280x720 window: every label and button readable at the default splitter, a report never
widens the tab, and the mouse wheel scrolls the page instead of changing the field under the pointer."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QWheelEvent  # noqa: E402
from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QApplication, QComboBox, QLabel, QWidget  # noqa: E402

from engine.data.preprocess import Preprocess  # noqa: E402
from engine.data.synthetic import generate_dataset  # noqa: E402
from engine.evaluation.metrics import EvalReport, SampleScore, image_metrics  # noqa: E402
from engine.evaluation.report import GalleryEntry  # noqa: E402
from engine.modelfile import ModelMeta  # noqa: E402
from engine.thresholds import Thresholds  # noqa: E402
from engine.types import Inspection  # noqa: E402
from visinspect_gui.widgets.calibration_view import CalibrationView  # noqa: E402
from visinspect_gui.widgets.eval_tab import EvalTab  # noqa: E402
from visinspect_gui.widgets.train_tab import TrainTab  # noqa: E402

ROOM = (900, 560)  # a 1280x720 window less the 350 px sidebar, title, tab bar and status bar


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("fit") / "widget", n_train_good=4, n_test_good=2, n_per_defect=2, image_size=32).root


def report_and_meta(n: int = 24) -> tuple[EvalReport, ModelMeta]:
    """A held-out report with a long defect-type name, as a real dataset can have."""
    labels = [0] * (n // 2) + [1] * (n // 2)
    probs = list(np.linspace(0.05, 0.6, n // 2)) + list(np.linspace(0.4, 0.95, n // 2))
    kinds = ["good"] * (n // 2) + ["contamination_on_the_sealing_edge"] * (n // 4) + ["scratch"] * (n // 4)
    scores = tuple(SampleScore(f"/data/{k}/{i:03d}.png", k, y, p, int(p >= 0.5))
                   for i, (k, y, p) in enumerate(zip(kinds, labels, probs)))  # fmt: skip
    report = EvalReport(**image_metrics(labels, probs, 0.5), pixel_auroc=0.87, box_recall=0.6, n_masks=3, scores=scores)
    meta = ModelMeta(product="widget", backbone="vgg16_bn", backbone_weights={"kind": "none"},
                     preprocess=Preprocess(64).to_dict(), dataset={"root": "/data"})  # fmt: skip
    return report, meta


def gallery(report: EvalReport) -> list[GalleryEntry]:
    heat = np.zeros((32, 32), np.float32)
    return [GalleryEntry(np.zeros((32, 32, 3), np.uint8), Inspection(s.p_anomaly, Thresholds(0.5), heat, ()), s.label, s.path)
            for s in report.scores]  # fmt: skip


def settle(qtbot) -> None:
    """Let posted layout requests run (wrapped labels take a second pass for their height)."""
    for _ in range(4):
        QApplication.processEvents()
    qtbot.wait(10)


def cut_off(root: QWidget) -> list[str]:
    """Labels, buttons, combo and spin boxes under root drawn smaller than they need (text cut off)."""
    found = []
    for w in root.findChildren(QWidget):
        if not isinstance(w, (QLabel, QAbstractButton, QComboBox, QAbstractSpinBox)) or not w.isVisibleTo(root):
            continue
        if isinstance(w, QLabel) and w.wordWrap():
            if w.height() < w.heightForWidth(w.width()):
                found.append(f"{w.text()[:50]!r}: {w.height()} px tall, needs {w.heightForWidth(w.width())}")
        elif w.width() < w.minimumSizeHint().width() or (not isinstance(w, QLabel) and w.width() < w.sizeHint().width()):
            text = w.text() if isinstance(w, (QLabel, QAbstractButton)) else w.currentText() if isinstance(w, QComboBox) else ""
            found.append(f"{type(w).__name__} {text[:50]!r}: {w.width()} px wide, needs {w.sizeHint().width()}")
    return found


def columns_readable(table) -> bool:
    """Every column as wide as its header and cells need, and all of them in view."""
    header = table.horizontalHeader()
    widths = [table.columnWidth(c) for c in range(table.columnCount())]
    needs = [max(table.sizeHintForColumn(c), header.sectionSizeHint(c)) for c in range(table.columnCount())]
    return all(w >= n for w, n in zip(widths, needs)) and sum(widths) <= table.viewport().width()


def test_train_form_is_readable_at_the_default_splitter_in_1280x720(qtbot, dataset, tmp_path, monkeypatch) -> None:
    weights = tmp_path / "a folder with a rather long name for the station's weights" / "and one more level"
    monkeypatch.setenv("VISINSPECT_WEIGHTS", str(weights))
    tab = TrainTab()
    qtbot.addWidget(tab)
    tab.resize(*ROOM)
    tab.show()
    with qtbot.waitSignal(tab.dataset_scanned, timeout=30_000):
        tab.set_dataset_folder(str(dataset))
    tab.set_product("a_product_name_as_long_as_an_engineer_might_type_it")
    settle(qtbot)
    form = tab.form_scroll.widget()
    assert form.width() <= tab.form_scroll.viewport().width()  # nothing hidden off the right edge
    assert form.minimumSizeHint().width() <= tab.form_scroll.viewport().width()
    assert cut_off(form) == [] and cut_off(tab.run_box) == []
    for button in (tab.train_button, tab.cancel_button):  # in view without scrolling: the run box stays below the form
        assert button.visibleRegion().boundingRect().size() == button.size()
    assert not tab.use_button.isEnabled()  # nothing saved yet
    assert "good 6" in tab.picker.dataset_label.text()  # the counts are in the (readable) label
    assert tab.picker.target_label.toolTip() == str(weights / "a_product_name_as_long_as_an_engineer_might_type_it.safetensors")
    assert tab.minimumSizeHint().width() <= ROOM[0] and tab.minimumSizeHint().height() <= ROOM[1]
    assert tab.sizeHint().width() <= ROOM[0] and tab.sizeHint().height() <= ROOM[1]


@pytest.mark.parametrize("kind", [TrainTab, EvalTab])
def test_a_report_never_raises_the_tab_minimum_above_the_room_it_has(qtbot, kind) -> None:
    tab = kind()
    qtbot.addWidget(tab)
    tab.resize(*ROOM)
    tab.show()
    settle(qtbot)
    if kind is TrainTab:  # the curves' line of figures after an epoch (once wider than the screen)
        from engine.training.recipe import EpochReport

        tab.curves.add_epoch(EpochReport(14, 30, 0.0671, 0.985, 0.1382, 0.944, 1.6, early_stop=True))
        settle(qtbot)
        assert tab.minimumSizeHint().width() <= ROOM[0], tab.minimumSizeHint()
    before = tab.minimumSizeHint()
    report, meta = report_and_meta()
    tab.results.show_report(report, meta, title="Held-out report (widget)", how="the held-out split", precision="fp32", images=None)
    for entry in gallery(report):
        tab.results.add_gallery_entry(entry)
    settle(qtbot)
    for shown in (tab.report_view, tab.calibration):
        tab.results.setCurrentWidget(shown)
        settle(qtbot)
        assert tab.results.current_page() is shown
        size = tab.minimumSizeHint()
        assert size.width() <= ROOM[0] and size.height() <= ROOM[1], (type(shown).__name__, size)
        assert size.width() <= max(before.width(), size.width()) and tab.size().toTuple() == ROOM
    tab.results.setCurrentWidget(tab.report_view)
    settle(qtbot)
    view = tab.report_view
    assert cut_off(view) == [] and columns_readable(view.per_type)
    assert view.width() <= tab.results.width()  # no horizontal scrolling: the report reflows instead
    if kind is TrainTab:
        assert view.top_columns() < 3  # beside the form the three blocks do not fit in one row: they stack


def wheel(widget: QWidget, steps: int = -1) -> None:
    """One notch of the mouse wheel over widget (down for negative steps)."""
    event = QWheelEvent(QPointF(4, 4), QPointF(widget.mapToGlobal(QPoint(4, 4))), QPoint(0, 0), QPoint(0, 120 * steps),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)  # fmt: skip
    QApplication.sendEvent(widget, event)


def give_focus(qtbot, widget: QWidget) -> None:
    """Focus a field as a click would (its window made active first: a real X server has no focus without it)."""
    window = widget.window()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    widget.setFocus(Qt.FocusReason.MouseFocusReason)
    qtbot.waitUntil(widget.hasFocus, timeout=5000)


def test_the_wheel_scrolls_the_train_form_and_changes_no_field_it_passes(qtbot, dataset) -> None:
    tab = TrainTab()
    qtbot.addWidget(tab)
    tab.resize(*ROOM)
    tab.show()
    settle(qtbot)
    bar = tab.form_scroll.verticalScrollBar()
    assert bar.maximum() > 0  # the form is taller than the tab: there is something to scroll
    weights = tab.options.weights.kind
    fields = [tab.options.field_widget("backbone"), weights, tab.options.field_widget("epochs"), tab.options.field_widget("lr"),
              tab.picker.good_dir_combo]  # fmt: skip
    for field in fields:
        before, scrolled_to = (field.currentText() if isinstance(field, QComboBox) else field.value()), bar.value()
        wheel(field)
        after = field.currentText() if isinstance(field, QComboBox) else field.value()
        assert after == before, field
        assert bar.value() > scrolled_to or bar.value() == bar.maximum(), field
        bar.setValue(0)
    assert weights.currentData() == "imagenet"
    give_focus(qtbot, weights)
    wheel(weights)  # a focused field still takes the wheel
    assert weights.currentData() != "imagenet"


def test_the_wheel_changes_no_unfocused_field_in_evaluate_or_calibration(qtbot) -> None:
    tab = EvalTab()
    qtbot.addWidget(tab)
    tab.show()
    tab.model_combo.addItems(["a.safetensors", "b.safetensors"])
    tab.model_combo.setCurrentIndex(0)
    wheel(tab.model_combo)
    assert tab.model_combo.currentText() == "a.safetensors"
    view = CalibrationView()
    qtbot.addWidget(view)
    view.show()
    view.set_data([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.9], threshold=0.5)
    for spin in (view.threshold_spin, view.false_reject_spin):
        before = spin.value()
        wheel(spin, 1)
        assert spin.value() == before
    give_focus(qtbot, view.threshold_spin)
    wheel(view.threshold_spin, 1)
    assert view.threshold_spin.value() > 0.5


def test_calibration_puts_the_plot_above_its_controls_when_the_page_is_narrow(qtbot) -> None:
    view = CalibrationView()
    qtbot.addWidget(view)
    view.set_data([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.9], threshold=0.5)
    view.resize(480, 900)
    view.show()
    settle(qtbot)
    assert view.plot.width() > view.width() * 0.8  # the histogram is not squeezed beside the controls: above them
    assert view.plot.mapTo(view, QPoint(0, view.plot.height() - 1)).y() < view.confusion.mapTo(view, QPoint(0, 0)).y()
    view.resize(1100, 700)
    settle(qtbot)
    right_of_plot = view.plot.mapTo(view, QPoint(view.plot.width() - 1, 0)).x()
    assert right_of_plot <= view.confusion.mapTo(view, QPoint(0, 0)).x()  # side by side again (touching under the style sheet)
