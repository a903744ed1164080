"""The results log: every verdict with its model, thresholds and boxes, queryable and exportable."""

from engine.results.export import CSV_COLUMNS, export_csv
from engine.results.filters import ALL, ResultFilter
from engine.results.log import (
    ResultRow,
    ResultsLog,
    ResultsLogError,
    default_results_path,
    new_run_id,
    resumable_run_id,
)

__all__ = [
    "ALL",
    "CSV_COLUMNS",
    "ResultFilter",
    "ResultRow",
    "ResultsLog",
    "ResultsLogError",
    "default_results_path",
    "export_csv",
    "new_run_id",
    "resumable_run_id",
]
