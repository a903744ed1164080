"""The audit trail in the results log: every change of model, threshold, recipe or mode, who made it, old and new."""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from engine.results.schema import ResultsLogError


class ChangeKind(Enum):
    """What an audited change changed."""

    MODEL = "model"
    THRESHOLD = "threshold"
    BOX_THRESHOLD = "box_threshold"
    MIN_AREA = "min_area"
    RECIPE = "recipe"
    MODE = "mode"

    @property
    def label(self) -> str:
        """How the History tab names it, e.g. 'Box threshold'."""
        return self.value.replace("_", " ").capitalize()

    @classmethod
    def parse(cls, value: ChangeKind | str) -> ChangeKind:
        """The kind named by value (its value or its name, any case); ValueError naming the allowed ones."""
        if isinstance(value, cls):
            return value
        for kind in cls:
            if str(value).strip().lower() in (kind.value, kind.name.lower()):
                return kind
        raise ValueError(f"change kind must be one of {', '.join(k.value for k in cls)}, not {value!r}")


@dataclass(frozen=True)
class AuditEntry:
    """One recorded change, as read back from the log."""

    id: int
    time: float  # seconds since the epoch
    who: str
    what: ChangeKind
    old: str
    new: str

    @property
    def time_iso(self) -> str:
        """Local time with UTC offset, to the millisecond."""
        return datetime.fromtimestamp(self.time).astimezone().isoformat(timespec="milliseconds")


INSERT_CHANGE = "INSERT INTO changes (time, who, what, old, new) VALUES (:time, :who, :what, :old, :new)"
SELECT_CHANGES = "SELECT id, time, who, what, old, new FROM changes ORDER BY time DESC, id DESC LIMIT ? OFFSET ?"


def audit_entry(raw: tuple) -> AuditEntry:
    row_id, when, who, what, old, new = raw
    return AuditEntry(row_id, when, who, ChangeKind.parse(what), old, new)


class ChangeWriter:
    """Writes recorded changes in a thread of its own, oldest first, so the caller (the GUI) never waits on the
    database; changes it refuses (locked, disk full) wait in memory and go with the next change, flush or close."""

    def __init__(self, write: Callable[[list[dict]], None]) -> None:
        self._write = write  # writes a batch in one transaction; raises sqlite3.Error or ResultsLogError
        self._pending: list[dict] = []
        self._guard = threading.Lock()  # guards _pending
        self._writing = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="results-audit")
        self._last: Future | None = None
        self.last_error: str | None = None

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def submit(self, values: dict) -> None:
        """Queue one change and write it (with any that wait) in the writer thread; returns at once."""
        with self._guard:
            self._pending.append(values)
        self._last = self._executor.submit(self.flush)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the changes submitted so far were tried; True when none are left waiting."""
        last = self._last
        if last is not None:
            wait([last], timeout)
        return not self._pending

    def flush(self) -> bool:
        """Try to write every waiting change now, in this thread; True when none are left."""
        with self._writing:  # one writer at a time; submit() only ever waits for the short _guard
            with self._guard:
                batch = list(self._pending)
            if not batch:
                return True
            try:
                self._write(batch)
            except (sqlite3.Error, ResultsLogError) as exc:
                self.last_error = f"{len(batch)} change(s) not saved yet: {exc}"
                return False
            with self._guard:
                del self._pending[: len(batch)]
            self.last_error = None
            return not self._pending

    def close(self) -> int:
        """Finish the writer thread and make a last attempt; returns how many changes were lost."""
        self._executor.shutdown(wait=True)
        return 0 if self.flush() else len(self._pending)
