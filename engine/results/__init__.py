"""The results log: every verdict with its model, threshold and boxes, queryable and exportable."""

from engine.results.log import (
    CSV_COLUMNS,
    VERDICTS,
    ResultRow,
    ResultsLog,
    ResultsLogError,
    default_results_path,
    new_run_id,
    resumable_run_id,
)

__all__ = [
    "CSV_COLUMNS",
    "VERDICTS",
    "ResultRow",
    "ResultsLog",
    "ResultsLogError",
    "default_results_path",
    "new_run_id",
    "resumable_run_id",
]
