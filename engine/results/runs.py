"""Runs in the results log: their ids, and one summary line per run (when, which source, how many rows)."""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from engine.csvfile import storable_text

_RUN_KIND = re.compile(r"^[A-Za-z0-9_]+$")


def new_run_id(kind: str) -> str:
    """A unique, sortable id for one run, e.g. review-20261125-171300-ab12."""
    if not _RUN_KIND.match(kind):
        raise ValueError(f"run kind must be letters, digits or '_' (e.g. 'review', 'live'), not {kind!r}")
    return f"{kind}-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def resumable_run_id(kind: str, parts: list[str] | tuple[str, ...]) -> str:
    """The same id whenever a run of this kind has the same parts (model, inputs), so a killed run can be resumed."""
    if not _RUN_KIND.match(kind):
        raise ValueError(f"run kind must be letters, digits or '_' (e.g. 'review', 'live'), not {kind!r}")
    key = "\n".join(parts)
    return f"{kind}-" + hashlib.sha1(storable_text(key).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class RunSummary:
    """One run as the log holds it: its first and last row, the source of its newest row, and its counts."""

    run_id: str
    first: float  # seconds since the epoch
    last: float
    source: str
    rows: int
    anomalies: int
    errors: int


# Newest run first; the source is that of each run's newest row.
RUNS_SQL = """SELECT g.run_id, g.first, g.last, r.source, g.n, g.anomalies, g.errors FROM (
    SELECT run_id, min(time) AS first, max(time) AS last, max(id) AS newest, count(*) AS n,
        total(verdict = 'ANOMALY') AS anomalies, total(verdict = 'ERROR') AS errors
    FROM results GROUP BY run_id
) AS g JOIN results AS r ON r.id = g.newest ORDER BY g.last DESC, g.newest DESC"""
# Every source the log holds, most recently used first.
SOURCES_SQL = "SELECT source FROM results GROUP BY source ORDER BY max(time) DESC"


def run_summary(raw: tuple) -> RunSummary:
    run_id, first, last, source, rows, anomalies, errors = raw
    return RunSummary(run_id, first, last, source, rows, int(anomalies), int(errors))
