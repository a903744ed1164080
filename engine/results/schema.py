"""The results log's schema: its columns, its upgrades from older versions, and a row as read back."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from engine.errors import VisInspectError
from engine.thresholds import Thresholds
from engine.types import Box, ModelRef, Verdict

SCHEMA_VERSION = 4


class ResultsLogError(VisInspectError):
    """The results database cannot be opened or used (not a database, newer schema, already closed)."""


COLUMNS = (
    "time", "run_id", "source", "item", "model_path", "model_hash",
    "threshold", "verdict", "p_anomaly", "boxes", "error",
    "regions", "box_threshold", "min_area", "part_id", "recipe",
)  # fmt: skip
INSERT = f"INSERT INTO results ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})"
SELECT = "SELECT id, " + ", ".join(COLUMNS) + ", frame_path FROM results"
# The audit trail: every change of model, threshold, recipe or mode, with who made it and the values either side.
CHANGES_TABLE = """CREATE TABLE IF NOT EXISTS changes (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    who TEXT NOT NULL,
    what TEXT NOT NULL,
    old TEXT NOT NULL,
    new TEXT NOT NULL
)"""
# Operator feedback: one label per result ("actually good" / "actually defective (type)"), who gave it, and the copy
# of its image in the product's dataset. A table of its own, created on open: older logs gain it without a version step.
LABELS_TABLE = """CREATE TABLE IF NOT EXISTS labels (
    result_id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    who TEXT NOT NULL,
    label TEXT NOT NULL,
    defect_type TEXT,
    dataset TEXT NOT NULL,
    copy_path TEXT NOT NULL
)"""
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS results (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL,
        run_id TEXT NOT NULL,
        source TEXT NOT NULL,
        item TEXT NOT NULL,
        model_path TEXT,
        model_hash TEXT,
        threshold REAL,
        verdict TEXT NOT NULL,
        p_anomaly REAL,
        boxes TEXT NOT NULL DEFAULT '[]',
        error TEXT,
        frame_path TEXT,
        regions TEXT,
        box_threshold REAL,
        min_area REAL,
        part_id TEXT,
        recipe TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS results_run_item ON results (run_id, item)",
    "CREATE INDEX IF NOT EXISTS results_time ON results (time)",
    CHANGES_TABLE,
    LABELS_TABLE,
)
TABLES = {"meta", "results", "results_run_item", "results_time", "changes", "labels"}  # tables and indexes of this version
# Schema upgrades, applied in order to an older log when it is opened (rows are kept as they are).
MIGRATIONS = {
    # 2: every hot region (the boxes of an ANOMALY at any decision threshold) and the box rule they were found by
    2: (
        "ALTER TABLE results ADD COLUMN regions TEXT",
        "ALTER TABLE results ADD COLUMN box_threshold REAL",
        "ALTER TABLE results ADD COLUMN min_area REAL",
    ),
    # 3: the audit trail of changes
    3: (CHANGES_TABLE,),
    # 4: line mode: the part id the PLC gave a triggered part, and the product recipe each result was judged under
    4: (
        "ALTER TABLE results ADD COLUMN part_id TEXT",
        "ALTER TABLE results ADD COLUMN recipe TEXT",
    ),
}


@dataclass(frozen=True)
class ResultRow:
    """One logged inspection or error, as read back from the database."""

    id: int
    time: float  # seconds since the epoch
    run_id: str
    source: str
    item: str  # file path or frame index
    model_path: str | None
    model_hash: str | None  # the full sha256 of the model file (16 hex digits in rows written before 2026-11-30)
    threshold: float | None
    verdict: Verdict
    p_anomaly: float | None
    boxes: tuple[Box, ...]
    error: str | None
    frame_path: str | None  # absolute path of the saved anomaly frame
    regions: tuple[Box, ...] | None = None  # every hot region at box_threshold (None in rows of older logs)
    box_threshold: float | None = None
    min_area: float | None = None
    part_id: str | None = None  # the part id the PLC gave a triggered part (None in free run and older logs)
    recipe: str | None = None  # the product recipe in use (None without one, and in older logs)

    @property
    def time_iso(self) -> str:
        """Local time with UTC offset, to the millisecond."""
        return datetime.fromtimestamp(self.time).astimezone().isoformat(timespec="milliseconds")

    @property
    def model(self) -> ModelRef:
        return ModelRef(self.model_path or "", self.model_hash or "")

    @property
    def thresholds(self) -> Thresholds | None:
        """The thresholds this verdict was given at (None for an error, or a row of an older log)."""
        if self.threshold is None or self.box_threshold is None or self.min_area is None:
            return None
        return Thresholds(self.threshold, self.box_threshold, self.min_area)


def boxes_json(boxes) -> str:
    return json.dumps([box.as_list() for box in boxes])


def parse_boxes(text: str | None) -> tuple[Box, ...] | None:
    return None if text is None else tuple(Box.from_list(b) for b in json.loads(text))
