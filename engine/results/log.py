"""Every verdict the station gives, in a local SQLite file that survives crashes, locks and full disks."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from engine import paths
from engine.csvfile import storable_text
from engine.render import encode_image
from engine.results.audit import INSERT_CHANGE, SELECT_CHANGES, AuditEntry, ChangeKind, ChangeWriter, audit_entry
from engine.results.filters import ALL, NEWEST_FIRST, OLDEST_FIRST, ResultFilter, ResultOrder
from engine.results.migrations import prepare_schema
from engine.results.retention import FrameStore, RetentionPolicy
from engine.results.runs import RUNS_SQL, SOURCES_SQL, RunSummary, new_run_id, resumable_run_id, run_summary
from engine.results.schema import COLUMNS, INSERT, SELECT, ResultRow, ResultsLogError, boxes_json, parse_boxes
from engine.types import Inspection, ModelRef, Verdict

MAX_PENDING_IMAGES = 100  # unsaved anomaly frames kept in memory while the database is unavailable
JPEG_QUALITY = 90
RETRY_BUSY_S = 0.05  # how long a write waits on a lock while earlier rows are already waiting
__all__ = ["ResultRow", "ResultsLog", "ResultsLogError", "default_results_path", "new_run_id", "resumable_run_id"]


def default_results_path() -> Path:
    """Where results live unless told otherwise: the data folder the station and the CLI share."""
    return paths.data_dir() / "results.sqlite3"


@dataclass
class _Pending:
    """A row waiting to be written, with the anomaly frame to save alongside it."""

    values: dict[str, object]
    image: np.ndarray | None
    encoded: bytes | None = None  # the frame's own JPEG file bytes, saved as they are instead of encoding image

    @property
    def has_frame(self) -> bool:
        return self.image is not None or self.encoded is not None


def _row_values(
    run_id: str, source: str, item: str | int, model: ModelRef | None, part_id: str | None, recipe: str | None
) -> dict[str, object]:
    """Column values shared by every row kind; the verdict-specific ones start empty."""
    return {
        "time": time.time(),
        # Coerced so no value can fail to bind and block every later write in the pending queue.
        "run_id": storable_text(run_id),
        "source": storable_text(source),
        "item": storable_text(item),
        "model_path": None if model is None else storable_text(model.path),
        "model_hash": None if model is None else storable_text(model.sha256),
        "threshold": None,
        "verdict": None,
        "p_anomaly": None,
        "boxes": "[]",
        "error": None,
        "regions": None,
        "box_threshold": None,
        "min_area": None,
        "part_id": None if part_id is None else storable_text(part_id),
        "recipe": None if recipe is None else storable_text(recipe),
    }


class ResultsLog:
    """Append-only log of verdicts in SQLite (WAL), with anomaly frames saved as JPEGs beside it.

    Writes never raise on database trouble (locked, disk full, I/O error): the rows wait in memory,
    last_error says why, and the next write or flush() retries them first, in order. Each write is
    committed at once. While rows are waiting, a write waits at most RETRY_BUSY_S on a lock rather than
    timeout, so a long-held lock does not stall the inspection loop. One connection is shared under an
    internal lock, so a worker thread may write while the GUI thread reads; stream() reads through
    a connection of its own.
    """

    def __init__(
        self, path: str | os.PathLike | None = None, *, timeout: float = 2.0, max_pending: int = 100_000,
        retention: RetentionPolicy | None = None,
    ):
        self.path = Path(path) if path is not None else default_results_path()
        self.frames_dir = self.path.parent / "frames"
        self.frames = FrameStore(self.frames_dir, retention)  # None: the policy the station recorded, else the default
        self.last_error: str | None = None
        self.dropped_count = 0  # rows discarded because more than max_pending were waiting
        self._dropped_unreported = 0
        self._timeout = timeout
        self._max_pending = max_pending
        self._pending: deque[_Pending] = deque()
        self._with_images: deque[_Pending] = deque()  # pending rows still holding a frame, oldest first
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ResultsLogError(
                f"results folder {self.path.parent} cannot be created ({exc.strerror or exc})"
            ) from None
        conn = None
        try:
            conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            prepare_schema(conn, self.path)
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise ResultsLogError(f"results database {self.path} cannot be opened ({exc})") from None
        except ResultsLogError:
            conn.close()
            raise
        self._conn: sqlite3.Connection | None = conn
        self._changes = ChangeWriter(self._insert_changes)

    # -- writing ---------------------------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        """Rows waiting in memory because the database could not be written."""
        return len(self._pending)

    def log_inspection(
        self, *, run_id: str, source: str, item: str | int, inspection: Inspection, image: np.ndarray | None = None,
        encoded: bytes | None = None, part_id: str | None = None, recipe: str | None = None,
    ) -> None:
        """Record one verdict with the model that gave it (and the PLC's part id and the recipe, in line mode);
        for an ANOMALY, REVIEW or NOT_PRODUCT (a person looks at those) with its RGB image, also save the frame.

        encoded: the JPEG file the image was decoded from, pixel for pixel; it is saved as it is (no re-encoding).
        """
        values = _row_values(run_id, source, item, inspection.model, part_id, recipe)
        t = inspection.thresholds
        values.update(
            threshold=t.decision,
            verdict=inspection.verdict.value,
            p_anomaly=float(inspection.p_anomaly),
            boxes=boxes_json(inspection.boxes),
            regions=boxes_json(inspection.regions),
            box_threshold=t.box,
            min_area=t.min_area_fraction,
        )
        keep = image is not None and inspection.verdict in (Verdict.ANOMALY, Verdict.REVIEW, Verdict.NOT_PRODUCT)
        self._write(_Pending(values, image if keep and encoded is None else None, encoded if keep else None))

    def log_error(
        self, *, run_id: str, source: str, item: str | int, model: ModelRef | None, message: str,
        part_id: str | None = None, recipe: str | None = None,
    ) -> None:
        """Record that an item (or a triggered part) could not be inspected (verdict ERROR) and why."""
        values = _row_values(run_id, source, item, model, part_id, recipe)
        values.update(verdict=Verdict.ERROR.value, error=storable_text(message))
        self._write(_Pending(values, None))

    def flush(self) -> bool:
        """Try again to write rows and changes that are waiting; True when none are left."""
        with self._lock:
            self._check_open()
            rows_written = self._flush_locked()
        return self._changes.flush() and rows_written

    def record_change(self, what: ChangeKind | str, old: str, new: str, *, who: str) -> None:
        """Add a change of model, threshold, recipe or mode to the audit trail; written in a thread of its own."""
        kind = ChangeKind.parse(what)
        self._check_open()
        values = {"time": time.time(), "who": storable_text(who), "what": kind.value}
        self._changes.submit(values | {"old": storable_text(old), "new": storable_text(new)})

    def _insert_changes(self, batch: list[dict]) -> None:
        with self._lock:
            self._check_open()
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(INSERT_CHANGE, batch)
                self._conn.execute("COMMIT")
            finally:
                if self._conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")

    def _write(self, entry: _Pending) -> None:
        with self._lock:
            self._check_open()
            busy_s = RETRY_BUSY_S if self._pending else None
            self._pending.append(entry)
            if entry.has_frame:
                self._with_images.append(entry)
            self._trim_pending()
            if not self._flush_locked(busy_s=busy_s) and entry.image is not None:
                # The caller may reuse its buffer; keep our own pixels while the row waits.
                entry.image = entry.image.copy()

    def _trim_pending(self) -> None:
        while len(self._pending) > self._max_pending:
            self._pending.popleft()
            self.dropped_count += 1
            self._dropped_unreported += 1
        while len(self._with_images) > MAX_PENDING_IMAGES:
            dropped = self._with_images.popleft()
            dropped.image = dropped.encoded = None  # the row is still written, without its frame

    def _flush_locked(self, *, busy_s: float | None = None) -> bool:
        """Write every pending row in one transaction; on database trouble keep them and note why."""
        if not self._pending:
            return True
        frame_errors: list[str] = []
        try:
            if busy_s is not None:
                self._conn.execute(f"PRAGMA busy_timeout = {int(min(busy_s, self._timeout) * 1000)}")
            self._conn.execute("BEGIN IMMEDIATE")
            for entry in self._pending:
                row_id = self._conn.execute(INSERT, entry.values).lastrowid
                if entry.has_frame:
                    relative, problem = self._save_frame(row_id, entry.values["time"], entry.image, entry.encoded)
                    if relative is not None:
                        self._conn.execute(
                            "UPDATE results SET frame_path = ? WHERE id = ?", (relative, row_id)
                        )
                    else:
                        frame_errors.append(problem)
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self.last_error = f"{len(self._pending)} result(s) not saved yet: {exc}"
            return False
        finally:
            if self._conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            if busy_s is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
        self._pending.clear()
        self._with_images.clear()
        notes = frame_errors[-1:]
        if self._dropped_unreported:
            notes.append(
                f"{self._dropped_unreported} result(s) were dropped while the database was unavailable"
            )
            self._dropped_unreported = 0
        self.last_error = "; ".join(notes) or None
        return True

    def _save_frame(
        self, row_id: int, when: float, image: np.ndarray | None, encoded: bytes | None = None
    ) -> tuple[str | None, str | None]:
        """Save a frame as frames/YYYY-MM-DD/<id>.jpg (its own JPEG bytes, else the RGB image encoded); (path relative
        to the db folder, problem)."""
        folder = self.frames_dir / datetime.fromtimestamp(when).strftime("%Y-%m-%d")
        target = folder / f"{row_id}.jpg"
        try:
            encoded = encode_image(".jpg", image, quality=JPEG_QUALITY) if encoded is None else encoded
        except (cv2.error, ValueError) as exc:
            return None, f"anomaly frame {row_id} not saved: cannot encode image ({getattr(exc, 'err', exc)})"
        try:
            # imencode + write_bytes, not imwrite: handles non-ASCII paths and says why a write failed.
            folder.mkdir(parents=True, exist_ok=True)
            target.write_bytes(encoded)
        except OSError as exc:
            return None, f"anomaly frame {row_id} not saved to {target}: {exc.strerror or exc}"
        self.frames.added(len(encoded))  # the running total; removes the oldest frames when over the policy
        return target.relative_to(self.path.parent).as_posix(), None

    # -- reading ---------------------------------------------------------------------------------

    def _row(self, raw: tuple) -> ResultRow:
        (row_id, when, run_id, source, item, model_path, model_hash, threshold, verdict, p_anomaly, boxes,
         error, regions, box_threshold, min_area, part_id, recipe, frame_path) = raw  # fmt: skip
        return ResultRow(
            id=row_id,
            time=when,
            run_id=run_id,
            source=source,
            item=item,
            model_path=model_path,
            model_hash=model_hash,
            threshold=threshold,
            verdict=Verdict(verdict),
            p_anomaly=p_anomaly,
            boxes=parse_boxes(boxes) or (),
            error=error,
            frame_path=str(self.path.parent / frame_path) if frame_path else None,
            regions=parse_boxes(regions),
            box_threshold=box_threshold,
            min_area=min_area,
            part_id=part_id,
            recipe=recipe,
        )

    def query(
        self, where: ResultFilter = ALL, *, order: ResultOrder = NEWEST_FIRST, limit: int | None = 1000, offset: int = 0
    ) -> list[ResultRow]:
        """Written rows matching the filter, sorted (newest first unless told); `limit` rows from `offset` (paging)."""
        clause, params = where.where()
        sql = f"{SELECT}{clause}{order.sql()}"
        if limit is not None:
            if limit < 1:
                raise ValueError(f"limit must be 1 or more, or None for all rows, not {limit}")
            sql += " LIMIT ? OFFSET ?"
            params += [limit, max(0, int(offset))]
        with self._lock:
            self._check_open()
            raw = self._conn.execute(sql, params).fetchall()
        return [self._row(r) for r in raw]

    def count(self, where: ResultFilter = ALL) -> int:
        """How many written rows match the filter."""
        clause, params = where.where()
        with self._lock:
            self._check_open()
            return self._conn.execute(f"SELECT count(*) FROM results{clause}", params).fetchone()[0]

    def _read(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        with self._lock:
            self._check_open()
            return self._conn.execute(sql, params).fetchall()

    def get(self, result_id: int) -> ResultRow | None:
        """The written row with this id, or None."""
        raw = self._read(f"{SELECT} WHERE id = ?", (int(result_id),))
        return self._row(raw[0]) if raw else None

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The log's connection, held under its lock for one short read or transaction (the labels table uses it)."""
        with self._lock:
            self._check_open()
            yield self._conn

    def last_id(self) -> int:
        """The id of the newest written row (0 for an empty log): a listing through it does not shift as rows arrive."""
        return self._read("SELECT coalesce(max(id), 0) FROM results")[0][0]

    def runs(self, limit: int | None = 500) -> list[RunSummary]:
        """The newest `limit` runs (None: all), newest first, each with its time span, source and counts."""
        return [run_summary(r) for r in self._read(RUNS_SQL + " LIMIT ?", (-1 if limit is None else limit,))]

    def sources(self) -> list[str]:
        """Every distinct source in the log, most recently used first."""
        return [r[0] for r in self._read(SOURCES_SQL)]

    def changes(self, limit: int = 500, offset: int = 0) -> list[AuditEntry]:
        """Recorded changes, newest first, `limit` from `offset`; changes still being written are waited for."""
        self._changes.wait(self._timeout * 2)
        return [audit_entry(r) for r in self._read(SELECT_CHANGES, (limit, max(0, int(offset))))]

    def finished_rows(self, run_id: str) -> dict[str, ResultRow]:
        """The newest row of each item of a run (an ERROR is a result too), so a resumed run does not repeat it.

        Rows still waiting to be written count too: a run resumed while the database is locked skips them as well.
        """
        self.flush()
        latest: dict[str, ResultRow] = {}
        with self._lock:
            waiting = [e.values for e in self._pending if e.values["run_id"] == run_id]
        for values in reversed(waiting):  # newest first
            latest.setdefault(values["item"], self._row((0, *(values[c] for c in COLUMNS), None)))
        for row in self.query(ResultFilter(run_id=run_id), limit=None):
            latest.setdefault(row.item, row)
        return latest

    def stream(self, where: ResultFilter = ALL) -> Iterator[ResultRow]:
        """Every matching row, oldest first, through a read-only connection of its own (a large export does not
        block the writer); rows still waiting to be written are tried first."""
        clause, params = where.where()
        self.flush()
        reader = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            for raw in reader.execute(f"{SELECT}{clause}{OLDEST_FIRST.sql()}", params):
                yield self._row(raw)
        finally:
            reader.close()

    # -- lifetime --------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._conn is None:
            raise ResultsLogError(f"results log {self.path} is closed")

    def close(self) -> None:
        """Make a last attempt to write waiting rows, then close the database; safe to call twice.

        Rows and changes that still cannot be written are lost, and last_error says how many.
        """
        if self._conn is None:
            return
        lost_changes = self._changes.close()  # before taking the lock: the change writer needs it
        with self._lock:
            if self._conn is None:
                return
            if lost_changes:
                self.last_error = f"{lost_changes} change(s) lost on close: {self._changes.last_error}"
            if not self._flush_locked():
                self.last_error = f"{len(self._pending)} result(s) lost on close: {self.last_error}"
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ResultsLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
