"""Plant-wide results: each station's SQLite log forwarded, exactly once, to a central PostgreSQL (extra `central`).

`sync_log` pushes what is not there yet (the `visinspect sync` command); `Forwarder` does it continuously in a
thread for the station and `serve`. psycopg is imported only when a server is contacted, so the engine runs without it.
"""
from __future__ import annotations

from engine.central.errors import CentralError, CentralUnreachable
from engine.central.forwarder import Forwarder, ForwarderStatus
from engine.central.plant import PlantFilter, PlantReader, PlantRow
from engine.central.sync import BatchSent, SyncReport, sync_log
from engine.central.target import CentralTarget

__all__ = [
    "BatchSent",
    "CentralError",
    "CentralTarget",
    "CentralUnreachable",
    "Forwarder",
    "ForwarderStatus",
    "PlantFilter",
    "PlantReader",
    "PlantRow",
    "SyncReport",
    "sync_log",
]
