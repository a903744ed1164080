"""Line mode in the results log: each row keeps the PLC's part id and the recipe; a log of schema 3 is upgraded."""

from __future__ import annotations

import sqlite3

import numpy as np

from engine.results import ResultsLog
from engine.thresholds import Thresholds
from engine.types import Inspection, ModelRef, Verdict

MODEL = ModelRef("/models/m.safetensors", "cd" * 32)


def _inspection(p: float) -> Inspection:
    return Inspection(p, Thresholds(0.5), np.zeros((8, 8), np.float32), (), model=MODEL)


def test_part_id_and_recipe_are_stored_with_verdicts_and_errors_and_read_back(tmp_path):
    with ResultsLog(tmp_path / "r.sqlite3") as log:
        log.log_inspection(run_id="r", source="pylon:0", item=1, inspection=_inspection(0.2), part_id="P-001", recipe="bolt-a")
        log.log_error(run_id="r", source="pylon:0", item=2, model=MODEL, message="no frame within 1.0 s", part_id="P-002", recipe="bolt-a")
        log.log_inspection(run_id="r", source="folder", item="x.png", inspection=_inspection(0.9))
        rows = log.query(limit=None)
    by_item = {r.item: r for r in rows}
    assert (by_item["1"].part_id, by_item["1"].recipe, by_item["1"].verdict) == ("P-001", "bolt-a", Verdict.GOOD)
    assert (by_item["2"].part_id, by_item["2"].recipe, by_item["2"].verdict) == ("P-002", "bolt-a", Verdict.ERROR)
    assert (by_item["x.png"].part_id, by_item["x.png"].recipe) == (None, None)


def test_a_log_of_schema_3_gains_part_id_and_recipe_and_keeps_its_rows(tmp_path):
    db = tmp_path / "r.sqlite3"
    with ResultsLog(db) as log:
        log.log_inspection(run_id="old", source="cli", item="old.png", inspection=_inspection(0.7))
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("ALTER TABLE results DROP COLUMN part_id")  # what a log of the previous version looks like
    conn.execute("ALTER TABLE results DROP COLUMN recipe")
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    conn.close()
    with ResultsLog(db) as log:
        (old,) = log.query()
        assert (old.item, old.verdict, old.part_id, old.recipe) == ("old.png", Verdict.ANOMALY, None, None)
        log.log_inspection(run_id="new", source="cli", item="new.png", inspection=_inspection(0.1), part_id="7", recipe="r1")
        assert (log.query(limit=1)[0].part_id, log.query(limit=1)[0].recipe) == ("7", "r1")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "4"
    conn.close()
