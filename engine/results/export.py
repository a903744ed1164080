"""Results log rows as CSV, through the one CSV writer every export uses."""
from __future__ import annotations

import json
import os

from engine.csvfile import open_csv
from engine.results.filters import ALL, ResultFilter
from engine.results.log import ResultRow, ResultsLog

CSV_COLUMNS = (
    "time_iso", "run_id", "source", "item", "verdict", "p_anomaly", "threshold",
    "boxes", "error", "model_path", "model_hash", "frame_path",
)  # fmt: skip


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


def csv_cells(row: ResultRow) -> tuple:
    """One log row as the cells of CSV_COLUMNS."""
    return (
        row.time_iso, row.run_id, row.source, row.item, row.verdict.value, _fmt(row.p_anomaly), _fmt(row.threshold),
        json.dumps([b.as_list() for b in row.boxes]), row.error, row.model_path, row.model_hash, row.frame_path,
    )  # fmt: skip


def export_csv(log: ResultsLog, path: str | os.PathLike, where: ResultFilter = ALL) -> int:
    """Write every matching row to a UTF-8 CSV file, oldest first; returns how many were written."""
    written = 0
    with open_csv(path, CSV_COLUMNS) as writer:
        for row in log.stream(where):
            writer.writerow(csv_cells(row))
            written += 1
    return written
