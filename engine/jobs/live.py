"""The live job: frames from a source -> inspections -> the results log, one verdict per frame, with source events.

The station runs it in its live worker; `serve` (headless) will run the same generator. The model can be
swapped while it runs (InspectorSlot): the next frame is judged by the new one, and every result
records the model that gave it.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.display import DisplayFeed
from engine.errors import SourceError
from engine.inference.live import LiveResult, live_inspect
from engine.inference.mailbox import FrameGate
from engine.jobs.line import LinePresence, publish_live, triggered_job
from engine.jobs.line_feeds import current, with_roi
from engine.lineio.hub import LineHub
from engine.results.log import ResultsLog
from engine.sources import FrameSource, ImageFilesSource, SourceEvent, open_source

SourceSpec = str | list | FrameSource  # a settings string, a list of image files, or a ready FrameSource


@dataclass(frozen=True)
class RunOpened:
    """The live run's source is open; description is the line to show for it."""

    description: str
    is_live: bool


def describe_spec(spec: SourceSpec) -> str:
    """A short label for a source before it is opened."""
    if isinstance(spec, list):
        return f"image {Path(spec[0]).name}" if len(spec) == 1 else f"{len(spec)} image files"
    if isinstance(spec, str):
        return spec
    return getattr(spec, "description", type(spec).__name__)


def make_source(spec: SourceSpec, *, loop: bool, start_at: int = 0) -> FrameSource:
    """The FrameSource a spec names (unopened), from frame start_at where it can seek; SourceError says what is accepted."""
    if isinstance(spec, list):
        if not spec:
            raise SourceError("no image files chosen")
        source = ImageFilesSource(spec, loop=loop)
    elif isinstance(spec, str):
        source = open_source(spec, loop=loop)
    else:
        source = spec
    if start_at and hasattr(source, "start_at"):
        source.start_at = start_at
    return source


class InspectorSlot:
    """The model a live run uses and the log run its results go to, swappable while the run goes on.

    A newly loaded model takes over from the next frame, under a new run id: one run, one model.
    """

    def __init__(self, inspector, run_id: str = "") -> None:  # inspector None: a run that fails before any frame
        self.current = inspector
        self.run_id = run_id
        self._runs = {} if inspector is None else {inspector.ref.sha256: run_id}

    def set(self, inspector, run_id: str | None = None) -> None:
        """Use this inspector (and log under run_id, when given) from the next frame on."""
        if run_id:
            self._runs[inspector.ref.sha256] = run_id
            self.run_id = run_id
        self.current = inspector

    def run_of(self, inspection) -> str:
        """The run id the model that gave this inspection logs under (a frame judged just before a swap keeps its run)."""
        return self._runs.get(inspection.model.sha256, self.run_id)

    @property
    def device(self):
        """The device the current model runs on (the live loop sizes its parallelism by it)."""
        return getattr(self.current, "device", None)

    def inspect(self, images):
        """Inspect with whichever model is current (called on the live loop's inspecting threads)."""
        return self.current.inspect(images)


def live_job(
    spec: SourceSpec,
    slot: InspectorSlot,
    results: ResultsLog | None,
    *,
    loop: bool = False,
    start_at: int = 0,
    gate: FrameGate | None = None,
    max_fps: float | None = None,
    stream_options: dict | None = None,
    display: DisplayFeed | None = None,
    stop: threading.Event,
    hub: LineHub | None = None,
    triggered: bool = False,
    roi: tuple[int, int, int, int] | Callable[[], tuple[int, int, int, int] | None] | None = None,
    recipe: str | Callable[[], str | None] | None = None,
) -> Iterator[RunOpened | LiveResult | SourceEvent]:
    """Open the source, inspect frames live, log every verdict (anomaly frames saved) and unreadable file; yield them.

    Rows go to the slot's run id as it is when each frame is judged; start_at skips a file source's first frames.
    Line mode (engine.jobs.line): with a hub every result is also published to the PLC; triggered inspects one frame
    per hub trigger instead of every frame; roi (x, y, w, h) crops each frame before inspection; recipe is logged
    with each row (roi and recipe may be callables giving the current one).
    display (the window's) picks the results that carry the picture to show, made beside the model.
    """
    if triggered:
        yield from triggered_job(spec, slot, results, hub=hub, roi=roi, recipe=recipe, loop=loop, start_at=start_at,
                                 stream_options=stream_options, stop=stop)  # fmt: skip
        return
    source = with_roi(make_source(spec, loop=loop, start_at=start_at), roi)
    opened = False
    with LinePresence(hub) as presence:
        for item in live_inspect(source, slot, stop=stop, gate=gate, max_fps=max_fps, display=display, **(stream_options or {})):
            if not opened:
                opened = True
                presence.ready(True)
                yield RunOpened(source.description, source.is_live)
            if hub is not None and isinstance(item, LiveResult):
                publish_live(hub, item)
            elif hub is not None and isinstance(item, SourceEvent) and item.kind == "file_error":
                hub.publish_error(item.message, model_sha256=slot.current.ref.sha256)
            if results is not None and isinstance(item, LiveResult):
                frame = item.frame
                results.log_inspection(
                    run_id=slot.run_of(item.inspection), source=source.description, item=frame.path or frame.index, inspection=item.inspection,
                    image=frame.image, encoded=frame.encoded, recipe=current(recipe),
                )  # fmt: skip
            elif results is not None and isinstance(item, SourceEvent) and item.kind == "file_error":
                results.log_error(
                    run_id=slot.run_id, source=source.description, item=item.path or item.index or "", model=slot.current.ref,
                    message=item.message, recipe=current(recipe),
                )  # fmt: skip
            yield item
