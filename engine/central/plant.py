"""Reading the plant's results back from the central store: every station's rows, filtered by station and recipe.

History can list these as it lists the local log: each PlantRow carries a ResultRow (its id is the station's local
id) with the station and recipe beside it. Blocking calls: run them off the GUI thread.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.central.errors import CentralError
from engine.central.schema import check_version, current_version
from engine.central.target import CentralTarget, one_line, psycopg_module
from engine.results.schema import ResultRow
from engine.types import Box, Verdict

_SELECT = (
    "SELECT station_id, recipe, part_id, local_id, extract(epoch FROM time), run_id, source, item, model_path, "
    "model_hash, threshold, verdict, p_anomaly, boxes, error, frame_path, regions, box_threshold, min_area FROM results"
)


def _timestamp(value: float | datetime | None) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else value


@dataclass(frozen=True)
class PlantFilter:
    """Rows of one station, one recipe, one verdict, in [since, until), that had arrived by `arrived_by`; None matches all.

    arrived_by (the server's now() when a listing started, see PlantReader.now) keeps later pages of a listing from
    shifting while stations go on sending.
    """

    station: str | None = None
    recipe: str | None = None
    verdict: Verdict | None = None
    since: float | datetime | None = None
    until: float | datetime | None = None
    arrived_by: datetime | None = None

    def __post_init__(self) -> None:
        if self.verdict is not None:
            object.__setattr__(self, "verdict", Verdict.parse(self.verdict))

    def where(self) -> tuple[str, list]:
        """SQL WHERE clause (possibly empty) and its parameters."""
        clauses: list[str] = []
        params: list = []
        for column, value in (("station_id", self.station), ("recipe", self.recipe)):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        if self.verdict is not None:
            clauses.append("verdict = %s")
            params.append(self.verdict.value)
        if self.since is not None:
            clauses.append("time >= to_timestamp(%s)")
            params.append(_timestamp(self.since))
        if self.until is not None:
            clauses.append("time < to_timestamp(%s)")
            params.append(_timestamp(self.until))
        if self.arrived_by is not None:
            clauses.append("synced_at <= %s")
            params.append(self.arrived_by)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


@dataclass(frozen=True)
class PlantRow:
    """One inspection of one station, as the central store holds it."""

    station_id: str
    recipe: str | None
    part_id: str | None
    result: ResultRow  # result.id is the station's local id; result.frame_path as the station sent it
    verdict: str  # as the table holds it: also one a newer VisInspect at another station wrote (result.verdict: ERROR)

    @property
    def known_verdict(self) -> Verdict | None:
        """The verdict, when this VisInspect knows it."""
        return _verdict(self.verdict)


def _verdict(text: str) -> Verdict | None:
    try:
        return Verdict(text)
    except ValueError:
        return None


def _boxes(value) -> tuple[Box, ...] | None:
    return None if value is None else tuple(Box.from_list(b) for b in value)


def _row(raw: tuple) -> PlantRow:
    (station, recipe, part_id, local_id, when, run_id, source, item, model_path, model_hash, threshold, verdict,
     p_anomaly, boxes, error, frame_path, regions, box_threshold, min_area) = raw  # fmt: skip
    known = _verdict(verdict)
    if known is None:
        error = f"verdict {verdict!r} is unknown to this VisInspect" + (f"; {error}" if error else "")
    result = ResultRow(
        id=local_id, time=float(when), run_id=run_id, source=source, item=item, model_path=model_path,
        model_hash=model_hash, threshold=threshold, verdict=known or Verdict.ERROR, p_anomaly=p_anomaly,
        boxes=_boxes(boxes) or (), error=error, frame_path=frame_path, regions=_boxes(regions),
        box_threshold=box_threshold, min_area=min_area, part_id=part_id, recipe=recipe,
    )  # fmt: skip
    return PlantRow(station, recipe, part_id, result, verdict)


class PlantReader:
    """A read-only view of the central store (newest first, paged); close() when done."""

    def __init__(self, target: CentralTarget | str):
        self.target = target if isinstance(target, CentralTarget) else CentralTarget.parse(target)
        self._conn = self.target.connect()
        self._conn.autocommit = True  # reads only: no transaction held open between pages
        try:
            version = self._run(lambda: current_version(self._conn))
            check_version(version, self.target.display)
            if version == 0:
                raise CentralError(f"the central store {self.target.display} holds no results yet (no station has sent any)")
        except CentralError:
            self.close()
            raise

    def _run(self, call):
        psycopg = psycopg_module()
        try:
            return call()
        except psycopg.Error as exc:
            raise CentralError(f"the central store {self.target.display}: {self.target.mask(one_line(exc))}") from None

    def query(self, where: PlantFilter = PlantFilter(), *, limit: int = 1000, offset: int = 0) -> list[PlantRow]:
        """Matching rows, newest first, `limit` from `offset`."""
        if limit < 1:
            raise ValueError(f"limit must be 1 or more, not {limit}")
        clause, params = where.where()
        sql = f"{_SELECT}{clause} ORDER BY time DESC, station_id, local_id DESC LIMIT %s OFFSET %s"
        return [_row(r) for r in self._run(lambda: self._conn.execute(sql, [*params, limit, max(0, offset)]).fetchall())]

    def count(self, where: PlantFilter = PlantFilter()) -> int:
        clause, params = where.where()
        return self._run(lambda: self._conn.execute(f"SELECT count(*) FROM results{clause}", params).fetchone()[0])

    def now(self) -> datetime:
        """The server's clock (to snapshot a listing with PlantFilter.arrived_by, whatever the station's clock says)."""
        return self._run(lambda: self._conn.execute("SELECT now()").fetchone()[0])

    def stations(self) -> list[str]:
        """Every station that sent results, the most recently active first."""
        sql = "SELECT station_id FROM results GROUP BY station_id ORDER BY max(time) DESC"
        return [r[0] for r in self._run(lambda: self._conn.execute(sql).fetchall())]

    def recipes(self) -> list[str]:
        """Every recipe named in the results, the most recently used first."""
        sql = "SELECT recipe FROM results WHERE recipe IS NOT NULL GROUP BY recipe ORDER BY max(time) DESC"
        return [r[0] for r in self._run(lambda: self._conn.execute(sql).fetchall())]

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> PlantReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
