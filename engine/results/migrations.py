"""Creating the results log's tables, and upgrading an older log in place when it is opened."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from engine.results.schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION, TABLES, ResultsLogError


def prepare_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create the tables of a new log, or upgrade an older one (its rows kept); ResultsLogError if it is newer."""
    if _schema_ready(conn, path):
        return  # an up-to-date log opens without a write lock, so a busy database still opens
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in SCHEMA:
            conn.execute(statement)
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        else:
            version = _check_version(row[0], path)
            for upgrade in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[upgrade]:
                    conn.execute(statement)
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
        conn.execute("COMMIT")
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")


def _check_version(value: str, path: Path) -> int:
    """The log's schema version; ResultsLogError when it is newer than this VisInspect understands."""
    version = int(value)
    if version > SCHEMA_VERSION:
        raise ResultsLogError(
            f"results database {path} has schema version {version}, newer than the "
            f"{SCHEMA_VERSION} this VisInspect understands; use a newer VisInspect or another file"
        )
    return version


def _schema_ready(conn: sqlite3.Connection, path: Path) -> bool:
    """True when the tables exist at this schema version (reads only; WAL readers never wait)."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    if not TABLES <= tables:
        return False
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return row is not None and _check_version(row[0], path) == SCHEMA_VERSION
