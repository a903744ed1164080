"""Shared by the central-store tests: a real PostgreSQL per test module, a fresh schema per test, station logs to send.

The fixtures are imported by name into each test module (`from ... import central_fixture`).
"""
from __future__ import annotations

import itertools
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from engine.results import ResultsLog
from engine.results.schema import COLUMNS
from engine.thresholds import Thresholds
from engine.types import Box, Inspection, ModelRef
from tests.engine.pg_server import PgServer

psycopg = pytest.importorskip("psycopg")

PASSWORD = "Sesame-7f3a!x"  # appears in no message, ever
MODEL = ModelRef("/models/m.safetensors", "cd" * 32)
_schemas = itertools.count()


@pytest.fixture(scope="module", name="pg")
def pg_fixture():
    server, why = PgServer.find(PASSWORD)
    if server is None:
        pytest.skip(why)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module", name="plant_db")
def plant_db_fixture(pg) -> str:
    with psycopg.connect(pg.url(), password=PASSWORD, autocommit=True) as conn:
        conn.execute("CREATE DATABASE plant")
    return "plant"


@pytest.fixture(name="central")
def central_fixture(pg, plant_db, monkeypatch) -> str:
    """The URL (no password) of a fresh, empty schema on the running server; the password comes from PGPASSWORD.

    A schema per test (through the URL's search_path) rather than a database: creating one takes milliseconds.
    """
    if not pg.running:
        pg.start()
    schema = f"t{next(_schemas)}"
    with psycopg.connect(pg.url(plant_db), password=PASSWORD, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    monkeypatch.setenv("PGPASSFILE", str(Path(pg.root) / "no-such-pgpass"))
    return pg.url(plant_db) + f"?options=-csearch_path%3D{schema}"


def host_db(url: str) -> str:
    """How the sync command names the server of a URL: HOST:PORT/DB."""
    return url.split("@", 1)[1].split("?", 1)[0]


def admin(url: str):
    """A connection as the cluster's admin (autocommit), to look at or change the central store behind a test's back."""
    return psycopg.connect(url, password=PASSWORD, autocommit=True)


def make_log(path: Path, n: int) -> Path:
    """A station log: two real inspections (an ANOMALY with its saved frame, a GOOD), an ERROR, then n-3 plain rows."""
    with ResultsLog(path) as log:
        regions = (Box(1, 2, 3, 4, 0.9),)
        bad = Inspection(0.93, Thresholds(0.5), np.zeros((8, 8), np.float32), regions, model=MODEL)
        good = Inspection(0.02, Thresholds(0.5), np.zeros((8, 8), np.float32), regions, model=MODEL)
        log.log_inspection(run_id="live-1", source="camera 0", item="part-1", inspection=bad, image=np.zeros((16, 16, 3), np.uint8))
        log.log_inspection(run_id="live-1", source="camera 0", item="part-2", inspection=good)
        log.log_error(run_id="live-1", source="camera 0", item="part-3", model=MODEL, message="camera timeout")
    add_rows(path, n - 3)
    return path


def add_rows(path: Path, n: int, start: float = 1.7e9) -> None:
    """n more GOOD rows, written as the station writes them (one table, ids in order)."""
    row = dict.fromkeys(COLUMNS) | {"run_id": "bulk", "source": "folder /line", "verdict": "GOOD", "boxes": "[]", "p_anomaly": 0.01}
    with sqlite3.connect(path) as conn:
        first = conn.execute("SELECT coalesce(max(id), 0) FROM results").fetchone()[0]
        conn.executemany(
            f"INSERT INTO results ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})",
            (row | {"time": start + i, "item": f"img-{first + i + 1}.png"} for i in range(n)),
        )
    conn.close()


def central_rows(url: str, station: str) -> list[tuple[int, str]]:
    with admin(url) as conn:
        return conn.execute("SELECT local_id, item FROM results WHERE station_id = %s ORDER BY local_id", (station,)).fetchall()


def local_rows(path: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT id, item FROM results ORDER BY id").fetchall()
    conn.close()
    return rows


def wait_for(forwarder, done, limit_s: float = 30.0):
    """The forwarder's status once done(status) holds (the limit only keeps a broken build from hanging)."""
    deadline = time.monotonic() + limit_s
    while not done(status := forwarder.status()):
        if time.monotonic() > deadline:
            pytest.fail(f"the forwarder did not get there: {status}")
        time.sleep(0.02)
    return status


class socket_without_server:
    """A loopback port nobody listens on (bound, not listening, for the test's duration)."""

    def __enter__(self) -> int:
        import socket

        self._s = socket.socket()
        self._s.bind(("127.0.0.1", 0))
        return self._s.getsockname()[1]

    def __exit__(self, *exc_info) -> None:
        self._s.close()


def wait_until_an_insert_waits(url: str) -> None:
    """Return once a station's insert is waiting on a lock on the server (a test holds the table locked)."""
    with admin(url) as watcher:
        while not watcher.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO results%%'"
        ).fetchone()[0]:
            time.sleep(0.02)
