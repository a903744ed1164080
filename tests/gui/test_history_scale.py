"""History at the scale of a day's reviews: a 12,540-row log is listed a page at a time to its last row, sorted and
filtered by the database (date and time to the minute, exact source, run), exported whole; changes are listed too."""

from __future__ import annotations

import csv
import shutil
import sqlite3
from datetime import datetime, timedelta

import numpy as np
import pytest
from PySide6.QtCore import QDateTime, QPoint, Qt

from engine.results import ChangeKind, ResultFilter, ResultsLog
from engine.thresholds import Thresholds
from engine.types import Box, Inspection, ModelRef, Verdict
from visinspect_gui.widgets.history_model import PAGE_ROWS
from visinspect_gui.widgets.history_tab import HistoryTab

MODEL = ModelRef("/models/m.safetensors", "ef" * 32)
BASE = datetime(2026, 11, 20, 8, 0)  # the first row is written one second after it, each next one a second later
RUNS = (("review-big", "review /data/big", 10_040), ("review-copy", "review /data/big_copy", 2_000),
        ("live-cam", "camera 0", 500))  # fmt: skip
TOTAL = sum(n for *_, n in RUNS)
HIGHEST = ("review-copy", 777)  # the one row at p = 0.9999; every other one is under 0.9973


def _p(run: str, i: int) -> float:
    return 0.9999 if (run, i) == HIGHEST else float((i * 7919 + len(run)) % 9973) / 10_000


@pytest.fixture(scope="module")
def big_log(tmp_path_factory):
    """A results log of 12,540 rows in three runs, written through ResultsLog, one second apart."""
    db = tmp_path_factory.mktemp("big-log") / "results.sqlite3"
    heatmap = np.zeros((2, 2), np.float32)
    with ResultsLog(db) as log:
        for run, source, n in RUNS:
            for i in range(n):
                item = i if source.startswith("camera") else f"{source.split(' ', 1)[1]}/lot{i % 4}/part-{i:05d}.png"
                if i % 1000 == 999:
                    log.log_error(run_id=run, source=source, item=item, model=MODEL, message="cannot be decoded")
                    continue
                p = _p(run, i)
                boxes = (Box(1, 1, 4, 4, p),) if p > 0.5 else ()
                insp = Inspection(p, Thresholds(0.5), heatmap, boxes, model=MODEL)
                log.log_inspection(run_id=run, source=source, item=item, inspection=insp)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("UPDATE results SET time = ? + id", (BASE.timestamp(),))
    conn.close()
    return db


@pytest.fixture
def history(big_log, tmp_path, qtbot):
    """The History tab over a private copy of the big log, at the width it gets in a 1280x720 window."""
    from visinspect_gui.app import setup_application

    setup_application()
    db = tmp_path / "results.sqlite3"
    shutil.copyfile(big_log, db)
    log = ResultsLog(db)
    tab = HistoryTab(log)
    qtbot.addWidget(tab)
    tab.resize(900, 560)
    tab.show()
    yield tab
    tab.shutdown()
    log.close()


def _listed(tab: HistoryTab, qtbot, total: int) -> None:
    """Refresh-free wait until the first page of a query of `total` rows is listed."""
    qtbot.waitUntil(lambda: tab.model.total == total and tab.model.rowCount() == min(total, PAGE_ROWS), timeout=10_000)


def test_the_whole_log_is_listed_by_scrolling_and_no_query_runs_on_the_gui_thread(history, qtbot):
    history.refresh()
    assert history.model.rowCount() == 0 and history.summary.text() == "Loading…"  # the query runs in a worker
    _listed(history, qtbot, TOTAL)
    assert history.summary.text().startswith(f"Rows 1–{PAGE_ROWS} of {TOTAL:,} listed, by Time newest first")
    while not history.model.complete:
        before = history.model.rowCount()
        history.table.scrollToBottom()  # as the operator scrolls down, the next page loads
        qtbot.waitUntil(lambda n=before: history.model.rowCount() > n, timeout=10_000)
    rows = history.model.rows
    assert len(rows) == TOTAL and len({r.id for r in rows}) == TOTAL
    assert [r.time for r in rows] == sorted((r.time for r in rows), reverse=True)
    assert history.summary.text().startswith(f"All {TOTAL:,} matching result(s) listed")


def test_clicking_the_p_anomaly_header_sorts_the_whole_log_in_the_database(history, qtbot):
    history.refresh()
    _listed(history, qtbot, TOTAL)
    header = history.table.horizontalHeader()
    at = QPoint(header.sectionViewportPosition(2) + header.sectionSize(2) // 2, header.height() // 2)
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=at)
    qtbot.waitUntil(lambda: history.model.order.key.value == "p_anomaly" and history.model.rowCount() == PAGE_ROWS)
    if not history.model.order.descending:  # the first click sorts lowest first; a second one highest first
        assert history.model.rows[0].p_anomaly == min(r.p_anomaly for r in history.model.rows)
        qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=at)
        qtbot.waitUntil(lambda: history.model.order.descending and history.model.rowCount() == PAGE_ROWS)
    first = history.model.rows[0]
    assert (first.run_id, first.p_anomaly) == ("review-copy", 0.9999)
    assert first.item.endswith("part-00777.png")
    ps = [r.p_anomaly for r in history.model.rows]
    assert ps == sorted(ps, reverse=True)
    assert "by p(anomaly) highest first" in history.summary.text()
    assert history.model.index(0, 2).data() == "0.9999"


