"""The archive review job: inspect every listed file once, in-process or on Ray, resumable, one output file at the end.

Both ways judge with the same Inspector rules and thresholds as `predict` (engine.jobs.review); only where the
model runs differs. Results go to OUT.parts as they come (whole parts only), so a killed run loses at most the
last part; a rerun skips every file its parts or a finished OUT list, then writes OUT in input order.
"""
from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.archive.rows import (
    ArchiveError,
    ArchiveRecord,
    PartWriter,
    check_same_run,
    counts,
    error_record,
    output_format,
    parts_folder,
    read_output,
    read_parts,
    record_of,
    write_output,
)
from engine.csvfile import storable_text
from engine.jobs.review import expand_inputs, review_run_id
from engine.types import Verdict

PART_ROWS = 512  # a part is written after this many new rows...
PART_SECONDS = 10.0  # ...or this long after the last one, whichever comes first

# Inspects the given paths and yields their records in batches (any order); run_id names the run.
RecordSource = Callable[[Sequence[str], str], Iterator[Sequence[ArchiveRecord]]]


@dataclass(frozen=True)
class ArchiveStarted:
    """The inputs are listed: how many files, how many an earlier run already did, and how they will be inspected."""

    total: int
    resumed: int
    todo: int
    run_id: str
    how: str


@dataclass(frozen=True)
class ArchiveProgress:
    """More files were inspected."""

    new: int
    inspected: int
    todo: int


@dataclass(frozen=True)
class ArchiveDone:
    """The output is written: rows per verdict, how many were inspected now and reused, and the inspection speed."""

    out: str
    counts: dict = field(default_factory=dict)  # Verdict -> rows
    inspected: int = 0
    resumed: int = 0
    seconds: float = 0.0  # from the first file handed to the source to the last result

    @property
    def images_per_second(self) -> float:
        return self.inspected / self.seconds if self.seconds > 0 else 0.0


def check_output(out: str | os.PathLike) -> Path:
    """The output path, refused in one line when its format or folder cannot be written (before any inspection)."""
    out = Path(out)
    if output_format(out) == "parquet":
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise ArchiveError("writing .parquet needs pyarrow (pip install 'visinspect[cluster]'); or write .csv") from None
    if not out.parent.is_dir():
        raise ArchiveError(f"folder {out.parent} does not exist")
    return out


def in_process(inspector, *, batch_size: int = 8, stop: threading.Event | None = None) -> RecordSource:
    """The engine's own batch inspection (decode threads one batch ahead of the model), as a record source."""

    def run(paths: Sequence[str], run_id: str) -> Iterator[Sequence[ArchiveRecord]]:
        for result in inspector.inspect_files(paths, batch_size=batch_size, stop=stop):
            yield (record_of(result.path, result.inspection, result.error, inspector.ref, run_id),)

    return run


def archive_job(
    inputs: Sequence[str | os.PathLike],
    inspector,
    out: str | os.PathLike,
    *,
    source: RecordSource,
    how: str = "in-process",
    recursive: bool = True,
    part_rows: int = PART_ROWS,
    stop: threading.Event,
) -> Iterator[ArchiveStarted | ArchiveProgress | ArchiveDone]:
    """Inspect every file the inputs name that no earlier run of this output did; write out in input order.

    inspector gives the model file and thresholds the rows are judged by (source must use the same ones).
    Stopped early, the finished parts stay in OUT.parts for the next run and no ArchiveDone comes.
    """
    out = check_output(out)
    model, thresholds = inspector.ref, inspector.thresholds
    parts = parts_folder(out)
    earlier = read_output(out) + read_parts(parts)
    check_same_run(earlier, model, thresholds, out if out.exists() else parts)
    done: dict[str, ArchiveRecord] = {r.path: r for r in earlier}
    listed = expand_inputs(inputs, recursive=recursive)
    run_id = review_run_id(model, inputs, recursive=recursive)
    todo = [p for p, problem in listed if problem is None and storable_text(p) not in done]
    resumed = sum(storable_text(p) in done for p, _ in listed)
    yield ArchiveStarted(len(listed), resumed, len(todo), run_id, how)

    writer = PartWriter(parts)
    pending: list[ArchiveRecord] = []
    inspected = 0
    t0 = last_part = time.perf_counter()
    try:
        for batch in source(todo, run_id) if todo else ():
            pending.extend(batch)
            inspected += len(batch)
            yield ArchiveProgress(len(batch), inspected, len(todo))
            now = time.perf_counter()
            if len(pending) >= part_rows or now - last_part >= PART_SECONDS:
                writer.write(pending)
                pending, last_part = [], now
            if stop.is_set():
                return
    finally:
        writer.write(pending)  # what was inspected is kept, also when the run is stopped or fails
    seconds = time.perf_counter() - t0
    if stop.is_set():
        return
    for r in read_parts(parts):
        done[r.path] = r
    rows = []
    for path, problem in listed:
        key = storable_text(path)
        if key not in done and problem is None:
            raise ArchiveError(f"{path}: no result came back for this file; run again to inspect it")
        rows.append(done.get(key) or error_record(path, problem, model, run_id))
    write_output(out, rows)
    shutil.rmtree(parts, ignore_errors=True)
    yield ArchiveDone(str(out), counts(rows), inspected, resumed, seconds)


def summary(done: ArchiveDone) -> str:
    """One line: files, verdicts, reused rows, speed and where the output is."""
    c = {v: done.counts.get(v, 0) for v in Verdict}
    speed = f" in {done.seconds:.1f} s, {done.images_per_second:.1f} img/s" if done.inspected else ""
    others = "".join(f", {c[v]} {v.value}" for v in (Verdict.REVIEW, Verdict.NOT_PRODUCT) if c[v])
    return (f"{sum(c.values())} files: {c[Verdict.GOOD]} GOOD, {c[Verdict.ANOMALY]} ANOMALY, {c[Verdict.ERROR]} ERROR{others}; "
            f"{done.inspected} inspected now{speed}" + (f", {done.resumed} from the earlier run" if done.resumed else "")
            + f"; results in {done.out}")  # fmt: skip
