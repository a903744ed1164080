"""The results log at the scale of a shift: sorted pages, exact sources, runs, and the audit trail of changes."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from engine.results import (
    AuditEntry,
    ChangeKind,
    ResultFilter,
    ResultOrder,
    ResultsLog,
    ResultsLogError,
    RunSummary,
    SortKey,
)
from engine.thresholds import Thresholds
from engine.types import Box, Inspection, ModelRef, Verdict

MODEL = ModelRef("/models/m.safetensors", "cd" * 32)


def _log(log: ResultsLog, item: str, p: float, *, boxes: int = 0, run_id: str = "run-a", source: str = "review /big"):
    regions = tuple(Box(i, i, 4, 4, p) for i in range(boxes))
    insp = Inspection(p, Thresholds(0.5), np.zeros((4, 4), np.float32), regions, model=MODEL)
    log.log_inspection(run_id=run_id, source=source, item=item, inspection=insp)


def test_rows_sort_by_any_listed_column_in_sql_with_ties_by_id_and_errors_last(tmp_path):
    with ResultsLog(tmp_path / "results.sqlite3") as log:
        _log(log, "a", 0.7, boxes=1)
        _log(log, "b", 0.95, boxes=3)
        log.log_error(run_id="run-a", source="review /big", item="c", model=MODEL, message="corrupt")
        _log(log, "d", 0.2)
        _log(log, "e", 0.7, boxes=2)  # ties with a on p: the newer row first when descending
        by_p = ResultOrder(SortKey.P_ANOMALY, descending=True)
        assert [r.item for r in log.query(order=by_p)] == ["b", "e", "a", "d", "c"]
        assert [r.item for r in log.query(order=ResultOrder(SortKey.P_ANOMALY, descending=False))] == [
            "d", "a", "e", "b", "c"
        ]  # fmt: skip
        assert [r.item for r in log.query(order=ResultOrder(SortKey.BOXES))] == ["b", "e", "a", "d", "c"]
        assert [r.item for r in log.query(order=by_p, limit=2, offset=1)] == ["e", "a"]
        assert [r.item for r in log.query(order=ResultOrder("item", descending=False))] == list("abcde")
        with pytest.raises(ValueError, match="p_anomaly"):
            ResultOrder("p_anomaly; DROP TABLE results")


def test_exact_source_tells_big_from_big_copy(tmp_path):
    with ResultsLog(tmp_path / "results.sqlite3") as log:
        _log(log, "1", 0.1, source="review /data/big")
        _log(log, "2", 0.1, source="review /data/big_copy")
        _log(log, "3", 0.1, source="review /data/big_copy")
        assert log.count(ResultFilter(source="review /data/big")) == 1
        assert log.count(ResultFilter(source="review /data/big_copy")) == 2
        assert log.count(ResultFilter(source_contains="big")) == 3
        assert log.sources() == ["review /data/big_copy", "review /data/big"]  # most recently used first


def test_runs_are_summarised_newest_first(tmp_path):
    with ResultsLog(tmp_path / "results.sqlite3") as log:
        for i in range(3):
            _log(log, f"old-{i}", 0.9 if i == 0 else 0.1, run_id="run-old", source="folder /line")
        log.log_error(run_id="run-old", source="folder /line (3 images)", item="x", model=MODEL, message="bad")
        _log(log, "new", 0.1, run_id="run-new", source="camera 0")
        new, old = log.runs()
        assert isinstance(old, RunSummary)
        assert (new.run_id, new.rows, new.source) == ("run-new", 1, "camera 0")
        assert (old.run_id, old.rows, old.anomalies, old.errors) == ("run-old", 4, 1, 1)
        assert old.source == "folder /line (3 images)"  # the source of its newest row
        assert old.first <= old.last <= new.first
        assert [r.run_id for r in log.runs(limit=1)] == ["run-new"]
        assert log.count(ResultFilter(run_id="run-old")) == 4


def test_a_listing_through_last_id_does_not_shift_while_rows_arrive(tmp_path):
    with ResultsLog(tmp_path / "results.sqlite3") as log:
        assert log.last_id() == 0
        for i in range(4):
            _log(log, str(i), 0.1)
        snapshot = ResultFilter(through_id=log.last_id())
        first_page = [r.item for r in log.query(snapshot, limit=2)]
        _log(log, "arrived later", 0.1)
        second_page = [r.item for r in log.query(snapshot, limit=2, offset=2)]
        assert first_page + second_page == ["3", "2", "1", "0"]
        assert log.count(snapshot) == 4 and log.count() == 5


def test_a_recorded_change_is_stored_and_survives_reopening(tmp_path):
    db = tmp_path / "results.sqlite3"
    with ResultsLog(db) as log:
        log.record_change(ChangeKind.THRESHOLD, "0.5000", "0.5136", who="engineer")
        log.record_change("model", "/w/a.safetensors", "/w/b.safetensors", who="engineer")
        with pytest.raises(ValueError, match="threshold, box_threshold"):
            log.record_change("colour", "red", "blue", who="engineer")
    with ResultsLog(db) as log:
        newest, oldest = log.changes()
        assert isinstance(newest, AuditEntry)
        assert (newest.what, newest.old, newest.new, newest.who) == (
            ChangeKind.MODEL, "/w/a.safetensors", "/w/b.safetensors", "engineer"
        )  # fmt: skip
        assert (oldest.what, oldest.old, oldest.new) == (ChangeKind.THRESHOLD, "0.5000", "0.5136")
        assert oldest.time <= newest.time
        assert [c.what for c in log.changes(limit=1, offset=1)] == [ChangeKind.THRESHOLD]
    log.close()
    with pytest.raises(ResultsLogError, match="closed"):
        log.record_change(ChangeKind.MODE, "operator", "engineer", who="engineer")


def test_a_change_recorded_while_the_database_is_locked_waits_and_is_written_later(tmp_path):
    db = tmp_path / "results.sqlite3"
    log = ResultsLog(db, timeout=0.05)
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        log.record_change(ChangeKind.BOX_THRESHOLD, "0.50", "0.60", who="engineer")  # returns: written by a thread
        assert log.changes() == []  # not written yet, and not lost either
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert log.flush()
    assert [(c.what, c.new) for c in log.changes()] == [(ChangeKind.BOX_THRESHOLD, "0.60")]
    log.close()


def test_a_log_of_schema_2_gets_the_audit_table_in_place_and_keeps_its_rows(tmp_path):
    db = tmp_path / "results.sqlite3"
    with ResultsLog(db) as log:
        _log(log, "kept.png", 0.9, boxes=1)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TABLE changes")  # what a log written by the previous version looks like
    conn.execute("ALTER TABLE results DROP COLUMN part_id")
    conn.execute("ALTER TABLE results DROP COLUMN recipe")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.close()
    with ResultsLog(db) as log:
        (row,) = log.query()
        assert (row.item, row.verdict) == ("kept.png", Verdict.ANOMALY)
        assert log.changes() == []
        log.record_change(ChangeKind.RECIPE, "resnet18 lr 1e-4", "vgg16_bn lr 1e-3", who="engineer")
    with ResultsLog(db) as log:
        assert [c.what for c in log.changes()] == [ChangeKind.RECIPE]
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "4"
    conn.close()
