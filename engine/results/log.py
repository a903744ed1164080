"""Every verdict the station gives, in a local SQLite file that survives crashes, locks and full disks."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Self

import cv2
import numpy as np

from engine import paths
from engine.errors import VisInspectError
from engine.types import ANOMALY, ERROR, GOOD, Box, Inspection

SCHEMA_VERSION = 1
VERDICTS = (GOOD, ANOMALY, ERROR)
CSV_COLUMNS = (
    "time_iso", "run_id", "source", "item", "verdict", "p_anomaly", "threshold",
    "boxes", "error", "model_path", "model_hash", "frame_path",
)  # fmt: skip
MAX_PENDING_IMAGES = 100  # unsaved anomaly frames kept in memory while the database is unavailable
JPEG_QUALITY = 90
RETRY_BUSY_S = 0.05  # how long a write waits on a lock while earlier rows are already waiting

_COLUMNS = (
    "time", "run_id", "source", "item", "model_path", "model_hash",
    "threshold", "verdict", "p_anomaly", "boxes", "error",
)  # fmt: skip
_INSERT = f"INSERT INTO results ({', '.join(_COLUMNS)}) VALUES ({', '.join(':' + c for c in _COLUMNS)})"
_SELECT = "SELECT id, " + ", ".join(_COLUMNS) + ", frame_path FROM results"
_SCHEMA = (
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
        frame_path TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS results_run_item ON results (run_id, item)",
    "CREATE INDEX IF NOT EXISTS results_time ON results (time)",
)
_RUN_KIND = re.compile(r"^[A-Za-z0-9_]+$")


class ResultsLogError(VisInspectError):
    """The results database cannot be opened or used (not a database, newer schema, already closed)."""


def default_results_path() -> Path:
    """Where results live unless told otherwise: the data folder the station and the CLI share."""
    return paths.data_dir() / "results.sqlite3"


def new_run_id(kind: str) -> str:
    """A unique, sortable id for one run, e.g. review-20261125-171300-ab12."""
    if not _RUN_KIND.match(kind):
        raise ValueError(f"run kind must be letters, digits or '_' (e.g. 'review', 'live'), not {kind!r}")
    return f"{kind}-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def resumable_run_id(kind: str, model_hash: str, inputs: list[str] | tuple[str, ...]) -> str:
    """The same id whenever the same model runs over the same inputs, so a killed run can be resumed."""
    if not _RUN_KIND.match(kind):
        raise ValueError(f"run kind must be letters, digits or '_' (e.g. 'review', 'predict'), not {kind!r}")
    key = model_hash + "\n".join(sorted(inputs))
    return f"{kind}-" + hashlib.sha1(storable_text(key).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ResultRow:
    """One logged inspection or error, as read back from the database."""

    id: int
    time: float  # seconds since the epoch
    run_id: str
    source: str
    item: str  # file path or frame index
    model_path: str | None
    model_hash: str | None
    threshold: float | None
    verdict: str  # GOOD, ANOMALY or ERROR
    p_anomaly: float | None
    boxes: tuple[Box, ...]
    error: str | None
    frame_path: str | None  # absolute path of the saved anomaly frame

    @property
    def time_iso(self) -> str:
        """Local time with UTC offset, to the millisecond."""
        return datetime.fromtimestamp(self.time).astimezone().isoformat(timespec="milliseconds")


@dataclass
class _Pending:
    """A row waiting to be written, with the anomaly frame to save alongside it."""

    values: dict[str, object]
    image: np.ndarray | None


def storable_text(value: object) -> str:
    """str(value) as text SQLite and UTF-8 files accept: a file name that is not valid UTF-8 (which
    Python holds with lone surrogates) keeps its odd bytes visibly escaped, e.g. 'caf\\xe9.png'."""
    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join(_escape_surrogate(ch) for ch in text)
    return text


def _escape_surrogate(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of a file name (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF:
        return f"\\u{code:04x}"
    return ch


def _row_values(
    run_id: str, source: str, item: str | int, model_path: str | os.PathLike | None, model_hash: str | None
) -> dict[str, object]:
    """Column values shared by every row kind; the verdict-specific ones start empty."""
    return {
        "time": time.time(),
        # Coerced so no value can fail to bind and block every later write in the pending queue.
        "run_id": storable_text(run_id),
        "source": storable_text(source),
        "item": storable_text(item),
        "model_path": None if model_path is None else storable_text(os.fspath(model_path)),
        "model_hash": None if model_hash is None else storable_text(model_hash),
        "threshold": None,
        "verdict": None,
        "p_anomaly": None,
        "boxes": "[]",
        "error": None,
    }


def _timestamp(value: float | datetime | None) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else value


def _filters(
    verdict: str | None,
    since: float | datetime | None,
    until: float | datetime | None,
    source_contains: str | None,
    run_id: str | None,
) -> tuple[str, list]:
    """SQL WHERE clause (possibly empty) and its parameters; since is inclusive, until exclusive."""
    clauses: list[str] = []
    params: list = []
    if verdict is not None:
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)} or None, not {verdict!r}")
        clauses.append("verdict = ?")
        params.append(verdict)
    if since is not None:
        clauses.append("time >= ?")
        params.append(_timestamp(since))
    if until is not None:
        clauses.append("time < ?")
        params.append(_timestamp(until))
    if source_contains:
        clauses.append("instr(lower(source), lower(?)) > 0")
        params.append(source_contains)
    if run_id is not None:
        clauses.append("run_id = ?")
        params.append(run_id)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


class ResultsLog:
    """Append-only log of verdicts in SQLite (WAL), with anomaly frames saved as JPEGs beside it.

    Writes never raise on database trouble (locked, disk full, I/O error): the rows wait in memory,
    last_error says why, and the next write or flush() retries them first, in order. Each write is
    committed at once. While rows are waiting, a write waits at most RETRY_BUSY_S on a lock rather than
    timeout, so a long-held lock does not stall the inspection loop. One connection is shared under an
    internal lock, so a worker thread may write while the GUI thread reads; export_csv reads through
    a connection of its own.
    """

    def __init__(
        self, path: str | os.PathLike | None = None, *, timeout: float = 2.0, max_pending: int = 100_000
    ):
        self.path = Path(path) if path is not None else default_results_path()
        self.frames_dir = self.path.parent / "frames"
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
            self._create_schema(conn)
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise ResultsLogError(f"results database {self.path} cannot be opened ({exc})") from None
        except ResultsLogError:
            conn.close()
            raise
        self._conn: sqlite3.Connection | None = conn

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        if self._schema_ready(conn):
            return  # an existing log opens without a write lock, so a busy database still opens
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                conn.execute(statement)
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
            elif int(row[0]) > SCHEMA_VERSION:
                raise ResultsLogError(
                    f"results database {self.path} has schema version {row[0]}, newer than the "
                    f"{SCHEMA_VERSION} this VisInspect understands; use a newer VisInspect or another file"
                )
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def _schema_ready(self, conn: sqlite3.Connection) -> bool:
        """True when the tables exist at a schema version we understand (reads only; WAL readers never wait)."""
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
        if not {"meta", "results", "results_run_item", "results_time"} <= tables:
            return False
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            return False
        if int(row[0]) > SCHEMA_VERSION:
            raise ResultsLogError(
                f"results database {self.path} has schema version {row[0]}, newer than the "
                f"{SCHEMA_VERSION} this VisInspect understands; use a newer VisInspect or another file"
            )
        return True

    # -- writing ---------------------------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        """Rows waiting in memory because the database could not be written."""
        return len(self._pending)

    def log_inspection(
        self,
        *,
        run_id: str,
        source: str,
        item: str | int,
        model_path: str | os.PathLike,
        model_hash: str,
        inspection: Inspection,
        image: np.ndarray | None = None,
    ) -> None:
        """Record one verdict; for an ANOMALY with its RGB image, also save the frame as a JPEG."""
        if inspection.verdict not in (GOOD, ANOMALY):
            raise ValueError(f"inspection verdict must be {GOOD} or {ANOMALY}, not {inspection.verdict!r}")
        values = _row_values(run_id, source, item, model_path, model_hash)
        values.update(
            threshold=float(inspection.threshold),
            verdict=inspection.verdict,
            p_anomaly=float(inspection.p_anomaly),
            boxes=json.dumps([box.as_list() for box in inspection.boxes]),
        )
        self._write(_Pending(values, image if inspection.verdict == ANOMALY else None))

    def log_error(
        self,
        *,
        run_id: str,
        source: str,
        item: str | int,
        model_path: str | os.PathLike,
        model_hash: str,
        message: str,
    ) -> None:
        """Record that an item could not be inspected (verdict ERROR) and why."""
        values = _row_values(run_id, source, item, model_path, model_hash)
        values.update(verdict=ERROR, error=storable_text(message))
        self._write(_Pending(values, None))

    def flush(self) -> bool:
        """Try again to write rows that are waiting; True when none are left."""
        with self._lock:
            self._check_open()
            return self._flush_locked()

    def _write(self, entry: _Pending) -> None:
        with self._lock:
            self._check_open()
            busy_s = RETRY_BUSY_S if self._pending else None
            self._pending.append(entry)
            if entry.image is not None:
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
            self._with_images.popleft().image = None  # the row is still written, without its frame

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
                row_id = self._conn.execute(_INSERT, entry.values).lastrowid
                if entry.image is not None:
                    relative, problem = self._save_frame(row_id, entry.values["time"], entry.image)
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

    def _save_frame(self, row_id: int, when: float, image: np.ndarray) -> tuple[str | None, str | None]:
        """Save an RGB frame as frames/YYYY-MM-DD/<id>.jpg; (path relative to the db folder, problem)."""
        folder = self.frames_dir / datetime.fromtimestamp(when).strftime("%Y-%m-%d")
        target = folder / f"{row_id}.jpg"
        try:
            bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 and image.shape[2] == 3 else image
            ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        except cv2.error as exc:
            return None, f"anomaly frame {row_id} not saved: cannot encode image ({exc.err})"
        if not ok:
            return None, f"anomaly frame {row_id} not saved: cannot encode image"
        try:
            # imencode + write_bytes, not imwrite: handles non-ASCII paths and says why a write failed.
            folder.mkdir(parents=True, exist_ok=True)
            target.write_bytes(encoded.tobytes())
        except OSError as exc:
            return None, f"anomaly frame {row_id} not saved to {target}: {exc.strerror or exc}"
        return target.relative_to(self.path.parent).as_posix(), None

    # -- reading ---------------------------------------------------------------------------------

    def _row(self, raw: tuple) -> ResultRow:
        (row_id, when, run_id, source, item, model_path, model_hash,
         threshold, verdict, p_anomaly, boxes, error, frame_path) = raw  # fmt: skip
        return ResultRow(
            id=row_id,
            time=when,
            run_id=run_id,
            source=source,
            item=item,
            model_path=model_path,
            model_hash=model_hash,
            threshold=threshold,
            verdict=verdict,
            p_anomaly=p_anomaly,
            boxes=tuple(
                Box(int(b[0]), int(b[1]), int(b[2]), int(b[3]), float(b[4])) for b in json.loads(boxes)
            ),
            error=error,
            frame_path=str(self.path.parent / frame_path) if frame_path else None,
        )

    def query(
        self,
        *,
        verdict: str | None = None,
        since: float | datetime | None = None,
        until: float | datetime | None = None,
        source_contains: str | None = None,
        run_id: str | None = None,
        limit: int | None = 1000,
    ) -> list[ResultRow]:
        """Written rows matching every filter given, newest first (since inclusive, until exclusive)."""
        where, params = _filters(verdict, since, until, source_contains, run_id)
        sql = f"{_SELECT}{where} ORDER BY time DESC, id DESC"
        if limit is not None:
            if limit < 1:
                raise ValueError(f"limit must be 1 or more, or None for all rows, not {limit}")
            sql += " LIMIT ?"
            params.append(limit)
        with self._lock:
            self._check_open()
            raw = self._conn.execute(sql, params).fetchall()
        return [self._row(r) for r in raw]

    def count(
        self,
        *,
        verdict: str | None = None,
        since: float | datetime | None = None,
        until: float | datetime | None = None,
        source_contains: str | None = None,
        run_id: str | None = None,
    ) -> int:
        """How many written rows match every filter given."""
        where, params = _filters(verdict, since, until, source_contains, run_id)
        with self._lock:
            self._check_open()
            return self._conn.execute(f"SELECT count(*) FROM results{where}", params).fetchone()[0]

    def done_items(self, run_id: str) -> set[str]:
        """Items of a run that already have a GOOD or ANOMALY verdict, so a resumed review can skip them."""
        with self._lock:
            self._check_open()
            rows = self._conn.execute(
                "SELECT DISTINCT item FROM results WHERE run_id = ? AND verdict != ?", (run_id, ERROR)
            ).fetchall()
            waiting = {
                e.values["item"]
                for e in self._pending
                if e.values["run_id"] == run_id and e.values["verdict"] != ERROR
            }
        return {r[0] for r in rows} | waiting

    def finished_rows(self, run_id: str) -> dict[str, ResultRow]:
        """The newest GOOD or ANOMALY row of each item of a written run, to show a resumed review's earlier verdicts."""
        latest: dict[str, ResultRow] = {}
        for row in self.query(run_id=run_id, limit=None):  # newest first
            if row.verdict != ERROR and row.item not in latest:
                latest[row.item] = row
        return latest

    def export_csv(
        self,
        path: str | os.PathLike,
        *,
        verdict: str | None = None,
        since: float | datetime | None = None,
        until: float | datetime | None = None,
        source_contains: str | None = None,
        run_id: str | None = None,
        limit: int | None = None,
    ) -> int:
        """Write matching rows to a UTF-8 CSV, oldest first, and return how many were written."""
        where, params = _filters(verdict, since, until, source_contains, run_id)
        sql = f"{_SELECT}{where} ORDER BY time ASC, id ASC"
        if limit is not None:
            if limit < 1:
                raise ValueError(f"limit must be 1 or more, or None for all rows, not {limit}")
            sql += " LIMIT ?"
            params.append(limit)
        self.flush()
        # A separate read-only connection streams a large export without blocking the writer.
        reader = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        written = 0
        try:
            with open(path, "w", newline="", encoding="utf-8") as out:
                writer = csv.writer(out)
                writer.writerow(CSV_COLUMNS)
                for raw in reader.execute(sql, params):
                    row = self._row(raw)
                    writer.writerow((
                        row.time_iso, row.run_id, row.source, row.item, row.verdict,
                        "" if row.p_anomaly is None else f"{row.p_anomaly:.6f}",
                        "" if row.threshold is None else f"{row.threshold:.6f}",
                        json.dumps([b.as_list() for b in row.boxes]), row.error or "",
                        row.model_path or "", row.model_hash or "", row.frame_path or "",
                    ))  # fmt: skip
                    written += 1
        finally:
            reader.close()
        return written

    # -- lifetime --------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._conn is None:
            raise ResultsLogError(f"results log {self.path} is closed")

    def close(self) -> None:
        """Make a last attempt to write waiting rows, then close the database; safe to call twice.

        Rows that still cannot be written are lost, and last_error says how many.
        """
        with self._lock:
            if self._conn is None:
                return
            if not self._flush_locked():
                self.last_error = f"{len(self._pending)} result(s) lost on close: {self.last_error}"
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