def test_date_and_time_filter_works_to_the_minute(history, qtbot):
    history.refresh()
    _listed(history, qtbot, TOTAL)
    since, until = BASE + timedelta(minutes=5), BASE + timedelta(minutes=9)
    history.since_edit.setDateTime(QDateTime(since))
    history.until_edit.setDateTime(QDateTime(until))
    history.use_dates.setChecked(True)
    _listed(history, qtbot, 300)  # minutes 8:05 to 8:09, both included: 5 x 60 rows
    times = [datetime.fromtimestamp(r.time) for r in history.model.rows]
    assert min(times) == since and max(times) == until + timedelta(seconds=59)


def test_exact_source_and_run_filters_tell_big_from_big_copy(history, qtbot):
    history.refresh()
    _listed(history, qtbot, TOTAL)
    qtbot.waitUntil(lambda: history.source_combo.count() == 4 and history.run_combo.count() == 4, timeout=10_000)
    history.source_combo.setCurrentIndex(history.source_combo.findData("review /data/big"))
    _listed(history, qtbot, 10_040)
    assert {r.source for r in history.model.rows} == {"review /data/big"}
    history.source_combo.setCurrentIndex(history.source_combo.findData("review /data/big_copy"))
    _listed(history, qtbot, 2_000)
    history.source_combo.setCurrentIndex(0)
    run_index = history.run_combo.findData("live-cam")
    assert "camera 0 · 500 rows" in history.run_combo.itemText(run_index)
    history.run_combo.setCurrentIndex(run_index)
    _listed(history, qtbot, 500)
    assert {r.run_id for r in history.model.rows} == {"live-cam"}


def test_item_shows_its_folder_under_the_source_and_every_column_fits_without_scrolling(history, qtbot):
    history.refresh()
    _listed(history, qtbot, TOTAL)
    qtbot.waitUntil(lambda: history.run_combo.count() == 4, timeout=10_000)
    history.run_combo.setCurrentIndex(history.run_combo.findData("review-big"))
    _listed(history, qtbot, 10_040)
    model, table = history.model, history.table
    newest = model.rows[0]
    assert model.index(0, 4).data() == f"lot{10_039 % 4}/part-10039.png"  # relative to review /data/big
    assert model.index(0, 3).data() == "review · big"
    assert newest.item in model.index(0, 4).data(Qt.ItemDataRole.ToolTipRole)
    qtbot.wait(50)  # let the layout settle
    assert not table.horizontalScrollBar().isVisible()
    header, fm = table.horizontalHeader(), table.fontMetrics()
    for col in range(model.columnCount()):
        label = model.headerData(col, Qt.Orientation.Horizontal)
        assert header.sectionSize(col) > fm.horizontalAdvance(label) + 8, label  # no "ourc" or "revi…" headers
    assert header.sectionSize(0) > fm.horizontalAdvance(model.index(0, 0).data())


def test_export_writes_every_matching_row_not_only_those_listed_and_says_so(history, qtbot, tmp_path):
    history.refresh()
    _listed(history, qtbot, TOTAL)
    history.verdict_combo.setCurrentIndex(history.verdict_combo.findData(Verdict.ERROR))
    errors = sum(n // 1000 for *_, n in RUNS)
    _listed(history, qtbot, errors)
    history.verdict_combo.setCurrentIndex(0)
    qtbot.waitUntil(lambda: history.run_combo.count() == 4, timeout=10_000)
    history.run_combo.setCurrentIndex(history.run_combo.findData("review-copy"))
    _listed(history, qtbot, 2_000)
    out = tmp_path / "history.csv"
    with qtbot.waitSignal(history.exported, timeout=20_000) as exported:
        history.export_csv(str(out))
    assert exported.args[0] == 2_000 and history.model.rowCount() == PAGE_ROWS
    assert "all 2,000 result(s) matching the filters (not only those listed)" in history.summary.text()
    with open(out, newline="", encoding="utf-8") as f:
        assert {r["run_id"] for r in csv.DictReader(f)} == {"review-copy"}


def test_a_recorded_change_shows_in_the_changes_view(history, qtbot):
    history.results.record_change(ChangeKind.THRESHOLD, "0.5000", "0.5136", who="engineer")
    history.results.record_change(ChangeKind.MODEL, "a.safetensors", "b.safetensors", who="engineer")
    history.views.setCurrentWidget(history.changes)
    history.refresh()
    changes = history.changes.model
    qtbot.waitUntil(lambda: changes.rowCount() == 2, timeout=10_000)
    assert [changes.index(1, c).data() for c in (1, 2, 3)] == ["engineer", "Threshold", "0.5000  →  0.5136"]
    assert changes.index(0, 3).data() == "a.safetensors  →  b.safetensors"
    assert "2 change(s) listed" in history.changes.summary.text()
    assert history.results.count(ResultFilter()) == TOTAL  # changes are not results


def test_history_fits_a_1280x720_window_without_a_horizontal_scroll_bar(make_window, qtbot):
    w = make_window()
    w.resize(1280, 720)
    long_source = "review /home/operator/lines/station-b/big_copy"
    for i in range(3):
        insp = Inspection(0.9, Thresholds(0.5), np.zeros((2, 2), np.float32), (Box(1, 1, 4, 4, 0.9),), model=MODEL)
        w.results.log_inspection(run_id="run-x", source=long_source, item=f"{long_source[7:]}/lot{i}/part-{i}.png",
                                 inspection=insp)  # fmt: skip
    with qtbot.waitSignal(w.history.loaded, timeout=10_000):
        w.tabs.setCurrentWidget(w.history)
    qtbot.wait(50)  # let the layout settle
    table = w.history.table
    assert w.history.minimumSizeHint().width() <= 900  # what History gets beside a 350 px sidebar at 1280 px
    assert not table.horizontalScrollBar().isVisible()
    assert w.history.model.index(0, 3).data() == "review · big_copy"
    assert w.history.model.index(0, 4).data() == "lot2/part-2.png"
