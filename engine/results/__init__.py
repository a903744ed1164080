"""The results log: every verdict with its model, thresholds and boxes, and every audited change; queryable and exportable."""

from engine.results.audit import AuditEntry, ChangeKind
from engine.results.export import CSV_COLUMNS, export_csv
from engine.results.filters import ALL, NEWEST_FIRST, ResultFilter, ResultOrder, SortKey
from engine.results.log import (
    ResultRow,
    ResultsLog,
    ResultsLogError,
    default_results_path,
    new_run_id,
    resumable_run_id,
)
from engine.results.runs import RunSummary

__all__ = [
    "ALL",
    "CSV_COLUMNS",
    "NEWEST_FIRST",
    "AuditEntry",
    "ChangeKind",
    "ResultFilter",
    "ResultOrder",
    "ResultRow",
    "ResultsLog",
    "ResultsLogError",
    "RunSummary",
    "SortKey",
    "default_results_path",
    "export_csv",
    "new_run_id",
    "resumable_run_id",
]
