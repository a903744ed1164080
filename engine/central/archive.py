"""An archive review's rows sent to the central `results` table, each exactly once however often the run is repeated.

An archive has no results log and so no local ids: a row's id is derived from what it is (the model file, the
decision threshold and the image path), so a rerun, a resumed run or the same review written to another output
offers the same ids and the server skips them. The same image judged by another model or threshold is another row.
"""
from __future__ import annotations

import hashlib
import re
import socket
import time
from collections.abc import Sequence
from datetime import datetime

from engine.central.errors import CentralError, CentralUnreachable
from engine.central.outbox import check_station_id
from engine.central.schema import insert_sql, prepare_central
from engine.central.sync import BATCH_SIZE, SyncReport, _json, _set_statement_timeout, _text
from engine.central.target import CentralTarget, one_line, psycopg_module
from engine.thresholds import Thresholds

# What an archive row fills in the central table (no frame, regions, recipe or part id).
COLUMNS = ["time", "run_id", "source", "item", "model_path", "model_hash", "threshold", "verdict", "p_anomaly",
           "boxes", "error", "box_threshold", "min_area"]  # fmt: skip


def archive_station_id() -> str:
    """The station id archive rows carry: 'archive:' and this machine's name."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:55].strip("-.") or "host"
    return f"archive:{host}"


def archive_local_id(record) -> int:
    """The row's id within its station: a 63-bit hash of model file, decision threshold (as written) and path."""
    threshold = "" if record.threshold is None else f"{record.threshold:.6f}"
    key = "\0".join((record.model_sha256, threshold, record.path)).encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") & (2**63 - 1)


def _epoch(inspected_at: str) -> float:
    try:
        return datetime.fromisoformat(inspected_at).timestamp()  # local time, as the review writes it
    except ValueError:
        return time.time()


def _batch_params(station: str, records: Sequence, model_path: str, thresholds: Thresholds, source: str) -> list:
    rows = {archive_local_id(r): r for r in records}  # one id once per statement (ON CONFLICT needs it)
    ordered = list(rows.values())
    n = len(ordered)
    return [
        station, list(rows),
        [_epoch(r.inspected_at) for r in ordered], [_text(r.run_id) for r in ordered], [_text(source)] * n,
        [_text(r.path) for r in ordered], [model_path] * n, [r.model_sha256 or None for r in ordered],
        [r.threshold for r in ordered], [r.verdict for r in ordered], [r.p_anomaly for r in ordered],
        [_json(r.boxes or "[]") for r in ordered], [_text(r.error) for r in ordered],
        [thresholds.box] * n, [thresholds.min_area_fraction] * n,
    ]  # fmt: skip


def push_archive(
    url: str | CentralTarget, records: Sequence, *, model_path: str, thresholds: Thresholds, source: str,
    station: str | None = None, batch_size: int = BATCH_SIZE,
) -> SyncReport:  # fmt: skip
    """Insert the archive records the central store lacks (one transaction per batch); what was sent and skipped."""
    if batch_size < 1:
        raise ValueError(f"batch size must be 1 or more, not {batch_size}")
    target = url if isinstance(url, CentralTarget) else CentralTarget.parse(url)
    station = check_station_id(station or archive_station_id())
    psycopg = psycopg_module()
    sql = insert_sql(COLUMNS)
    sent = already = 0
    conn = target.connect()
    try:
        _set_statement_timeout(conn)
        prepare_central(conn, target.display)
        for start in range(0, len(records), batch_size):
            params = _batch_params(station, records[start:start + batch_size], model_path, thresholds, source)
            with conn.transaction():
                inserted = conn.execute(sql, params).rowcount
            sent += inserted
            already += len(params[1]) - inserted
    except psycopg.OperationalError as exc:
        raise CentralUnreachable(f"lost the central store {target.display}: {target.mask(one_line(exc))}") from None
    except psycopg.Error as exc:
        raise CentralError(f"the central store {target.display} refused: {target.mask(one_line(exc))}") from None
    finally:
        conn.close()
    return SyncReport(target.display, station, sent, already, 0)
