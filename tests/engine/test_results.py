"""The results log: rows survive reopening, frames are saved, filters and CSV work, locks lose nothing."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from engine.data.decode import read_image
from engine.results import (
    CSV_COLUMNS,
    ResultFilter,
    ResultRow,
    ResultsLog,
    ResultsLogError,
    default_results_path,
    export_csv,
    new_run_id,
)
from engine.thresholds import Thresholds
from engine.types import Box, Inspection, ModelRef, Verdict

MODEL = ModelRef("/models/m.safetensors", "ab" * 32)


def _inspection(verdict: Verdict = Verdict.ANOMALY, p: float = 0.9) -> Inspection:
    regions = (Box(1, 2, 3, 4, 0.9),)  # found whatever the verdict; shown only for an ANOMALY
    p = p if verdict is Verdict.ANOMALY else min(p, 0.1)
    return Inspection(p, Thresholds(0.5), np.zeros((8, 8), np.float32), regions, model=MODEL)


def _log(
    log: ResultsLog,
    item: str,
    verdict: str = Verdict.GOOD,
    *,
    run_id: str = "run-a",
    source: str = "folder /line",
    **kw,
):
    log.log_inspection(run_id=run_id, source=source, item=item, inspection=_inspection(verdict), **kw)


def _red(h: int = 24, w: int = 32) -> np.ndarray:
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = 255
    return image


def test_rows_survive_close_and_reopen(tmp_path):
    db = tmp_path / "results.sqlite3"
    with ResultsLog(db) as log:
        _log(log, "a.png", Verdict.GOOD)
        _log(log, "b.png", Verdict.ANOMALY)
        log.log_error(run_id="run-a", source="folder /line", item="c.png", model=MODEL, message="corrupt")
    with ResultsLog(db) as log:
        rows = log.query()
        assert [r.item for r in rows] == ["c.png", "b.png", "a.png"]  # newest first
        error, anomaly, good = rows
        assert isinstance(anomaly, ResultRow)
        assert (anomaly.verdict, anomaly.p_anomaly, anomaly.threshold) == (Verdict.ANOMALY, 0.9, 0.5)
        assert anomaly.boxes == (Box(1, 2, 3, 4, 0.9),)
        assert (anomaly.model, anomaly.run_id) == (MODEL, "run-a")  # the full sha256 and path, one format
        assert anomaly.thresholds == Thresholds(0.5) and anomaly.regions == anomaly.boxes
        assert good.verdict == Verdict.GOOD
        assert good.boxes == () and good.regions == (Box(1, 2, 3, 4, 0.9),)  # kept to re-judge at another threshold
        assert good.error is None
        assert (error.verdict, error.error, error.p_anomaly, error.threshold) == (
            "ERROR",
            "corrupt",
            None,
            None,
        )
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$", good.time_iso)


def test_database_is_wal_has_schema_version_and_passes_integrity_check(tmp_path):
    db = tmp_path / "results.sqlite3"
    with ResultsLog(db) as log:
        _log(log, "a.png")
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "4"
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"results_run_item", "results_time"} <= indexes
    finally:
        conn.close()


def test_anomaly_frame_is_saved_as_readable_jpeg(tmp_path):
    with ResultsLog(tmp_path / "results.sqlite3") as log:
        _log(log, "bad.png", Verdict.ANOMALY, image=_red())
        _log(log, "good.png", Verdict.GOOD, image=_red())  # GOOD frames are not kept
        anomaly, good = log.query(ResultFilter(Verdict.ANOMALY))[0], log.query(ResultFilter(Verdict.GOOD))[0]
    assert good.frame_path is None
    path = Path(anomaly.frame_path)
    assert path.parent.parent == tmp_path / "frames"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", path.parent.name)
    assert path.name == f"{anomaly.id}.jpg"
    image = read_image(path)
    assert image.shape == (24, 32, 3)
    assert image[..., 0].mean() > 200
    assert image[..., 2].mean() < 50


def test_filters_and_count(tmp_path):
    with ResultsLog(tmp_path / "results.sqlite3") as log:
        _log(log, "1", Verdict.GOOD, source="camera 0")
        _log(log, "2", Verdict.ANOMALY, source="camera 0")
        middle = time.time()
        time.sleep(0.01)
        _log(log, "3", Verdict.ANOMALY, source="folder /Line/Station-B", run_id="run-b")
        assert [r.item for r in log.query(ResultFilter(Verdict.ANOMALY))] == ["3", "2"]
        assert [r.item for r in log.query(ResultFilter(source_contains="station-b"))] == ["3"]
        assert [r.item for r in log.query(ResultFilter(since=middle))] == ["3"]
        assert [r.item for r in log.query(ResultFilter(until=middle))] == ["2", "1"]
        assert [r.item for r in log.query(ResultFilter(run_id="run-b"))] == ["3"]
        assert [r.item for r in log.query(limit=1)] == ["3"]
        assert [r.item for r in log.query(limit=1, offset=1)] == ["2"]
        assert log.count() == 3
        assert log.count(ResultFilter(Verdict.ANOMALY, source_contains="camera")) == 1
        with pytest.raises(ValueError, match="GOOD, ANOMALY, ERROR"):
            ResultFilter(verdict="BAD")
        with pytest.raises(ValueError, match="limit"):
            log.query(limit=0)


def test_export_csv_is_parseable(tmp_path):
    out = tmp_path / "export.csv"
    with ResultsLog(tmp_path / "results.sqlite3") as log:
        _log(log, "a, with comma.png", Verdict.GOOD)
        _log(log, 'b "quoted".png', Verdict.ANOMALY, image=_red())
        log.log_error(run_id="run-a", source="s", item="c.png", model=MODEL, message="bad\nfile")
        assert export_csv(log, out) == 3
        assert export_csv(log, tmp_path / "anomalies.csv", ResultFilter(Verdict.ANOMALY)) == 1
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    records = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert [r["item"] for r in records] == ["a, with comma.png", 'b "quoted".png', "c.png"]  # oldest first
    assert json.loads(records[1]["boxes"]) == [[1, 2, 3, 4, 0.9]]
    assert float(records[1]["p_anomaly"]) == pytest.approx(0.9)
    assert Path(records[1]["frame_path"]).is_file()
    assert records[2]["verdict"] == "ERROR"
    assert records[2]["error"] == "bad\nfile"
    assert records[2]["p_anomaly"] == ""


def test_finished_rows_are_the_newest_result_of_each_item_of_a_run_errors_included(tmp_path):
    with ResultsLog(tmp_path / "results.sqlite3") as log:
        _log(log, "a.png", Verdict.GOOD)
        _log(log, "b.png", Verdict.GOOD)
        _log(log, "b.png", Verdict.ANOMALY)  # the same file again: the newest counts
        _log(log, "x.png", Verdict.GOOD, run_id="run-other")
        log.log_error(run_id="run-a", source="s", item="c.png", model=MODEL, message="corrupt")
        rows = log.finished_rows("run-a")
        assert {item: row.verdict for item, row in rows.items()} == {
            "a.png": Verdict.GOOD, "b.png": Verdict.ANOMALY, "c.png": Verdict.ERROR,
        }  # fmt: skip
        assert rows["c.png"].error == "corrupt"
        assert log.finished_rows("run-unknown") == {}


def test_a_log_of_the_first_schema_is_upgraded_and_its_rows_still_read(tmp_path):
    db = tmp_path / "results.sqlite3"
    conn = sqlite3.connect(db)
    conn.executescript(
        """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE results (id INTEGER PRIMARY KEY, time REAL NOT NULL, run_id TEXT NOT NULL, source TEXT NOT NULL,
            item TEXT NOT NULL, model_path TEXT, model_hash TEXT, threshold REAL, verdict TEXT NOT NULL, p_anomaly REAL,
            boxes TEXT NOT NULL DEFAULT '[]', error TEXT, frame_path TEXT);
        CREATE INDEX results_run_item ON results (run_id, item);
        CREATE INDEX results_time ON results (time);
        INSERT INTO results (time, run_id, source, item, model_path, model_hash, threshold, verdict, p_anomaly, boxes)
            VALUES (1.0, 'old', 'cli', 'a.png', 'm.safetensors', '0123456789abcdef', 0.5, 'ANOMALY', 0.9, '[[1,2,3,4,0.9]]');"""
    )
    conn.close()
    with ResultsLog(db) as log:
        (old,) = log.query()
        assert (old.verdict, old.boxes, old.regions, old.thresholds) == (Verdict.ANOMALY, (Box(1, 2, 3, 4, 0.9),), None, None)
        _log(log, "b.png")
        assert log.count() == 2 and log.query(limit=1)[0].regions == (Box(1, 2, 3, 4, 0.9),)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "4"
    conn.close()


def test_locked_database_keeps_rows_pending_then_flushes_them_in_order(tmp_path):
    db = tmp_path / "results.sqlite3"
    log = ResultsLog(db, timeout=0.05)
    blocker = sqlite3.connect(db, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        _log(log, "first.png", Verdict.ANOMALY, image=_red())  # must not raise
        assert log.pending_count == 1
        assert "locked" in log.last_error
        assert set(log.finished_rows("run-a")) == {"first.png"}  # a resumed run still skips it
        assert log.flush() is False
        assert log.pending_count == 1
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    _log(log, "second.png", Verdict.GOOD)
    assert log.pending_count == 0
    assert log.last_error is None
    rows = log.query()
    assert [r.item for r in reversed(rows)] == ["first.png", "second.png"]
    assert rows[0].id > rows[1].id
    assert Path(rows[1].frame_path).is_file()
    log.close()


def test_writes_while_rows_wait_do_not_block_for_the_full_timeout(tmp_path):
    db = tmp_path / "results.sqlite3"
    log = ResultsLog(db, timeout=0.5)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    _log(log, "a.png")  # waits the full busy timeout once
    started = time.monotonic()
    for item in ("b.png", "c.png", "d.png"):
        _log(log, item)
    assert time.monotonic() - started < 0.4
    assert log.pending_count == 4
    blocker.execute("ROLLBACK")
    blocker.close()
    assert log.flush()
    assert [r.item for r in reversed(log.query())] == ["a.png", "b.png", "c.png", "d.png"]
    log.close()


def test_pending_rows_are_written_by_flush(tmp_path):
    db = tmp_path / "results.sqlite3"
    log = ResultsLog(db, timeout=0.05)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    _log(log, "a.png")
    blocker.execute("ROLLBACK")
    blocker.close()
    assert log.flush() is True
    assert log.pending_count == 0
    assert log.count() == 1
    log.close()


def test_pending_list_is_bounded(tmp_path):
    db = tmp_path / "results.sqlite3"
    log = ResultsLog(db, timeout=0.01, max_pending=2)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    for item in ("a", "b", "c"):
        _log(log, item)
    assert log.pending_count == 2
    assert log.dropped_count == 1
    blocker.execute("ROLLBACK")
    blocker.close()
    assert log.flush()
    assert [r.item for r in log.query()] == ["c", "b"]
    assert "dropped" in log.last_error
    _log(log, "d")
    assert log.last_error is None  # the drop is reported once, then clears
    log.close()


def test_only_the_newest_pending_frames_are_kept_in_memory(tmp_path, monkeypatch):
    monkeypatch.setattr("engine.results.log.MAX_PENDING_IMAGES", 2)
    db = tmp_path / "results.sqlite3"
    log = ResultsLog(db, timeout=0.01)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    _log(log, "a", Verdict.ANOMALY, image=_red())
    reused = _red()
    _log(log, "b", Verdict.ANOMALY, image=reused)
    reused[:] = 0  # the caller reusing its buffer must not change what gets saved
    _log(log, "c", Verdict.ANOMALY, image=_red())
    blocker.execute("ROLLBACK")
    blocker.close()
    assert log.flush()
    c, b, a = log.query()
    assert a.frame_path is None
    assert read_image(b.frame_path)[..., 0].mean() > 200
    assert read_image(c.frame_path)[..., 0].mean() > 200
    log.close()


def test_not_a_database_and_closed_log_raise_specific_errors(tmp_path):
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ResultsLogError, match="cannot be opened"):
        ResultsLog(junk)
    log = ResultsLog(tmp_path / "ok.sqlite3")
    log.close()
    log.close()  # twice is fine
    with pytest.raises(ResultsLogError, match="closed"):
        _log(log, "a.png")


def test_newer_schema_is_refused(tmp_path):
    db = tmp_path / "results.sqlite3"
    ResultsLog(db).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(ResultsLogError, match="schema version 99"):
        ResultsLog(db)


def test_new_run_id_and_default_path():
    run = new_run_id("review")
    assert re.fullmatch(r"review-\d{8}-\d{6}-[0-9a-f]{4}", run)
    assert len({new_run_id("review") for _ in range(20)}) > 1
    with pytest.raises(ValueError, match="run kind"):
        new_run_id("bad kind/")
    path = default_results_path()
    assert path.name == "results.sqlite3"
    assert "VisInspect" in str(path)


def test_worker_thread_writes_while_another_thread_reads(tmp_path):
    with ResultsLog(tmp_path / "results.sqlite3") as log:

        def worker():
            for n in range(50):
                _log(log, str(n))

        thread = threading.Thread(target=worker)
        thread.start()
        while thread.is_alive():
            log.query(limit=5)
        thread.join()
        assert log.count() == 50
        assert log.pending_count == 0
