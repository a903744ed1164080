"""What the operator sees of the review band and the out-of-distribution guard: an amber NEEDS REVIEW banner, a
'does not look like <product>' banner without boxes, their own counters, REVIEW / NOT_PRODUCT in History."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from engine.results import ResultFilter, ResultsLog
from engine.thresholds import Thresholds
from engine.types import Inspection, Verdict


def _inspection(p: float, thresholds: Thresholds, ood: float | None = None) -> Inspection:
    heat = np.zeros((16, 16), np.float32)
    heat[4:8, 4:8] = 1.0
    return Inspection(p, thresholds, heat, thresholds.regions(heat), ood_score=ood)


def test_banner_says_needs_review_in_amber_and_not_product_in_words(qtbot):
    from visinspect_gui.widgets.verdict_banner import VerdictBanner

    banner = VerdictBanner()
    qtbot.addWidget(banner)
    banner.set_product("bolt")
    t = Thresholds(decision=0.6, accept=0.3, ood_limit=1.0)
    banner.show_inspection(_inspection(0.45, t))
    assert banner.verdict is Verdict.REVIEW and banner.verdict_label.text() == "NEEDS REVIEW"
    assert banner.property("verdict") == "REVIEW" and "band 0.3000–0.6000" in banner.detail_label.text()
    banner.show_inspection(_inspection(0.9, t, ood=4.0))
    assert banner.verdict is Verdict.NOT_PRODUCT and banner.verdict_label.text() == "NOT BOLT"
    assert "does not look like bolt" in banner.detail_label.text() and "p(anomaly)" not in banner.detail_label.text()
    banner.set_product("a very long product name")
    banner.show_inspection(_inspection(0.9, t, ood=4.0))
    assert banner.verdict_label.text() == "NOT PRODUCT" and "a very long product name" in banner.detail_label.text()
    banner.show_inspection(_inspection(0.1, t))
    assert banner.verdict is Verdict.GOOD and banner.verdict_label.text() == "GOOD"
    banner.show_idle("READY")
    assert banner.verdict is None


def test_the_banner_is_filled_with_its_verdicts_colour_and_keeps_its_rounded_corners(qtbot):
    from PySide6.QtGui import QColor

    from visinspect_gui.widgets.verdict_banner import VerdictBanner

    banner = VerdictBanner()
    qtbot.addWidget(banner)
    banner.resize(440, 170)
    banner.show()
    t = Thresholds(decision=0.6, accept=0.3)
    seen = {}
    for p, verdict in ((0.9, Verdict.ANOMALY), (0.1, Verdict.GOOD), (0.45, Verdict.REVIEW)):
        banner.show_inspection(_inspection(p, t))
        image = banner.grab().toImage()
        seen[verdict] = image.pixelColor(8, image.height() // 2).name()  # inside the border, left of any text
        corner = image.pixelColor(0, 0)
        assert corner.name() != seen[verdict]  # the corner is outside the rounded rectangle
    assert seen == {Verdict.ANOMALY: "#c62f2f", Verdict.GOOD: "#1c8a45", Verdict.REVIEW: "#c77700"}
    banner.show_idle("READY")
    image = banner.grab().toImage()
    assert image.pixelColor(8, image.height() // 2) == QColor("#2a2d33")


def test_a_new_frame_relays_out_nothing_yet_every_verdicts_text_fits_the_banner(qtbot):
    """20 texts a second repaint the banner's figures without a layout pass; a wrapped verdict still shows every line."""
    from PySide6.QtCore import QEvent, QObject

    from visinspect_gui.widgets.verdict_banner import VerdictBanner

    class Layouts(QObject):
        count = 0

        def eventFilter(self, obj, event):  # noqa: N802 - Qt's name
            self.count += event.type() == QEvent.Type.LayoutRequest
            return False

    banner = VerdictBanner()
    qtbot.addWidget(banner)
    banner.setFixedWidth(440)
    banner.set_product("bolt")
    banner.show()
    t = Thresholds(decision=0.6, accept=0.3, ood_limit=1.0)
    banner.show_inspection(_inspection(0.101, t), latency_ms=31, item="part-0001.png")
    qtbot.wait(20)
    layouts = Layouts()
    banner.installEventFilter(layouts)
    for i in range(10):  # the same verdict, new figures and file names
        banner.show_inspection(_inspection(0.1 + i / 100, t), latency_ms=30 + i, item=f"part-{i + 2:04d}.png")
        qtbot.wait(5)
    assert layouts.count == 0 and banner.item_label.text() == "part-0011.png"
    for p, ood in ((0.45, None), (0.9, 4.0), (0.1, None)):  # wrapped texts of other verdicts, then GOOD again
        banner.show_inspection(_inspection(p, t, ood), latency_ms=30, item="a-rather-long-file-name-of-a-part.png")
        qtbot.wait(5)
        for label in (banner.detail_label, banner.item_label):
            needed = label.heightForWidth(label.width()) if label.wordWrap() else label.sizeHint().height()
            assert label.height() >= needed
            assert label.geometry().bottom() <= banner.height()


