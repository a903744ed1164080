"""The Review tab: a folder with a corrupt file, sorting and filtering, the per-file view, CSV and annotated exports."""

from __future__ import annotations

import csv
import json
import shutil
import time

from PySide6.QtCore import Qt

from engine.jobs.review import CSV_COLUMNS, ReviewRow
from engine.results import ResultFilter, ResultsLog
from engine.thresholds import Thresholds
from engine.types import Verdict
from visinspect_gui.widgets.review_model import ReviewFilter, ReviewModel


def _review_folder(line_folder, tmp_path):
    """The six parts, two of them in a sub-folder, plus one corrupt PNG."""
    folder = tmp_path / "batch"
    shutil.copytree(line_folder, folder)
    (folder / "sub").mkdir()
    for name in ("part-05.png", "part-06.png"):
        shutil.move(folder / name, folder / "sub" / name)
    (folder / "part-03b.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    return folder


def _run_review(window, folder, qtbot):
    window.tabs.setCurrentWidget(window.review)
    with qtbot.waitSignal(window.review.review_finished, timeout=60_000) as done:
        assert window.review.start(str(folder))
    return done.args[0]


def test_batch_review_gives_one_error_row_and_exports(loaded_window, line_folder, tmp_path, qtbot, private_folders):
    w = loaded_window
    folder = _review_folder(line_folder, tmp_path)
    assert _run_review(w, folder, qtbot) == "done"

    review = w.review
    rows = review.model.rows
    assert len(rows) == 7
    errors = [r for r in rows if r.verdict == Verdict.ERROR]
    assert len(errors) == 1 and errors[0].path.endswith("part-03b.png") and errors[0].error
    assert sum(r.verdict == Verdict.ANOMALY for r in rows) == 3 and sum(r.verdict == Verdict.GOOD for r in rows) == 3
    assert review.progress.value() == review.progress.maximum()
    assert review.progress_label.text().startswith("Done: 7 files")
    assert "1 error" in review.summary.text()
    # Sub-folder files are shown relative to the reviewed folder.
    shown = {review.proxy.index(r, 0).data() for r in range(review.proxy.rowCount())}
    assert "sub/part-06.png" in {s.replace("\\", "/") for s in shown}

    # Filter to the error row, then to anomalies; sort by p(anomaly) descending.
    review.verdict_combo.setCurrentIndex(review.verdict_combo.findData(Verdict.ERROR))
    assert review.proxy.rowCount() == 1
    review.verdict_combo.setCurrentIndex(review.verdict_combo.findData(Verdict.ANOMALY))
    assert review.proxy.rowCount() == 3
    review.verdict_combo.setCurrentIndex(0)
    review.filter_edit.setText("sub")
    assert review.proxy.rowCount() == 2
    review.filter_edit.clear()
    review.table.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    ps = [review.proxy.index(r, 2).data() for r in range(review.proxy.rowCount())]
    values = [float(p) for p in ps if p]
    assert values == sorted(values, reverse=True) and ps[-1] == ""  # the ERROR row (no score) sorts last

    # CSV of what is shown: all seven, exactly one ERROR.
    out = tmp_path / "review.csv"
    with qtbot.waitSignal(review.csv_exported, timeout=10_000) as exported:
        assert review.export_csv(out) == 7  # written in a worker
    assert exported.args == [7, str(out)]
    with open(out, newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 7 and [r["verdict"] for r in table].count(Verdict.ERROR) == 1
    assert tuple(table[0]) == CSV_COLUMNS  # the same columns as `visinspect predict` writes
    assert {r["run_id"] for r in table} == {review.run_id} and all(r["model_sha256"] == w.station.inspector.ref.sha256 for r in table)

    # Annotated copies of the three anomalies, names keeping their sub-folder.
    annotated = tmp_path / "annotated"
    assert review.save_annotated(str(annotated))
    qtbot.waitUntil(lambda: review._saver is None, timeout=60_000)
    files = sorted(p.name for p in annotated.iterdir())
    assert len(files) == 3 and any(name.startswith("sub__") for name in files)

    # Every verdict went to the results log, with the anomaly frames saved.
    log = ResultsLog(private_folders[0] / "results.sqlite3")
    try:
        assert log.count(ResultFilter(run_id=review.run_id)) == 7
        assert log.count(ResultFilter(Verdict.ERROR, run_id=review.run_id)) == 1
        saved = [r.frame_path for r in log.query(ResultFilter(Verdict.ANOMALY, run_id=review.run_id))]
        assert len(saved) == 3 and all(saved)
    finally:
        log.close()


def test_clicking_a_row_shows_that_image_with_heatmap_and_boxes(loaded_window, line_folder, tmp_path, qtbot):
    w = loaded_window
    folder = _review_folder(line_folder, tmp_path)
    _run_review(w, folder, qtbot)
    review = w.review
    row = next(r for r in range(review.proxy.rowCount()) if review.proxy.index(r, 1).data() == Verdict.ANOMALY)
    review.table.selectRow(row)
    qtbot.waitUntil(lambda: review.viewer.image is not None, timeout=30_000)
    assert review.viewer.image.shape == (128, 128, 3)
    assert review.viewer.boxes_drawn >= 1
    assert "ANOMALY" in review.detail.text()

    error_row = next(r for r in range(review.proxy.rowCount()) if review.proxy.index(r, 1).data() == Verdict.ERROR)
    review.table.selectRow(error_row)
    assert review.viewer.image is None and "part-03b.png" in review.detail.text()


def test_review_can_be_cancelled(loaded_window, line_folder, tmp_path, qtbot):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(300):
        shutil.copyfile(line_folder / f"part-{i % 6 + 1:02d}.png", folder / f"{i:04d}.png")
    w = loaded_window
    review = w.review
    with qtbot.waitSignal(review.review_finished, timeout=60_000) as done:
        review.start(str(folder))
        qtbot.waitUntil(lambda: len(review.model.rows) > 0, timeout=30_000)
        review.cancel_button.click()
    assert done.args == ["cancelled"]
    assert 0 < len(review.model.rows) < 300
    assert review.progress_label.text().startswith("Cancelled after")
    assert review.run_button.isEnabled()


def test_ten_thousand_rows_sort_and_filter_quickly(qapp):
    model = ReviewModel()
    proxy = ReviewFilter()
    proxy.setSourceModel(model)
    rows = [ReviewRow(f"/line/{i:05d}.png", (i * 7919 % 10_000) / 10_000, (), Thresholds(0.5)) for i in range(10_000)]
    t0 = time.perf_counter()
    for start in range(0, len(rows), 256):
        model.add_rows(rows[start : start + 256])
    proxy.sort(2, Qt.SortOrder.DescendingOrder)
    proxy.set_filter(verdict=Verdict.ANOMALY)
    elapsed = time.perf_counter() - t0
    assert proxy.rowCount() == len([r for r in rows if r.verdict == Verdict.ANOMALY])
    top = [float(proxy.index(r, 2).data()) for r in range(5)]
    assert top == sorted(top, reverse=True)
    assert elapsed < 5.0, f"10k rows took {elapsed:.2f} s"


def test_threshold_slider_rejudges_the_reviewed_files_and_moving_back_restores_them(loaded_window, line_folder, tmp_path, qtbot):
    w = loaded_window
    folder = _review_folder(line_folder, tmp_path)
    assert _run_review(w, folder, qtbot) == "done"
    review = w.review
    as_run = {r.path: (r.verdict, r.boxes) for r in review.model.rows}
    assert review.model.counts() == {Verdict.GOOD: 3, Verdict.ANOMALY: 3, Verdict.ERROR: 1}

    # The preview follows the slider too.
    good = next(r for r in review.model.rows if r.verdict is Verdict.GOOD)
    review.show_row(good)
    qtbot.waitUntil(lambda: review.viewer.image is not None, timeout=30_000)
    assert review.viewer.boxes_drawn == 0 and "GOOD" in review.detail.text()

    w.model_panel.threshold.slider.setValue(0)  # everything readable is an anomaly at threshold 0
    assert review.model.counts() == {Verdict.GOOD: 0, Verdict.ANOMALY: 6, Verdict.ERROR: 1}  # the unreadable file stays an error
    assert "3 verdict(s) differ from the review" in review.progress_label.text()
    assert "6 anomaly" in review.summary.text()
    assert all(r.boxes for r in review.model.rows if r.verdict is Verdict.ANOMALY)  # every newly flagged file has its boxes
    assert review.viewer.boxes_drawn >= 1 and "ANOMALY" in review.detail.text()  # the preview is judged again, not stale
    review.verdict_combo.setCurrentIndex(review.verdict_combo.findData(Verdict.ANOMALY))
    assert review.proxy.rowCount() == 6  # the verdict filter follows
    out = tmp_path / "what-if.csv"
    with qtbot.waitSignal(review.csv_exported, timeout=10_000):
        review.export_csv(out)
    with open(out, newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 6 and all(json.loads(r["boxes"]) for r in table) and {r["threshold"] for r in table} == {"0.000000"}

    w.model_panel.threshold.slider.setValue(7000)  # a step away...
    w.model_panel.reset_threshold.click()  # ...and back to the model's own threshold: the review as it ran
    assert {r.path: (r.verdict, r.boxes) for r in review.model.rows} == as_run  # boxes are back, none lost
    assert "0 verdict(s) differ from the review" in review.progress_label.text()
    review.verdict_combo.setCurrentIndex(0)
    with qtbot.waitSignal(review.csv_exported, timeout=10_000):
        review.export_csv(out)
    with open(out, newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    anomalies = [r for r in table if r["verdict"] == "ANOMALY"]
    assert len(anomalies) == 3 and all(json.loads(r["boxes"]) for r in anomalies)
