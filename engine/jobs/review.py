"""The review job: inspect files and folders in batch, log every result, resume a killed run, report every input.

`visinspect predict` and the station's Review tab both run `review_job`, so the same files, model and
threshold give the same rows. A run is keyed by the model file and the inputs (`review_run_id`), not
by the threshold: what an inspection produced that does not depend on the decision threshold (p and
the heatmap's hot regions) is reused when the run is resumed, and the verdict and boxes are judged
again at the thresholds in force. An ERROR is a result too: it is not repeated unless retry_errors.
Rows come out in input order, reused and new alike.
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.csvfile import storable_text
from engine.data.walk import list_images
from engine.errors import SourceError
from engine.results.filters import ResultFilter
from engine.results.log import ResultRow, ResultsLog, resumable_run_id
from engine.thresholds import Thresholds
from engine.types import Box, HeatScale, ModelRef, Verdict

CHUNK_SECONDS = 0.1  # rows are handed on at least this often (and at most CHUNK_ROWS at a time)
CHUNK_ROWS = 256
FINAL_FLUSH_S = 15.0  # how long a command keeps retrying results still waiting for the log at the end
CSV_COLUMNS = ("path", "verdict", "p_anomaly", "threshold", "boxes", "error", "model_sha256", "run_id", "inspected_at")
EXPORT_COLUMNS = (*CSV_COLUMNS, "rows_exported")  # the Review tab's export also says which rows it holds


def error_reason(path: str, message: str) -> str:
    """The reason of an error message without the file's path or name in front (the path is its own column)."""
    for prefix in (path, os.path.basename(path)):
        if prefix and message.startswith(prefix + ": "):
            return message[len(prefix) + 2 :]
    return message


def same_model(a: ModelRef | None, b: ModelRef | None) -> bool:
    """True when both name the same model file (ModelRef.same_model); False when either is unknown."""
    return a is not None and a.same_model(b)


@dataclass(frozen=True)
class ReviewRow:
    """One input of a review: p(anomaly) and its hot regions, or the reason it could not be inspected.

    The verdict and boxes are not stored: they follow from p and the regions at any decision threshold.
    """

    path: str
    p_anomaly: float | None
    regions: tuple[Box, ...]
    thresholds: Thresholds | None  # what the regions were found with (None for an error)
    error: str | None = None
    model: ModelRef | None = None
    inspected_at: float = 0.0  # time.time() of the inspection (or of the earlier run's, when reused)
    reused: bool = False  # taken from an earlier run of this review in the results log
    ood_score: float | None = None  # the out-of-distribution guard's distance, when the model has one

    @property
    def verdict(self) -> Verdict:
        if self.thresholds is None or self.p_anomaly is None:
            return Verdict.ERROR
        return self.thresholds.verdict(self.p_anomaly, ood_score=self.ood_score)

    @property
    def boxes(self) -> tuple[Box, ...]:
        return self.regions if self.verdict is Verdict.ANOMALY else ()

    def at(self, decision: float) -> ReviewRow:
        """This row judged at another decision threshold (errors stay errors)."""
        return self if self.thresholds is None else replace(self, thresholds=self.thresholds.with_decision(decision))

    def csv_cells(self, run_id: str) -> tuple:
        """The cells of CSV_COLUMNS for this row."""
        at = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.inspected_at)) if self.inspected_at else ""
        return (
            self.path, self.verdict.value,
            "" if self.p_anomaly is None else f"{self.p_anomaly:.6f}",
            "" if self.thresholds is None else f"{self.thresholds.decision:.6f}",
            "" if self.verdict is Verdict.ERROR else json.dumps([b.as_list() for b in self.boxes]),
            self.error, self.model.sha256 if self.model else "", run_id, at,
        )  # fmt: skip


@dataclass(frozen=True)
class ReviewStarted:
    """The inputs are listed: how many files, how many an earlier run of this review already did, the run key."""

    total: int
    resumed: int
    run_id: str
    thresholds: Thresholds
    rejudged: int = 0  # resumed rows whose verdict was given at another decision threshold before


@dataclass(frozen=True)
class ReviewChunk:
    """Rows since the last chunk, in input order, and how far the review is."""

    rows: tuple[ReviewRow, ...]
    done: int
    total: int


@dataclass(frozen=True)
class LogTrouble:
    """The results log cannot be written now; rows wait in memory and are written when it can be."""

    message: str


@dataclass(frozen=True)
class ReviewDone:
    """Every input is reported: counts per verdict, how many were reused, and results the log could not keep."""

    counts: dict = field(default_factory=dict)  # Verdict -> rows
    inspected: int = 0
    reused: int = 0
    seconds: float = 0.0
    lost: int = 0  # results that could not be written to the results log
    frames_saved: int = 0  # anomaly frames this run saved beside the results log (save_frames)
    frame_bytes: int = 0  # the disk space they take


