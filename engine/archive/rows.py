"""Archive result rows: one typed record per file, written as crash-safe parts and merged into one CSV or Parquet file.

The columns are predict's CSV columns (engine.jobs.review.CSV_COLUMNS), so an archive CSV and a predict CSV of
the same files hold the same cells. Parts are JSON lines written atomically (temp file, then rename): a run
killed at any moment leaves only whole parts, and a rerun skips every file they list.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.csvfile import open_csv, storable_text
from engine.errors import VisInspectError
from engine.jobs.review import CSV_COLUMNS, ReviewRow, error_reason
from engine.thresholds import Thresholds
from engine.types import Inspection, ModelRef, Verdict

FORMATS = ("parquet", "csv")


class ArchiveError(VisInspectError):
    """The output cannot be written or an earlier run's output does not belong to this run."""


@dataclass(frozen=True)
class ArchiveRecord:
    """One file's result as written: predict's CSV columns, with p and the threshold as numbers."""

    path: str
    verdict: str
    p_anomaly: float | None
    threshold: float | None
    boxes: str  # JSON list of [x0, y0, x1, y1, score(, level)]; "" for an error
    error: str | None
    model_sha256: str
    run_id: str
    inspected_at: str  # local time, ISO 8601 to the second

    def csv_cells(self) -> tuple:
        """The cells of CSV_COLUMNS, formatted as predict formats them."""
        number = lambda v: "" if v is None else f"{v:.6f}"  # noqa: E731
        return (self.path, self.verdict, number(self.p_anomaly), number(self.threshold), self.boxes, self.error,
                self.model_sha256, self.run_id, self.inspected_at)  # fmt: skip


def record_of(path: str, inspection: Inspection | None, error: str | None, model: ModelRef, run_id: str) -> ArchiveRecord:
    """A file's inspection (or the reason it has none) as a record, through the review job's own row rules."""
    now = time.time()
    if inspection is None:
        row = ReviewRow(path, None, (), None, error_reason(path, error or "could not be inspected"), model, now)
    else:
        row = ReviewRow(path, inspection.p_anomaly, inspection.regions, inspection.thresholds, None, inspection.model, now,
                        ood_score=inspection.ood_score)  # fmt: skip
    cells = row.csv_cells(run_id)
    return ArchiveRecord(
        path=storable_text(path), verdict=row.verdict.value, p_anomaly=row.p_anomaly,
        threshold=None if row.thresholds is None else row.thresholds.decision, boxes=cells[4], error=row.error,
        model_sha256=cells[6], run_id=run_id, inspected_at=cells[8],
    )  # fmt: skip


def error_record(path: str, message: str, model: ModelRef, run_id: str) -> ArchiveRecord:
    """A file that could not be inspected."""
    return record_of(path, None, message, model, run_id)


def output_format(out: str | os.PathLike) -> str:
    """'parquet' or 'csv' from the output file's suffix; ValueError naming the allowed ones otherwise."""
    suffix = Path(out).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise ValueError(f"--out must end in .parquet or .csv; got {Path(out).name!r}")
    return suffix


def parts_folder(out: str | os.PathLike) -> Path:
    """Where a run keeps its finished parts until the output file is written: OUT.parts beside it."""
    out = Path(out)
    return out.with_name(out.name + ".parts")


class PartWriter:
    """Writes records in numbered JSON-lines parts, each complete on disk before it is named part-*.jsonl."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._next = 1 + max((int(p.stem.split("-")[1]) for p in folder.glob("part-*.jsonl")), default=0)

    def write(self, records: Sequence[ArchiveRecord]) -> None:
        if not records:
            return
        final = self.folder / f"part-{self._next:06d}.jsonl"
        tmp = self.folder / f".{final.name}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(asdict(r)) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        self._next += 1


def record_from_dict(d: dict) -> ArchiveRecord:
    """A record from a part's JSON, a Parquet row or a CSV row (numbers as text there)."""
    number = lambda v: None if v in (None, "") else float(v)  # noqa: E731
    return ArchiveRecord(
        path=str(d["path"]), verdict=str(d["verdict"]), p_anomaly=number(d.get("p_anomaly")),
        threshold=number(d.get("threshold")), boxes=d.get("boxes") or "", error=d.get("error") or None,
        model_sha256=d.get("model_sha256") or "", run_id=d.get("run_id") or "", inspected_at=d.get("inspected_at") or "",
    )  # fmt: skip


def read_parts(folder: Path) -> list[ArchiveRecord]:
    """Every record of the finished parts in folder (none when it does not exist)."""
    records = []
    for part in sorted(folder.glob("part-*.jsonl")):
        with open(part, encoding="utf-8") as f:
            records.extend(record_from_dict(json.loads(line)) for line in f if line.strip())
    return records


def read_output(out: Path) -> list[ArchiveRecord]:
    """The records of an output file an earlier run finished (none when there is none)."""
    if not out.exists():
        return []
    try:
        if output_format(out) == "csv":
            with open(out, newline="", encoding="utf-8") as f:
                return [record_from_dict(row) for row in csv.DictReader(f)]
        import pyarrow.parquet as pq

        return [record_from_dict(row) for row in pq.read_table(out).to_pylist()]
    except (KeyError, ValueError, OSError) as exc:
        raise ArchiveError(f"{out} exists and is not an archive review output ({exc}); remove it or choose another --out") from None


def check_same_run(records: Iterable[ArchiveRecord], model: ModelRef, thresholds: Thresholds, where: Path) -> None:
    """An earlier run's rows may only be reused by a run of the same model file at the same decision threshold."""
    for r in records:
        if r.model_sha256 and r.model_sha256 != model.sha256:
            raise ArchiveError(f"{where} holds results of another model file ({r.model_sha256[:16]}); "
                               "remove it or choose another --out")  # fmt: skip
        if r.threshold is not None and abs(r.threshold - thresholds.decision) > 1e-6:
            raise ArchiveError(f"{where} holds results at threshold {r.threshold:.6f}, not {thresholds.decision:.6f}; "
                               "remove it or choose another --out")  # fmt: skip


def write_output(out: Path, records: Sequence[ArchiveRecord]) -> None:
    """Write the records to out as CSV or Parquet, atomically (a temp file renamed when complete)."""
    if output_format(out) == "csv":
        with open_csv(out, CSV_COLUMNS) as writer:
            for r in records:
                writer.writerow(r.csv_cells())
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("path", pa.string()), ("verdict", pa.string()), ("p_anomaly", pa.float64()),
                        ("threshold", pa.float64()), ("boxes", pa.string()), ("error", pa.string()),
                        ("model_sha256", pa.string()), ("run_id", pa.string()), ("inspected_at", pa.string())])  # fmt: skip
    table = pa.Table.from_pylist([asdict(r) for r in records], schema=schema)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def counts(records: Iterable[ArchiveRecord]) -> dict[Verdict, int]:
    """Rows per verdict."""
    out = dict.fromkeys(Verdict, 0)
    for r in records:
        out[Verdict(r.verdict)] += 1
    return out
