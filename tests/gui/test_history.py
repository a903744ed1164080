"""Results log from the station: every live verdict lands in SQLite, survives reopening, and the History tab shows it."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

from engine.results import ResultFilter, ResultsLog
from engine.types import Verdict


def test_results_are_logged_and_survive_reopening(make_window, model_file, line_folder, qtbot, run_to_end, private_folders):
    w = make_window()
    with qtbot.waitSignal(w.station.model_loaded, timeout=30_000):
        w.open_model(model_file)
    w.source_panel.set_source(str(line_folder))
    run_to_end(w)
    run_id = w.station.run_id
    w.close()

    db = private_folders[0] / "results.sqlite3"
    with ResultsLog(db) as log:
        rows = log.query(ResultFilter(run_id=run_id))
        assert len(rows) == 6
        assert {r.verdict for r in rows} == {Verdict.GOOD, Verdict.ANOMALY}
        anomalies = [r for r in rows if r.verdict == Verdict.ANOMALY]
        assert len(anomalies) == 3 and all(r.frame_path and Path(r.frame_path).is_file() for r in anomalies)
        assert all(r.boxes for r in anomalies) and all(r.model_hash for r in rows)
        assert {Path(r.item).name for r in rows} == {f"part-{i:02d}.png" for i in range(1, 7)}

    # A new station on the same data folder lists them in History.
    again = make_window()
    with qtbot.waitSignal(again.history.loaded, timeout=10_000):
        again.tabs.setCurrentWidget(again.history)
    assert again.history.model.rowCount() == 6

    with qtbot.waitSignal(again.history.loaded, timeout=10_000):
        again.history.verdict_combo.setCurrentIndex(again.history.verdict_combo.findData(Verdict.ANOMALY))
    assert again.history.model.rowCount() == 3

    # Selecting an anomaly shows its saved frame with the logged boxes.
    again.history.table.selectRow(0)
    qtbot.waitUntil(lambda: again.history.viewer.image is not None, timeout=10_000)
    assert again.history.viewer.image.shape == (128, 128, 3)
    assert again.history.viewer.boxes_drawn >= 1

    qtbot.waitUntil(lambda: again.history.run_combo.count() == 2, timeout=10_000)  # all runs, and this one
    with qtbot.waitSignal(again.history.loaded, timeout=10_000):
        again.history.run_combo.setCurrentIndex(again.history.run_combo.findData(run_id))
    assert again.history.model.rowCount() == 3

    with qtbot.waitSignal(again.history.loaded, timeout=10_000):
        again.history.use_dates.setChecked(True)  # the last seven days, today included
    assert again.history.model.rowCount() == 3

    with qtbot.waitSignal(again.history.loaded, timeout=10_000):
        again.history.until_edit.setDateTime(again.history.since_edit.dateTime())  # a minute a week ago
    assert again.history.model.rowCount() == 0

    with qtbot.waitSignal(again.history.loaded, timeout=10_000):
        again.history.use_dates.setChecked(False)
    out = private_folders[0] / "history.csv"
    with qtbot.waitSignal(again.history.exported, timeout=10_000) as exported:
        again.history.export_csv(str(out))
    assert exported.args[0] == 3
    with open(out, newline="", encoding="utf-8") as f:
        assert [r["verdict"] for r in csv.DictReader(f)] == [Verdict.ANOMALY] * 3


def test_a_locked_results_database_shows_in_the_status_bar_and_the_station_goes_on(loaded_window, line_folder, run_to_end):
    w = loaded_window
    locker = sqlite3.connect(w.results.path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another program holds the database
    try:
        w.source_panel.set_source([str(line_folder / "part-01.png"), str(line_folder / "part-02.png")])
        assert run_to_end(w) == "ended"
        assert w.live.counters.inspected == 2  # inspection did not stop
        assert w.status.log_warning.isVisibleTo(w)
        assert "locked" in w.status.log_warning.toolTip()
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert w.results.flush() and w.results.last_error is None  # the waiting rows are written afterwards


def test_history_preview_recomputes_the_heatmap_when_the_judging_model_is_loaded(loaded_window, line_folder, qtbot, run_to_end):
    w = loaded_window
    w.source_panel.set_source(str(line_folder))
    run_to_end(w)
    with qtbot.waitSignal(w.history.loaded, timeout=10_000):
        w.tabs.setCurrentWidget(w.history)
    with qtbot.waitSignal(w.history.loaded, timeout=10_000):
        w.history.verdict_combo.setCurrentIndex(w.history.verdict_combo.findData(Verdict.ANOMALY))
    w.history.table.selectRow(0)
    qtbot.waitUntil(lambda: w.history.viewer.inspection is not None, timeout=30_000)
    row = w.history.model.rows[0]
    shown = w.history.viewer.inspection
    assert shown.heatmap.shape == w.history.viewer.image.shape[:2] and float(shown.heatmap.max()) > 0
    assert shown.boxes == row.boxes and shown.verdict == Verdict.ANOMALY  # the logged decision, not a new one
    assert "heatmap recomputed" in w.history.detail.text()
