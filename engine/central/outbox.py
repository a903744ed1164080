"""The station side of forwarding: its id, what has reached each central server, and the rows after that, in batches.

Everything lives in the results log's own `meta` table, so a log copied elsewhere carries its progress with it.
The log is read through a connection of its own; the station may go on writing meanwhile (WAL readers never wait).
"""
from __future__ import annotations

import contextlib
import re
import secrets
import socket
import sqlite3
from pathlib import Path

from engine.central.errors import CentralError
from engine.central.schema import COLUMN_TYPES

STATION_KEY = "station_id"
MARK_PREFIX = "central_sent:"  # + store id: the newest local id that central store has committed
STORE_PREFIX = "central_store:"  # + HOST/DB: the id of the store last found there (to count what waits while it is away)
_STATION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def check_station_id(value: str) -> str:
    if not _STATION.match(value):
        raise CentralError(
            f"station id must be 1-64 letters, digits, '_', '.', ':' or '-' (starting with a letter or digit), not {value!r}"
        )
    return value


def new_station_id() -> str:
    """This machine's name and a random suffix: unique across the plant, readable in a dashboard."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:48].strip("-.") or "station"
    return f"{host}-{secrets.token_hex(3)}"


class Outbox:
    """A station's results log seen as rows to send: `batch_after(mark)` reads at most `limit` rows, oldest first."""

    def __init__(self, path: str | Path, *, timeout: float = 5.0):
        self.path = Path(path)
        if not self.path.is_file():
            raise CentralError(f"results log {self.path} does not exist (give the station's log with --log)")
        try:
            self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
            local = [r[1] for r in self._conn.execute("PRAGMA table_info(results)")]
        except sqlite3.Error as exc:
            self.close()
            raise CentralError(f"results log {self.path} cannot be read ({exc})") from None
        if not local:
            self.close()
            raise CentralError(f"{self.path} is not a VisInspect results log (it has no results table)")
        self.columns = [c for c in COLUMN_TYPES if c in local]  # sent, in the central table's order
        self.unsent_columns = [c for c in local if c != "id" and c not in COLUMN_TYPES]
        self._select = f"SELECT id, {', '.join(self.columns)} FROM results WHERE id > ? AND id <= ? ORDER BY id LIMIT ?"
        if not self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone():
            self._write("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def _write(self, sql: str, params: tuple = ()) -> None:
        try:
            self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise CentralError(f"results log {self.path} cannot be written ({exc})") from None

    def _meta(self, key: str) -> str | None:
        try:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            raise CentralError(f"results log {self.path} cannot be read ({exc})") from None
        return None if row is None else row[0]

    def station_id(self, wanted: str | None = None) -> str:
        """The id this log's rows carry centrally: stored on first use (generated unless `wanted`), then fixed.

        Another id is refused once rows went out under the stored one (they would all arrive a second time).
        """
        if wanted is not None:
            check_station_id(wanted)
        stored = self._meta(STATION_KEY)
        if stored is not None and (wanted is None or wanted == stored):
            return stored
        if stored is not None and self._anything_sent():
            raise CentralError(
                f"results log {self.path} was already sent as station {stored!r}; sending it as {wanted!r} "
                "would store every row twice (leave the station id as it is)"
            )
        if stored is None:  # OR IGNORE: two processes naming a new log at once agree on the first name written
            self._write("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (STATION_KEY, wanted or new_station_id()))
        else:
            self._write("UPDATE meta SET value = ? WHERE key = ?", (wanted, STATION_KEY))
        return self._meta(STATION_KEY)

    def _anything_sent(self) -> bool:
        rows = self._conn.execute("SELECT value FROM meta WHERE key LIKE ?", (MARK_PREFIX + "%",)).fetchall()
        return any(int(v) > 0 for (v,) in rows)

    def mark(self, store_id: str | None) -> int:
        """The newest local id this central store is known to hold (0: none, or a store never reached)."""
        value = self._meta(MARK_PREFIX + store_id) if store_id else None
        return int(value) if value is not None else 0

    def set_mark(self, store_id: str, local_id: int) -> bool:
        """Remember that the store committed every row through local_id (a mark only moves forward); False if the
        log is locked just now (harmless: those rows are offered again later and the store skips them)."""
        try:
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value "
                "WHERE CAST(excluded.value AS INTEGER) > CAST(meta.value AS INTEGER)",
                (MARK_PREFIX + store_id, str(int(local_id))),
            )
        except sqlite3.Error:
            return False
        return True

    def store_at(self, target_key: str) -> str | None:
        """The id of the store last found at HOST/DB (None: never reached)."""
        return self._meta(STORE_PREFIX + target_key)

    def remember_store(self, target_key: str, store_id: str) -> None:
        with contextlib.suppress(sqlite3.Error):  # only for counting what waits; found again on the next connect
            self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (STORE_PREFIX + target_key, store_id))

    def batch_after(self, local_id: int, through: int, limit: int) -> list[tuple]:
        """Up to `limit` rows with ids after local_id and up to `through`, oldest first: (id, *columns)."""
        try:
            return self._conn.execute(self._select, (local_id, through, limit)).fetchall()
        except sqlite3.Error as exc:
            raise CentralError(f"results log {self.path} cannot be read ({exc})") from None

    def last_id(self) -> int:
        """The newest row's id (0: an empty log)."""
        try:
            return self._conn.execute("SELECT coalesce(max(id), 0) FROM results").fetchone()[0]
        except sqlite3.Error as exc:
            raise CentralError(f"results log {self.path} cannot be read ({exc})") from None

    def count_after(self, local_id: int) -> int:
        """Rows with a larger id: what is still to send."""
        try:
            return self._conn.execute("SELECT count(*) FROM results WHERE id > ?", (local_id,)).fetchone()[0]
        except sqlite3.Error as exc:
            raise CentralError(f"results log {self.path} cannot be read ({exc})") from None

    def close(self) -> None:
        conn, self._conn = getattr(self, "_conn", None), None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
