"""Results are never lost: `predict --log` killed with SIGKILL mid-run keeps every committed row and
resumes without repeating finished files; a locked database or a full disk only delays the writes."""

from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from engine import cli
from engine.results import ResultsLog
from tests.conftest import committed_rows, intact_rows, sigkill_after_rows

N_FILES = 60
KILL_AFTER_ROWS = 12  # well before the end; each image is committed on its own (--batch-size 1)


@pytest.fixture(scope="module")
def folder(synthetic_dataset, tmp_path_factory) -> Path:
    """N_FILES copies of the synthetic test images (so the run is long by count, not by sleeping)."""
    sources = sorted((synthetic_dataset / "test").rglob("*.png"))
    out = tmp_path_factory.mktemp("crash") / "line images"
    out.mkdir()
    for i in range(N_FILES):
        (out / f"part{i:03d}.png").write_bytes(sources[i % len(sources)].read_bytes())
    return out


def _predict(model_file, folder, db, csv_path, *extra) -> list[str]:
    return [sys.executable, "-m", "engine.cli", "predict", str(model_file), str(folder), "--log", str(db),
            "--csv", str(csv_path), "--device", "cpu", *map(str, extra)]  # fmt: skip


def _log_scores(db: Path) -> list[tuple[str, float]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT item, p_anomaly FROM results ORDER BY id").fetchall()
    finally:
        conn.close()


def _env():
    # One torch thread: the subprocess competes with the test for 2 cores and per-image pace matters here.
    return {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}


def test_sigkill_mid_run_loses_no_committed_row_and_rerun_resumes(model_file, folder, tmp_path):
    db = tmp_path / "results.sqlite3"
    command = _predict(model_file, folder, db, tmp_path / "first.csv", "--batch-size", 1)
    seen = sigkill_after_rows(command, _env(), db, KILL_AFTER_ROWS, what="predict")
    assert len(seen) < N_FILES, "the run finished before the kill: make the folder bigger"
    after_kill = intact_rows(db)
    assert set(seen) <= set(after_kill)  # every row seen committed before the kill survived it
    assert len(after_kill) < N_FILES
    done = {item for _, item, verdict in after_kill if verdict != "ERROR"}
    assert len(done) == len(after_kill)  # all images are good, so no error rows

    rerun = subprocess.run(
        _predict(model_file, folder, db, tmp_path / "second.csv", "--batch-size", 8),
        capture_output=True, text=True, env=_env(), timeout=300,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert "Traceback" not in rerun.stderr
    assert f": {len(done)} of {N_FILES} inputs already done" in rerun.stderr, rerun.stderr
    assert f"{N_FILES} inputs:" in rerun.stderr and f"({len(done)} from the earlier run, {N_FILES - len(done)} inspected now)" in rerun.stderr
    second = list(csv.DictReader((tmp_path / "second.csv").open(encoding="utf-8")))
    assert [row["path"] for row in second] == [str(p) for p in sorted(folder.iterdir())]  # every input, in order
    logged = {item: p for item, p in _log_scores(db)}
    assert all(float(row["p_anomaly"]) == pytest.approx(logged[row["path"]], abs=1e-6) for row in second)

    final = intact_rows(db)
    per_item = Counter(item for _, item, _ in final)
    assert len(final) == N_FILES and set(per_item.values()) == {1}
    assert sorted(per_item) == sorted(str(p) for p in folder.iterdir())


def test_locked_database_delays_writes_with_one_warning_and_loses_nothing(model_file, folder, tmp_path):
    db = tmp_path / "results.sqlite3"
    ResultsLog(db).close()  # an existing log, as on a station that has run before
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # e.g. a backup tool or DB browser holding the write lock
    proc = subprocess.Popen(
        _predict(model_file, folder, db, tmp_path / "out.csv", "--batch-size", 4),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    lines: list[str] = []
    warned = threading.Event()

    def read_stderr():
        for line in proc.stderr:  # text mode splits tqdm's \r updates too
            lines.append(line)
            if "warning: results log" in line:
                warned.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert warned.wait(240), "".join(lines)
        time.sleep(1.0)  # let a few more results queue up in memory behind the lock
        assert committed_rows(db) == []
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        proc.wait(timeout=300)
        reader.join(10)
    stderr = "".join(lines)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    warnings = [line for line in lines if "warning: results log" in line]
    assert len(warnings) == 1, warnings  # said once, not once per image
    assert "locked" in warnings[0] and "kept in memory" in warnings[0]
    rows = committed_rows(db)
    assert Counter(item for _, item, _ in rows) == Counter(str(p) for p in folder.iterdir())
    assert [item for _, item, _ in rows] == sorted(item for _, item, _ in rows)  # written in inspection order


class _FullDiskLog(ResultsLog):
    """A results log on a 'disk' that fills up after a few rows (SQLite max_page_count) and frees later."""

    instances: list[_FullDiskLog] = []

    def __init__(self, path, **kwargs):
        super().__init__(path, timeout=0.05, **kwargs)
        pages = self._conn.execute("PRAGMA page_count").fetchone()[0]
        self._conn.execute(f"PRAGMA max_page_count = {pages}")  # no room for one more page
        self.failed_writes = 0
        self.instances.append(self)

    def _write(self, entry):
        super()._write(entry)
        if self.pending_count:
            self.failed_writes += 1
            if self.failed_writes == 8:  # space comes back: the next write flushes everything waiting
                self._conn.execute("PRAGMA max_page_count = 1073741823")


def test_disk_full_during_predict_keeps_results_in_memory_then_writes_them(model_file, folder, tmp_path, monkeypatch, capsys):
    import engine.results

    db = tmp_path / "results.sqlite3"
    monkeypatch.setattr(engine.results, "ResultsLog", _FullDiskLog)
    _FullDiskLog.instances.clear()
    code = cli.main(["predict", str(model_file), str(folder), "--log", str(db), "--csv", str(tmp_path / "o.csv"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 0, err
    (log,) = _FullDiskLog.instances
    assert log.failed_writes >= 8  # the disk really was full for a while
    warnings = [line for line in err.splitlines() if "warning: results log" in line]
    assert len(warnings) == 1 and "full" in warnings[0], err
    rows = committed_rows(db)
    assert Counter(item for _, item, _ in rows) == Counter(str(p) for p in folder.iterdir())


def test_results_that_cannot_be_written_by_the_end_are_reported(model_file, folder, tmp_path, monkeypatch, capsys):
    db = tmp_path / "results.sqlite3"
    ResultsLog(db).close()
    monkeypatch.setattr("engine.jobs.review.FINAL_FLUSH_S", 0.5)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        image = next(folder.iterdir())
        code = cli.main(["predict", str(model_file), str(image), "--log", str(db), "--csv", str(tmp_path / "o.csv"), "--device", "cpu"])
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    err = capsys.readouterr().err
    assert code == cli.EXIT_SOME_FAILED
    assert "1 result(s) could not be written to the results log" in err and "1 not saved to the results log" in err
    rows = list(csv.DictReader((tmp_path / "o.csv").open(encoding="utf-8")))
    assert len(rows) == 1 and rows[0]["verdict"] in ("GOOD", "ANOMALY")  # the verdict is still in the CSV
