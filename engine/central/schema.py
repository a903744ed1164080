"""The central `results` table and its versioned migrations (schema_version holds every version applied)."""
from __future__ import annotations

from engine.central.errors import CentralError

# Any fixed number: stations that meet an empty database at the same moment migrate it one at a time.
MIGRATION_LOCK = 7_242_031_014
# The columns a station sends, by their name in the local log, with their central type. A local column that is not
# here is not sent; a central one the log lacks (an older log) stays NULL. recipe and part_id arrive once the log has them.
COLUMN_TYPES: dict[str, str] = {
    "time": "timestamptz",  # the local REAL (seconds since the epoch) as an absolute time
    "run_id": "text",
    "source": "text",
    "item": "text",
    "model_path": "text",
    "model_hash": "text",
    "threshold": "double precision",
    "verdict": "text",
    "p_anomaly": "double precision",
    "boxes": "jsonb",
    "error": "text",
    "frame_path": "text",  # where the anomaly frame is: a path on the station, or a URI under the frames URL
    "regions": "jsonb",
    "box_threshold": "double precision",
    "min_area": "double precision",
    "recipe": "text",
    "part_id": "text",
}
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE IF NOT EXISTS schema_version (
            version integer PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )""",
        """CREATE TABLE IF NOT EXISTS results (
            station_id text NOT NULL,
            local_id bigint NOT NULL,
            time timestamptz NOT NULL,
            run_id text NOT NULL,
            source text NOT NULL,
            item text NOT NULL,
            model_path text,
            model_hash text,
            threshold double precision,
            verdict text NOT NULL,
            p_anomaly double precision,
            boxes jsonb NOT NULL DEFAULT '[]',
            error text,
            frame_path text,
            regions jsonb,
            box_threshold double precision,
            min_area double precision,
            recipe text,
            part_id text,
            synced_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (station_id, local_id)
        )""",
        "CREATE INDEX IF NOT EXISTS results_station_time ON results (station_id, time)",
        "CREATE INDEX IF NOT EXISTS results_time ON results (time)",
        "CREATE INDEX IF NOT EXISTS results_recipe_time ON results (recipe, time)",
        "CREATE INDEX IF NOT EXISTS results_model_time ON results (model_hash, time)",
        # Who this store is: a station keeps its progress under this id, so another name for the same server
        # finds it, and a new database at the same address is sent everything.
        """CREATE TABLE IF NOT EXISTS store_identity (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            created_at timestamptz NOT NULL DEFAULT now()
        )""",
        "INSERT INTO store_identity DEFAULT VALUES",
        "COMMENT ON TABLE results IS 'One row per inspection of every station (VisInspect); "
        "(station_id, local_id) is the row''s global id'",
    ),
}
LATEST = max(MIGRATIONS)


def current_version(conn) -> int:
    """The newest version applied (0: an empty database)."""
    if conn.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
        return 0
    return conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]


def check_version(version: int, where: str) -> None:
    if version > LATEST:
        raise CentralError(
            f"the central store {where} has schema version {version}, newer than the {LATEST} this VisInspect "
            "understands; update VisInspect on this station"
        )


def prepare_central(conn, where: str) -> int:
    """Bring the central schema up to LATEST (nothing written when it is already there); the version it is at."""
    with conn.transaction():
        version = current_version(conn)
    check_version(version, where)
    if version == LATEST:
        return version  # a station role without DDL rights works once the schema is in place
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        version = current_version(conn)  # another station may have migrated while we waited
        check_version(version, where)
        for upgrade in range(version + 1, LATEST + 1):
            for statement in MIGRATIONS[upgrade]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (upgrade,))
    return LATEST


def store_id(conn) -> str:
    """The id this central store was created with."""
    with conn.transaction():
        return str(conn.execute("SELECT id FROM store_identity ORDER BY created_at LIMIT 1").fetchone()[0])


def insert_sql(columns: list[str]) -> str:
    """One statement that inserts a whole batch (one array per column) and skips rows already there.

    Parameters: station_id, local ids, then one array per column in `columns`; rowcount is the rows inserted.
    """
    arrays = ["%s::bigint[]"] + [f"%s::{_array_type(c)}[]" for c in columns]
    names = ["local_id", *columns]
    values = ["u.local_id"] + [_cast(c) for c in columns]
    return (
        f"INSERT INTO results (station_id, {', '.join(names)}) "
        f"SELECT %s, {', '.join(values)} FROM unnest({', '.join(arrays)}) AS u({', '.join(names)}) "
        "ON CONFLICT (station_id, local_id) DO NOTHING"
    )


def _array_type(column: str) -> str:
    kind = COLUMN_TYPES[column]
    return {"timestamptz": "double precision", "jsonb": "text"}.get(kind, kind)


def _cast(column: str) -> str:
    kind = COLUMN_TYPES[column]
    if kind == "timestamptz":
        return f"to_timestamp(u.{column})"
    if kind == "jsonb":
        return f"u.{column}::jsonb"
    return f"u.{column}"
