"""Plant-wide results: each station's SQLite log forwarded, exactly once, to a central PostgreSQL (extra `central`).

`sync_log` pushes what is not there yet (the `visinspect sync` command), copying anomaly frames to a plant share
when given one (`FrameShare`); `Forwarder` does it continuously in a thread for the station and `serve`;
`push_archive` sends an archive review's rows; `PlantReader` reads every station's rows back (History's Plant view). Imported lazily (the CLI's
parser stays fast), and psycopg only when a server is contacted, so the engine runs without it.
"""
from importlib import import_module

_EXPORTS = {
    "CentralError": "engine.central.errors",
    "CentralUnreachable": "engine.central.errors",
    "FrameShareError": "engine.central.errors",
    "CentralTarget": "engine.central.target",
    "BatchSent": "engine.central.sync",
    "SyncReport": "engine.central.sync",
    "sync_log": "engine.central.sync",
    "Forwarder": "engine.central.forwarder",
    "ForwarderStatus": "engine.central.forwarder",
    "PlantFilter": "engine.central.plant",
    "PlantReader": "engine.central.plant",
    "PlantRow": "engine.central.plant",
    "FrameShare": "engine.central.share",
    "push_archive": "engine.central.archive",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'engine.central' has no attribute {name!r}")
