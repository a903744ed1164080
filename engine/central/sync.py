"""Store-and-forward: a station's results log pushed to the central server in batches, each row exactly once.

Each batch is one server transaction that skips rows already there ((station_id, local_id) is the key), and the
local mark moves only after the server committed it: a crash or outage anywhere costs at most a batch sent again,
which the server ignores. At most one batch is in memory however far behind the server is.
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.central.errors import CentralError, CentralUnreachable
from engine.central.outbox import Outbox
from engine.central.schema import COLUMN_TYPES, insert_sql, prepare_central, store_id
from engine.central.share import FrameShare
from engine.central.target import CentralTarget, one_line, psycopg_module

BATCH_SIZE = 500
STATEMENT_TIMEOUT_MS = 60_000  # a statement the server holds longer (a table locked by hand) fails and is retried
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchSent:
    """One batch the server committed: rows new to it, rows it already had, and the newest local id in the batch."""

    sent: int
    already: int
    through_id: int


@dataclass(frozen=True)
class SyncReport:
    """What one push did: rows the server did not have, rows it already had, and how far the log is now sent."""

    target: str  # HOST/DB
    station_id: str
    sent: int
    already: int
    through_id: int  # every local row up to this id is on the server
    mark_saved: bool = True  # False: the log was locked, the mark moves next time (nothing is lost)

    def describe(self) -> str:
        return f"{self.sent} results sent to {self.target} ({self.already} already there)"


class CentralSession:
    """One station log and one central server: connects (and migrates) when needed, pushes what the server lacks.

    Not thread-safe: one thread pushes (the CLI, or the forwarder's thread).
    """

    def __init__(
        self, target: CentralTarget, log_path: str | Path, *, station: str | None = None,
        batch_size: int = BATCH_SIZE, frames_url: str | None = None, share: str | Path | None = None,
    ):  # fmt: skip
        if batch_size < 1:
            raise ValueError(f"batch size must be 1 or more, not {batch_size}")
        self.target = target
        self.batch_size = batch_size
        self.outbox = Outbox(log_path)
        try:
            self.station_id = self.outbox.station_id(station)
            self.share = FrameShare(share, self.station_id) if share is not None else None
        except CentralError:
            self.outbox.close()
            raise
        self._frames_base = frames_url.rstrip("/") + "/" if frames_url else None
        self._log_dir = self.outbox.path.resolve().parent
        self._frame_index = self.outbox.columns.index("frame_path") if "frame_path" in self.outbox.columns else None
        self._time_index = self.outbox.columns.index("time")
        self._sql = insert_sql(self.outbox.columns)
        self._conn = None
        self.store_id: str | None = None  # the central store's own id, known once connected
        if self.outbox.unsent_columns:
            log.warning("results log columns %s have no central column and are not sent", self.outbox.unsent_columns)

    # -- the server ------------------------------------------------------------------------------

    def _connection(self):
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        self.disconnect()
        conn = self.target.connect()
        try:
            self._server(lambda: _set_statement_timeout(conn), conn)
            self._server(lambda: prepare_central(conn, self.target.display), conn)
            self.store_id = self._server(lambda: store_id(conn), conn)
        except CentralError:
            conn.close()
            raise
        self.outbox.remember_store(self.target.key, self.store_id)
        self._conn = conn
        return conn

    def _server(self, call: Callable, conn=None):
        """call() on the server; its failure as CentralUnreachable (connection lost) or CentralError, one masked line."""
        psycopg = psycopg_module()
        try:
            return call()
        except psycopg.OperationalError as exc:
            self.disconnect(conn)
            raise CentralUnreachable(f"lost the central store {self.target.display}: {self.target.mask(one_line(exc))}") from None
        except psycopg.Error as exc:
            self.disconnect(conn)
            raise CentralError(f"the central store {self.target.display} refused: {self.target.mask(one_line(exc))}") from None

    def cancel(self) -> None:
        """Ask the server to cancel the statement in flight (safe from another thread); the push then fails fast."""
        conn = self._conn
        if conn is None:
            return
        try:
            if hasattr(conn, "cancel_safe"):  # psycopg 3.2+: bounded, and does not block the event loop
                conn.cancel_safe(timeout=2.0)
            else:
                conn.cancel()
        except Exception:  # noqa: BLE001 - nothing in flight, or the server is gone: either way nothing waits
            pass

    def disconnect(self, conn=None) -> None:
        """Drop the server connection (the next push reconnects)."""
        conn = conn or self._conn
        if conn is self._conn:
            self._conn = None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a connection already broken may fail to close; it is gone either way
                pass

    def _server_max(self, conn) -> int:
        def query():
            with conn.transaction():
                return conn.execute(
                    "SELECT coalesce(max(local_id), 0) FROM results WHERE station_id = %s", (self.station_id,)
                ).fetchone()[0]

        return self._server(query, conn)

    # -- pushing ---------------------------------------------------------------------------------

    def pending(self) -> int:
        """Rows of the log after the local mark (what the next push sends at least)."""
        return self.outbox.count_after(self.outbox.mark(self.store_id or self.outbox.store_at(self.target.key)))

    def push(self, *, stop: threading.Event | None = None, on_batch: Callable[[BatchSent], None] | None = None) -> SyncReport:
        """Send every row the log held when called and the server lacks; stops early (between batches) when `stop` is set."""
        conn = self._connection()
        key = self.store_id
        local_mark = self.outbox.mark(key)
        start = min(local_mark, self._server_max(conn))  # a server restored from an older backup gets its rows back
        end = self.outbox.last_id()  # rows logged from now on wait for the next push
        sent = already = 0
        saved = True
        while start < end and not (stop is not None and stop.is_set()):
            rows = self.outbox.batch_after(start, end, self.batch_size)
            if not rows:
                break
            params = self._params(rows)

            def insert(params=params):
                with conn.transaction():
                    return conn.execute(self._sql, params).rowcount

            inserted = self._server(insert, conn)
            start = rows[-1][0]
            saved = self.outbox.set_mark(key, start) if start > local_mark else True
            sent += inserted
            already += len(rows) - inserted
            if on_batch is not None:
                on_batch(BatchSent(inserted, len(rows) - inserted, start))
        return SyncReport(self.target.display, self.station_id, sent, already, max(start, local_mark), saved)

    def _params(self, rows: list[tuple]) -> list:
        """[station_id, local ids, one list per column]: the batch as the insert statement takes it."""
        columns = [list(c) for c in zip(*rows)]
        ids, values = columns[0], columns[1:]
        for i, name in enumerate(self.outbox.columns):
            kind = COLUMN_TYPES[name]
            if kind == "text":
                values[i] = [_text(v) for v in values[i]]
            elif kind == "jsonb":
                values[i] = [_json(v) for v in values[i]]
        if self._frame_index is not None:
            times = values[self._time_index]
            values[self._frame_index] = [self._frame_ref(p, i, t) for p, i, t in zip(values[self._frame_index], ids, times)]
        return [self.station_id, ids, *values]

    def _frame_ref(self, relative: str | None, local_id: int, when: float) -> str | None:
        """The anomaly frame as the plant sees it: its copy on the share when one is set (copied now, before its row
        is sent), else under the frames URL if one is set, else its path on the station."""
        if not relative:
            return None
        if self.share is not None:
            copy = self.share.copy(self._log_dir / relative, local_id, when)
            if copy is not None:
                return self._frames_base + copy.relative_to(self.share.folder).as_posix() if self._frames_base else str(copy)
        if self._frames_base:
            return self._frames_base + relative
        return str(self._log_dir / relative)

    def close(self) -> None:
        self.disconnect()
        self.outbox.close()

    def __enter__(self) -> CentralSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _set_statement_timeout(conn) -> None:
    with conn.transaction():
        conn.execute("SELECT set_config('statement_timeout', %s, false)", (str(STATEMENT_TIMEOUT_MS),))


def _text(value: object) -> str | None:
    """PostgreSQL text cannot hold NUL: such a row would block every later one, so NUL is escaped."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text.replace("\x00", "\\x00") if "\x00" in text else text


def _json(value: object) -> str | None:
    """jsonb refuses NaN and Infinity (Python writes them): those become null instead of blocking the queue."""
    if value is None:
        return None
    text = str(value)
    if "NaN" in text or "Infinity" in text:
        try:
            text = json.dumps(json.loads(text, parse_constant=lambda _: None))
        except ValueError:
            return "null"
    return text


def sync_log(
    url: str | CentralTarget, log_path: str | Path, *, station: str | None = None, batch_size: int = BATCH_SIZE,
    frames_url: str | None = None, share: str | Path | None = None, on_batch: Callable[[BatchSent], None] | None = None,
) -> SyncReport:  # fmt: skip
    """Push every row of the log the central server does not have yet (what `visinspect sync` runs)."""
    target = url if isinstance(url, CentralTarget) else CentralTarget.parse(url)
    with CentralSession(target, log_path, station=station, batch_size=batch_size, frames_url=frames_url, share=share) as session:
        return session.push(on_batch=on_batch)
