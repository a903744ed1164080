"""The Review tab: a folder with a corrupt file, sorting and filtering, the per-file view, CSV and annotated exports,
the summary beside a filter, what a run saves."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from PySide6.QtCore import Qt

from engine.jobs.review import CSV_COLUMNS, ReviewRow
from engine.results import ResultFilter, ResultsLog
from engine.thresholds import Thresholds
from engine.types import ModelRef, Verdict
from visinspect_gui.widgets.review_actions import ExportScope
from visinspect_gui.widgets.review_model import ERROR, MODEL, P_ANOMALY, ReviewFilter, ReviewModel


def _review_folder(line_folder, tmp_path):
    """The six parts, two of them in a sub-folder, plus one corrupt PNG."""
    folder = tmp_path / "batch"
    shutil.copytree(line_folder, folder)
    (folder / "sub").mkdir()
    for name in ("part-05.png", "part-06.png"):
        shutil.move(folder / name, folder / "sub" / name)
    (folder / "part-03b.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    return folder


def _run_review(window, folder, qtbot, *, save_frames=False):
    window.tabs.setCurrentWidget(window.review)
    window.review.frames_box.setChecked(save_frames)
    with qtbot.waitSignal(window.review.review_finished, timeout=60_000) as done:
        assert window.review.start(str(folder))
    return done.args[0]


def test_batch_review_gives_one_error_row_and_exports(loaded_window, line_folder, tmp_path, qtbot, private_folders):
    w = loaded_window
    folder = _review_folder(line_folder, tmp_path)
    assert _run_review(w, folder, qtbot, save_frames=True) == "done"

    review = w.review
    rows = review.model.rows
    assert len(rows) == 7
    errors = [r for r in rows if r.verdict == Verdict.ERROR]
    assert len(errors) == 1 and errors[0].path.endswith("part-03b.png")
    assert errors[0].error.startswith("not a readable image")  # the reason; the path is its own column
    # Which model judged each row: its file name, with the full path and sha prefix on hover.
    ref = w.station.inspector.ref
    assert {review.proxy.index(r, MODEL).data() for r in range(7)} == {Path(ref.path).name}
    tip = review.proxy.index(0, MODEL).data(Qt.ItemDataRole.ToolTipRole)
    assert ref.path in tip and ref.sha256[:16] in tip
    # What the run saved besides the table: the three anomaly frames and their size.
    assert "3 anomaly frames saved (" in review.summary.text()
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
    # The summary says both what is shown and the totals; the export menu names both choices.
    assert review.summary.text().startswith("Showing 2 of 7 (filter: name contains 'sub')")
    assert "7 files" in review.summary.text() and "1 error" in review.summary.text()
    assert review.export_button.all_action.text() == "All 7 rows…"
    assert review.export_button.shown_action.text() == "Only the 2 rows shown (filter: name contains 'sub')…"
    shown_csv = tmp_path / "shown.csv"
    with qtbot.waitSignal(review.csv_exported, timeout=10_000):
        assert review.export_csv(shown_csv, ExportScope.SHOWN) == 2
    with open(shown_csv, newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 2 and {r["rows_exported"] for r in table} == {"2 of 7 rows shown: name contains 'sub'"}
    assert review.progress_label.text().startswith("Exported 2 of 7 rows shown")
    review.filter_edit.clear()
    assert review.summary.text().startswith("7 files")
    review.table.sortByColumn(P_ANOMALY, Qt.SortOrder.DescendingOrder)
    ps = [review.proxy.index(r, 2).data() for r in range(review.proxy.rowCount())]
    values = [float(p) for p in ps if p]
    assert values == sorted(values, reverse=True) and ps[-1] == ""  # the ERROR row (no score) sorts last

    # CSV of every row, even with a filter set: all seven, exactly one ERROR, and the file says so.
    review.verdict_combo.setCurrentIndex(review.verdict_combo.findData(Verdict.GOOD))
    out = tmp_path / "review.csv"
    with qtbot.waitSignal(review.csv_exported, timeout=10_000) as exported:
        assert review.export_csv(out, ExportScope.ALL) == 7  # written in a worker
    assert exported.args == [7, str(out)]
    with open(out, newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 7 and [r["verdict"] for r in table].count(Verdict.ERROR) == 1
    assert tuple(table[0])[: len(CSV_COLUMNS)] == CSV_COLUMNS  # the columns `visinspect predict` writes, then...
    assert {r["rows_exported"] for r in table} == {"all 7 rows"}  # ...which rows the file holds
    assert [r["path"] for r in table] == sorted(r["path"] for r in table)  # in folder order, not the sort shown
    error = next(r for r in table if r["verdict"] == Verdict.ERROR)
    assert "part-03b" not in error["error"] and error["inspected_at"]
    review.verdict_combo.setCurrentIndex(0)
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

    assert review.detail.text().count(".png") == 1  # the file is named once

    error_row = next(r for r in range(review.proxy.rowCount()) if review.proxy.index(r, 1).data() == Verdict.ERROR)
    review.table.selectRow(error_row)
    assert review.viewer.image is None
    caption = review.detail.text()
    assert caption.count("part-03b.png") == 1 and str(folder) not in caption and "not a readable image" in caption
    assert review.proxy.index(error_row, ERROR).data().startswith("not a readable image")


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


def test_ten_thousand_rows_sort_in_one_go_and_stay_sorted_while_rows_stream_in(qapp):
    model = ReviewModel()
    proxy = ReviewFilter()
    proxy.setSourceModel(model)
    rows = [ReviewRow(f"/line/{i:05d}.png", (i * 7919 % 10_000) / 10_000, (), Thresholds(0.5)) for i in range(10_000)]
    for start in range(0, 5_000, 256):
        model.add_rows(rows[start : min(start + 256, 5_000)])
    calls = []
    data = model.data
    model.data = lambda *a: calls.append(1) or data(*a)
    proxy.sort(P_ANOMALY, Qt.SortOrder.DescendingOrder)
    assert len(calls) < 100  # no Qt comparison per pair of rows calling back into Python (a 1.4 s freeze at 10k)
    model.data = data
    for start in range(5_000, len(rows), 256):
        model.add_rows(rows[start : start + 256])  # rows arriving while sorted take their sorted places
    proxy.set_filter(verdict=Verdict.ANOMALY)
    assert proxy.rowCount() == len([r for r in rows if r.verdict == Verdict.ANOMALY])
    shown = [float(proxy.index(r, P_ANOMALY).data()) for r in range(proxy.rowCount())]
    assert shown == sorted(shown, reverse=True)
    proxy.set_filter(verdict=None, text="0001")
    assert proxy.rowCount() == 11 and all("0001" in r.path for r in proxy.shown_rows())  # 00001 and 00010-00019
    proxy.set_filter(text="")
    proxy.sort(-1)  # no sort column: folder order again
    assert [proxy.index(r, 0).data() for r in range(3)] == [rows[0].path, rows[1].path, rows[2].path]


def test_the_slider_rejudges_only_the_loaded_models_rows(qapp):
    ours, theirs = ModelRef("/m/ours.safetensors", "a" * 64), ModelRef("/m/old.safetensors", "b" * 64)
    model = ReviewModel()
    model.set_current(ours)
    model.add_rows([ReviewRow(f"/f/{i}.png", 0.3, (), Thresholds(0.5), model=m) for i, m in enumerate((ours, theirs, ours))])
    assert model.set_decision(0.1) == 1  # one row left as it was
    assert [r.verdict for r in model.rows] == [Verdict.ANOMALY, Verdict.GOOD, Verdict.ANOMALY]
    assert model.other_model_rows() == [model.rows[1]]
    assert [model.index(r, MODEL).data() for r in range(3)] == ["ours.safetensors", "old.safetensors", "ours.safetensors"]


def test_threshold_slider_rejudges_the_reviewed_files_and_moving_back_restores_them(loaded_window, line_folder, tmp_path, qtbot):
    w = loaded_window
    folder = _review_folder(line_folder, tmp_path)
    assert _run_review(w, folder, qtbot) == "done"
    review = w.review
    as_run = {r.path: (r.verdict, r.boxes) for r in review.model.rows}
    none_else = {Verdict.REVIEW: 0, Verdict.NOT_PRODUCT: 0}  # the model has no review band and no guard statistics
    assert review.model.counts() == {Verdict.GOOD: 3, Verdict.ANOMALY: 3, Verdict.ERROR: 1, **none_else}

    # The preview follows the slider too.
    good = next(r for r in review.model.rows if r.verdict is Verdict.GOOD)
    review.show_row(good)
    qtbot.waitUntil(lambda: review.viewer.image is not None, timeout=30_000)
    assert review.viewer.boxes_drawn == 0 and "GOOD" in review.detail.text()

    w.model_panel.threshold.slider.setValue(0)  # everything readable is an anomaly at threshold 0
    assert review.model.counts() == {Verdict.GOOD: 0, Verdict.ANOMALY: 6, Verdict.ERROR: 1, **none_else}  # the unreadable file stays an error
    assert "3 verdict(s) differ from the review" in review.progress_label.text()
    assert "6 anomaly" in review.summary.text()
    assert all(r.boxes for r in review.model.rows if r.verdict is Verdict.ANOMALY)  # every newly flagged file has its boxes
    assert review.viewer.boxes_drawn >= 1 and "ANOMALY" in review.detail.text()  # the preview is judged again, not stale
    review.verdict_combo.setCurrentIndex(review.verdict_combo.findData(Verdict.ANOMALY))
    assert review.proxy.rowCount() == 6  # the verdict filter follows
    out = tmp_path / "what-if.csv"
    with qtbot.waitSignal(review.csv_exported, timeout=10_000):
        review.export_csv(out, ExportScope.SHOWN)
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
