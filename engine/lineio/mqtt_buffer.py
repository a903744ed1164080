"""The MQTT publisher's on-disk queue: results wait here, in order, until the broker acknowledges them (PUBACK)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from engine.errors import LineIOError

DEFAULT_MAX_BUFFERED = 100_000  # about 30 MB of results: hours of a broker outage at a few parts a second


@dataclass(frozen=True)
class BufferedMessage:
    """One waiting message; row ids grow in publish order."""

    row_id: int
    topic: str
    payload: bytes


class ResultBuffer:
    """A bounded SQLite queue. When full, the oldest messages not yet handed to the broker make room for the newest.

    The line keeps running and a dashboard sees current results after an outage; every result is still in the
    station's results log. Used by one thread at a time (the publisher's worker).
    """

    def __init__(self, path: Path | str, *, max_rows: int = DEFAULT_MAX_BUFFERED) -> None:
        if max_rows < 1:
            raise LineIOError(f"the MQTT buffer must hold at least 1 result, not {max_rows}")
        self.path = Path(path)
        self.max_rows = int(max_rows)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # survives a crash of the process, costs no fsync a row
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
                "payload BLOB NOT NULL)"
            )
            self._count = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        except (OSError, sqlite3.Error) as exc:
            raise LineIOError(f"MQTT buffer {self.path} cannot be used: {exc}") from exc

    def append(self, topic: str, payload: bytes, *, handed_up_to: int = 0) -> int:
        """Store one message; returns how many older waiting messages were dropped to make room (0 normally).

        Messages with row ids <= handed_up_to are with the MQTT client already and are never dropped.
        """
        dropped = 0
        excess = self._count + 1 - self.max_rows
        if excess > 0:
            cur = self._db.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE id > ? ORDER BY id LIMIT ?)",
                (handed_up_to, excess),
            )
            dropped = cur.rowcount
        self._db.execute("INSERT INTO outbox (topic, payload) VALUES (?, ?)", (topic, payload))
        self._count += 1 - dropped
        return dropped

    def after(self, row_id: int, limit: int) -> list[BufferedMessage]:
        """The next waiting messages after row_id, oldest first."""
        rows = self._db.execute(
            "SELECT id, topic, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (row_id, limit)
        ).fetchall()
        return [BufferedMessage(r[0], r[1], bytes(r[2])) for r in rows]

    def delete(self, row_id: int) -> None:
        """The broker acknowledged this message."""
        self._count -= self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,)).rowcount

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        self._db.close()


__all__ = ["DEFAULT_MAX_BUFFERED", "BufferedMessage", "ResultBuffer"]
