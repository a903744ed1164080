"""Operator labels in the results log: "actually good" or "actually defective (type)" per result, who gave it, when."""
from __future__ import annotations

import contextlib
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from engine.data.layouts import GOOD
from engine.data.walk import is_mask_folder
from engine.results.log import ResultsLog

_TYPE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")
SELECT_LABELS = "SELECT result_id, time, who, label, defect_type, dataset, copy_path FROM labels"
UPSERT_LABEL = (
    "INSERT INTO labels (result_id, time, who, label, defect_type, dataset, copy_path) "
    "VALUES (:result_id, :time, :who, :label, :defect_type, :dataset, :copy_path) "
    "ON CONFLICT(result_id) DO UPDATE SET time = excluded.time, who = excluded.who, label = excluded.label, "
    "defect_type = excluded.defect_type, dataset = excluded.dataset, copy_path = excluded.copy_path"
)


class LabelKind(Enum):
    """What the operator says a part actually is."""

    GOOD = "good"
    DEFECT = "defect"


@dataclass(frozen=True)
class Label:
    """An operator's judgement of a part: good, or defective of one type (a dataset folder name)."""

    kind: LabelKind
    defect_type: str | None = None

    def __post_init__(self) -> None:
        if self.kind is LabelKind.GOOD and self.defect_type is not None:
            raise ValueError("a good label has no defect type")
        if self.kind is LabelKind.DEFECT:
            object.__setattr__(self, "defect_type", check_defect_type(self.defect_type or ""))

    @classmethod
    def good(cls) -> Label:
        return cls(LabelKind.GOOD)

    @classmethod
    def defect(cls, defect_type: str) -> Label:
        return cls(LabelKind.DEFECT, defect_type)

    @classmethod
    def parse(cls, text: str) -> Label:
        """'good', or 'defect:TYPE'; ValueError naming the two forms."""
        head, _, tail = text.strip().partition(":")
        if head.lower() == "good" and not tail:
            return cls.good()
        if head.lower() == "defect" and tail.strip():
            return cls.defect(tail)
        raise ValueError(f"a label is 'good' or 'defect:TYPE' (e.g. defect:scratch), not {text!r}")

    def describe(self) -> str:
        """How the station says it: 'actually good' or 'actually defective (scratch)'."""
        return "actually good" if self.kind is LabelKind.GOOD else f"actually defective ({self.defect_type})"


def check_defect_type(name: str) -> str:
    """A defect type usable as a dataset folder name; ValueError saying what is allowed."""
    name = name.strip()
    if not _TYPE_NAME.match(name) or name.lower() == GOOD or is_mask_folder(name):
        raise ValueError(
            f"a defect type is a folder name of letters, digits, space, '_', '-' or '.', up to 64 characters, "
            f"not 'good' nor a mask folder name; got {name!r}"
        )
    return name


@dataclass(frozen=True)
class ResultLabel:
    """A label as recorded: the result it is about, who gave it and when, and where its image was copied."""

    result_id: int
    time: float  # seconds since the epoch
    who: str
    label: Label
    dataset: str  # the dataset folder the image was copied into
    copy_path: str  # the copy, absolute

    @property
    def time_iso(self) -> str:
        return datetime.fromtimestamp(self.time).astimezone().isoformat(timespec="seconds")


def _label(raw: tuple) -> ResultLabel:
    result_id, when, who, kind, defect_type, dataset, copy_path = raw
    return ResultLabel(result_id, when, who, Label(LabelKind(kind), defect_type), dataset, copy_path)


def read_label(log: ResultsLog, result_id: int) -> ResultLabel | None:
    """The label recorded for a result, or None."""
    with log.connection() as conn:
        raw = conn.execute(f"{SELECT_LABELS} WHERE result_id = ?", (int(result_id),)).fetchone()
    return None if raw is None else _label(raw)


def read_labels(log: ResultsLog, *, since: float | None = None, dataset: str | None = None) -> list[ResultLabel]:
    """Labels given at or after `since` (seconds since the epoch) into `dataset` (a folder), oldest first."""
    clauses, params = [], []
    if since is not None:
        clauses.append("time >= ?")
        params.append(float(since))
    if dataset is not None:
        clauses.append("dataset = ?")
        params.append(dataset)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    with log.connection() as conn:
        return [_label(r) for r in conn.execute(f"{SELECT_LABELS}{where} ORDER BY time, result_id", params)]


def write_label(log: ResultsLog, record: ResultLabel) -> None:
    """Record (or replace) a result's label in one transaction; sqlite3.Error when the log cannot be written."""
    values = {
        "result_id": record.result_id, "time": record.time, "who": record.who, "label": record.label.kind.value,
        "defect_type": record.label.defect_type, "dataset": record.dataset, "copy_path": record.copy_path,
    }  # fmt: skip
    with log.connection() as conn:
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(UPSERT_LABEL, values)
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
