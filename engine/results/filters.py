"""Which rows of the results log to list, count or export, and in what order: one value instead of keywords everywhere."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from engine.types import Verdict


def _timestamp(value: float | datetime | None) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else value


@dataclass(frozen=True)
class ResultFilter:
    """Rows of one verdict, in [since, until), of one source (exactly, or containing a text), of one run,
    written up to row id `through_id` (so a listing being paged does not shift while new rows arrive);
    None matches all."""

    verdict: Verdict | None = None
    since: float | datetime | None = None
    until: float | datetime | None = None
    source_contains: str | None = None
    run_id: str | None = None
    source: str | None = None
    through_id: int | None = None

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
        if self.source is not None:
            clauses.append("source = ?")
            params.append(self.source)
        if self.run_id is not None:
            clauses.append("run_id = ?")
            params.append(self.run_id)
        if self.through_id is not None:
            clauses.append("id <= ?")
            params.append(int(self.through_id))
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


class SortKey(Enum):
    """What the results log can be sorted by; only these reach the SQL."""

    TIME = "time"
    VERDICT = "verdict"
    P_ANOMALY = "p_anomaly"
    BOXES = "boxes"
    SOURCE = "source"
    ITEM = "item"
    ERROR = "error"
    RUN = "run_id"
    MODEL = "model_path"


_SORT_SQL = {SortKey.BOXES: "json_array_length(boxes)"}  # the number of boxes, not their JSON text


@dataclass(frozen=True)
class ResultOrder:
    """A sort of the results log: one key, either way, ties broken by row id; empty values (an error's p) last."""

    key: SortKey = SortKey.TIME
    descending: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.key, SortKey):
            try:
                object.__setattr__(self, "key", SortKey(self.key))
            except ValueError:
                allowed = ", ".join(k.value for k in SortKey)
                raise ValueError(f"sort key must be one of {allowed}, not {self.key!r}") from None

    def sql(self) -> str:
        """The ORDER BY clause."""
        way = "DESC" if self.descending else "ASC"
        return f" ORDER BY {_SORT_SQL.get(self.key, self.key.value)} {way} NULLS LAST, id {way}"


ALL = ResultFilter()
NEWEST_FIRST = ResultOrder()
OLDEST_FIRST = ResultOrder(SortKey.TIME, descending=False)