def test_the_review_and_not_product_colours_differ_from_every_other_verdict():
    from visinspect_gui.widgets.verdict_style import VERDICT_RGB

    assert set(VERDICT_RGB) == set(Verdict) and len(set(VERDICT_RGB.values())) == len(Verdict)


def test_counters_count_review_and_not_product_apart_and_show_them_once_there_are_some(qtbot):
    from visinspect_gui.widgets.counters import CountersPanel

    panel = CountersPanel()
    qtbot.addWidget(panel)
    panel.show()
    for verdict in (Verdict.GOOD, Verdict.ANOMALY, Verdict.GOOD):
        panel.add(verdict, 0.2)
    panel.flush()
    assert not panel._review.isVisible() and not panel._not_product.isVisible()
    for verdict in (Verdict.REVIEW, Verdict.REVIEW, Verdict.NOT_PRODUCT):
        panel.add(verdict, 0.4)
    panel.flush()
    assert (panel.inspected, panel.good, panel.anomaly, panel.review, panel.not_product) == (6, 2, 1, 2, 1)
    assert panel._review.isVisible() and panel._review.value.text() == "2" and panel._not_product.value.text() == "1"
    assert panel.yield_percent == pytest.approx(100 * 2 / 6)  # a part that needs review has not passed
    panel.reset()
    assert panel.review == panel.not_product == 0


@pytest.fixture
def band_and_guard_model(trained, tmp_path):
    """The small model with its guard statistics and a review band that puts part of the line's good parts in review."""
    from engine.modelfile import save_model, update_meta

    result, _ = trained
    path = save_model(tmp_path / "guarded.safetensors", result.model, result.meta, calibration=result.calibration, ood=result.ood)
    update_meta(path, accept_threshold=0.0)  # every part below the threshold needs review
    return path


def test_station_shows_review_and_not_product_logs_them_and_history_filters_them(
    make_window, band_and_guard_model, line_folder, qtbot, run_to_end, private_folders, tmp_path
):
    folder = tmp_path / "line"
    shutil.copytree(line_folder, folder)
    cv2.imwrite(str(folder / "part-07.png"), np.zeros((128, 128, 3), np.uint8))  # a lens cap on the camera
    w = make_window()
    with qtbot.waitSignal(w.station.model_loaded, timeout=30_000):
        w.open_model(band_and_guard_model)
    w.source_panel.set_source(str(folder))
    run_to_end(w)
    banner, counters = w.live.banner, w.live.counters
    assert banner.verdict is Verdict.NOT_PRODUCT and banner.verdict_label.text() == "NOT SYNTHETIC"  # the last frame
    assert (counters.review, counters.anomaly, counters.not_product, counters.good) == (3, 3, 1, 0)
    assert w.live.viewer.boxes_drawn == 0
    run_id = w.station.run_id
    w.close()

    with ResultsLog(private_folders[0] / "results.sqlite3") as log:
        verdicts = [r.verdict for r in log.query(ResultFilter(run_id=run_id))]
    assert sorted(v.value for v in verdicts) == ["ANOMALY"] * 3 + ["NOT_PRODUCT"] + ["REVIEW"] * 3

    again = make_window()
    with qtbot.waitSignal(again.history.loaded, timeout=10_000):
        again.tabs.setCurrentWidget(again.history)
    combo = again.history.verdict_combo
    assert combo.itemText(combo.findData(Verdict.REVIEW)) == "NEEDS REVIEW"
    with qtbot.waitSignal(again.history.loaded, timeout=10_000):
        combo.setCurrentIndex(combo.findData(Verdict.REVIEW))
    assert again.history.model.rowCount() == 3
    with qtbot.waitSignal(again.history.loaded, timeout=10_000):
        combo.setCurrentIndex(combo.findData(Verdict.NOT_PRODUCT))
    assert again.history.model.rowCount() == 1


def test_the_held_out_numbers_show_the_review_rate_and_not_product_beside_accuracy(qtbot):
    from engine.evaluation.metrics import EvalReport
    from visinspect_gui.widgets.report_view import MetricsPanel

    panel = MetricsPanel()
    qtbot.addWidget(panel)
    plain = EvalReport(n=8, threshold=0.6, accuracy=0.75, balanced_accuracy=0.75, tp=3, fn=1, fp=1, tn=3, image_auroc=0.9)
    panel.set_report(plain)
    assert panel.text("needs review") == "–  (no review band)" and panel.text("not product") == "–  (guard off)"
    from dataclasses import replace

    panel.set_report(replace(plain, accept=0.3, review=2, ood_limit=1.0, not_product=1))
    assert "(2 of 8)" in panel.text("needs review") and "25" in panel.text("needs review")
    assert "(1 of 8)" in panel.text("not product") and panel.text("accuracy") == "75.0%"  # still at the threshold