def review_run_id(model: ModelRef, inputs: Sequence[str | os.PathLike], *, recursive: bool = True) -> str:
    """The one run key: the same model file over the same inputs is the same review, whatever the threshold."""
    scope = "recursive" if recursive else "top-level"
    return resumable_run_id("review", [model.sha256, scope, *sorted(os.path.abspath(p) for p in inputs)])


def expand_inputs(inputs: Sequence[str | os.PathLike], *, recursive: bool = True) -> list[tuple[str, str | None]]:
    """Files and folders -> (absolute image path, None), or (input, why it cannot be used), in the order given."""
    out: list[tuple[str, str | None]] = []
    for raw in inputs:
        path = Path(os.path.abspath(raw))
        if path.is_dir():
            try:
                out.extend((str(p), None) for p in list_images(path, recursive=recursive))
            except SourceError as exc:
                out.append((str(path), str(exc)))
        elif path.exists() or path.is_symlink():
            out.append((str(path), None))
        else:
            out.append((str(path), f"{path}: file not found"))
    return out


def _reusable(row: ResultRow, path: str, thresholds: Thresholds, retry_errors: bool) -> ReviewRow | None:
    """The earlier run's result for path as a row at thresholds, or None when path must be inspected again."""
    try:
        changed = os.stat(path).st_mtime > row.time
    except OSError:
        changed = row.verdict is not Verdict.ERROR  # still missing: an earlier error stands
    if changed:
        return None
    if row.verdict is Verdict.ERROR:
        if retry_errors:
            return None
        return ReviewRow(path, None, (), None, error_reason(path, row.error or ""), row.model, row.time, reused=True)
    logged = row.thresholds
    if row.regions is None or logged is None or not logged.same_regions(thresholds) or row.p_anomaly is None \
            or row.verdict is Verdict.NOT_PRODUCT:  # the guard's distance is not logged: measure it again
        return None  # logged before regions were kept, or with another box rule: inspect again
    return ReviewRow(path, row.p_anomaly, row.regions, thresholds, None, row.model, row.time, reused=True)


def review_job(
    inputs: Sequence[str | os.PathLike],
    inspector,
    *,
    results: ResultsLog | None = None,
    source: str = "",
    resume: bool = True,
    retry_errors: bool = False,
    recursive: bool = True,
    batch_size: int = 8,
    save_frames: bool = False,
    keep_images: bool = False,
    final_flush_s: float = 0.0,
    on_image=None,
    stop: threading.Event,
) -> Iterator[ReviewStarted | ReviewChunk | LogTrouble | ReviewDone]:
    """Inspect every image the inputs name, logging each new result; yields the rows in input order.

    save_frames: anomaly frames are saved with their log rows. on_image(path, image, inspection) gets the
    decoded image of each newly inspected file (e.g. to draw an overlay; keep_images must be set).
    final_flush_s: how long to keep retrying results the log could not take yet before ReviewDone.
    """
    t0, started = time.perf_counter(), time.time()
    thresholds = inspector.thresholds
    model = inspector.ref
    listed = expand_inputs(inputs, recursive=recursive)
    run_id = review_run_id(model, inputs, recursive=recursive)
    earlier = results.finished_rows(run_id) if resume and results is not None else {}
    reused: dict[int, ReviewRow] = {}
    rejudged = 0
    for i, (path, _problem) in enumerate(listed):
        logged = earlier.get(storable_text(path))
        row = None if logged is None else _reusable(logged, path, thresholds, retry_errors)
        if row is not None:
            reused[i] = row
            rejudged += row.verdict is not Verdict.ERROR and logged.threshold != thresholds.decision
    yield ReviewStarted(len(listed), len(reused), run_id, thresholds, rejudged)

    label = source or "review"
    todo = [path for i, (path, problem) in enumerate(listed) if i not in reused and problem is None]
    fresh = inspector.inspect_files(
        todo, batch_size=batch_size, keep_images=keep_images or save_frames, stop=stop, thresholds=thresholds
    )
    try:
        counts: Counter = Counter()
        chunk: list[ReviewRow] = []
        last = time.monotonic()
        warned = False
        n_inspected = 0
        for i, (path, problem) in enumerate(listed):
            if stop.is_set():
                return
            if i in reused:
                row = reused[i]
            elif problem is not None:
                row = ReviewRow(path, None, (), None, error_reason(path, problem), model, time.time())
                if results is not None:
                    results.log_error(run_id=run_id, source=label, item=path, model=model, message=row.error)
            else:
                result = next(fresh, None)
                if result is None:  # stopped while inspecting
                    return
                n_inspected += 1
                row = _logged(result, run_id, label, results, model, save_frames)
                if on_image is not None and result.image is not None and result.inspection is not None:
                    on_image(result.path, result.image, result.inspection)
            counts[row.verdict] += 1
            chunk.append(row)
            if results is not None and results.last_error and not warned:
                warned = True  # once per run: rows wait in memory and are written when the database frees up
                yield LogTrouble(results.last_error)
            now = time.monotonic()
            if now - last >= CHUNK_SECONDS or len(chunk) >= CHUNK_ROWS:
                yield ReviewChunk(tuple(chunk), i + 1, len(listed))
                chunk, last = [], now
        if chunk or not listed:
            yield ReviewChunk(tuple(chunk), len(listed), len(listed))
        lost = _flush(results, final_flush_s) if results is not None else 0
        frames = _frames_saved(results, run_id, started) if results is not None and save_frames else (0, 0)
        yield ReviewDone(dict(counts), n_inspected, len(reused), time.perf_counter() - t0, lost, *frames)
    finally:
        fresh.close()  # its decode threads end now, also when the review is stopped


