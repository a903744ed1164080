"""Which rows of the results log to list, count or export: one value instead of the same keywords everywhere."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.types import Verdict


def _timestamp(value: float | datetime | None) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else value


@dataclass(frozen=True)
class ResultFilter:
    """Rows of one verdict, in [since, until), whose source contains a text, of one run; None matches all."""

    verdict: Verdict | None = None
    since: float | datetime | None = None
    until: float | datetime | None = None
    source_contains: str | None = None
    run_id: str | None = None

    def __post_init__(self) -> None:
        if self.verdict is not None:
            object.__setattr__(self, "verdict", Verdict.parse(self.verdict))

    def where(self) -> tuple[str, list]:
        """SQL WHERE clause (possibly empty) and its parameters."""
        clauses: list[str] = []
        params: list = []
        if self.verdict is not None:
            clauses.append("verdict = ?")
            params.append(self.verdict.value)
        if self.since is not None:
            clauses.append("time >= ?")
            params.append(_timestamp(self.since))
        if self.until is not None:
            clauses.append("time < ?")
            params.append(_timestamp(self.until))
        if self.source_contains:
            clauses.append("instr(lower(source), lower(?)) > 0")
            params.append(self.source_contains)
        if self.run_id is not None:
            clauses.append("run_id = ?")
            params.append(self.run_id)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


ALL = ResultFilter()