def _logged(result, run_id: str, source: str, results: ResultsLog | None, model: ModelRef, save_frames: bool) -> ReviewRow:
    """A FileResult as a row, logged."""
    insp = result.inspection
    if insp is None:
        reason = error_reason(result.path, result.error or "could not be inspected")
        if results is not None:
            results.log_error(run_id=run_id, source=source, item=result.path, model=model, message=reason)
        return ReviewRow(result.path, None, (), None, reason, model, time.time())
    if results is not None:
        results.log_inspection(
            run_id=run_id, source=source, item=result.path, inspection=insp, image=result.image if save_frames else None
        )
    return ReviewRow(result.path, insp.p_anomaly, insp.regions, insp.thresholds, None, insp.model, time.time(), ood_score=insp.ood_score)


def _frames_saved(results: ResultsLog, run_id: str, since: float) -> tuple[int, int]:
    """How many anomaly frames this run saved and their bytes on disk."""
    count = size = 0
    for row in results.stream(ResultFilter(Verdict.ANOMALY, since=since, run_id=run_id)):
        if row.frame_path:
            with contextlib.suppress(OSError):
                size += (results.path.parent / row.frame_path).stat().st_size
                count += 1
    return count, size


def _flush(results: ResultsLog, seconds: float) -> int:
    """Retry writing waiting results for up to seconds; how many are still waiting."""
    deadline = time.monotonic() + seconds
    while results.pending_count and not results.flush() and time.monotonic() < deadline:
        time.sleep(0.5)
    return results.pending_count


@dataclass(frozen=True)
class RowsExported:
    """A CSV of review rows was written."""

    path: str
    rows: int
    selection: str = ""


def export_rows_job(path: str | os.PathLike, rows: Sequence[ReviewRow], run_id: str, *, selection: str = "",
                    stop: threading.Event):  # fmt: skip
    """Write review rows (as judged now) to a CSV file through the one CSV writer, each saying which rows the
    file holds (selection, e.g. "all 7 rows" or "3 of 7 rows: verdict ANOMALY"); yields RowsExported."""
    from engine.csvfile import open_csv

    with open_csv(path, EXPORT_COLUMNS) as writer:
        for row in rows:
            writer.writerow((*row.csv_cells(run_id), selection))
    yield RowsExported(str(path), len(rows), selection)


@dataclass(frozen=True, eq=False)
class Shown:
    """One file read and inspected again, to show it with its heatmap."""

    path: str
    image: object
    inspection: object


def show_file_job(path: str, inspector, *, stop: threading.Event):
    """Read one file and inspect it again at the inspector's thresholds, for display with its heatmap."""
    from engine.data.decode import read_image

    image = read_image(path)
    yield Shown(path, image, inspector.inspect([image])[0])


@dataclass(frozen=True)
class Annotated:
    """One annotated copy written (done of total)."""

    done: int
    total: int
    path: str


def annotate_job(paths: Sequence[str], inspector, out_dir: str, *, root: str | None = None, opacity: float = 0.4,
                 colormap: int | None = None, heat_scale: HeatScale = HeatScale.ABSOLUTE, stop: threading.Event):  # fmt: skip
    """Write copies of paths with heatmap and labelled boxes drawn in (names keep their sub-folders); yield progress."""
    from engine.data.decode import read_image
    from engine.render import OverlayWriter

    writer = OverlayWriter(out_dir, root=root, opacity=opacity, heat_scale=heat_scale,
                           **({} if colormap is None else {"colormap": colormap}))  # fmt: skip
    for i, path in enumerate(paths, start=1):
        if stop.is_set():
            return
        image = read_image(path)
        yield Annotated(i, len(paths), str(writer.write(path, image, inspector.inspect([image])[0])))
