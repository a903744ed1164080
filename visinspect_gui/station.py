"""The station's controller: the loaded model, the one live run and the results log, behind Qt signals.

Widgets never touch the model or the source: they ask the Station, which runs every slow step
(model load, frame reads, inference, database writes) in a Worker and reports back by signals.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from engine.errors import SourceError
from engine.inference.live import FrameGate, LiveResult, live_inspect
from engine.results import ResultsLog, new_run_id
from engine.sources import FrameSource, ImageFilesSource, SourceEvent, open_source
from visinspect_gui.workers import Worker

log = logging.getLogger(__name__)

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


def make_source(spec: SourceSpec, *, loop: bool) -> FrameSource:
    """The FrameSource a spec names (unopened); SourceError says what is accepted."""
    if isinstance(spec, list):
        if not spec:
            raise SourceError("no image files chosen")
        return ImageFilesSource(spec, loop=loop)
    if isinstance(spec, str):
        return open_source(spec, loop=loop)
    return spec


def _load_inspector(path: str, device: str, precision: str = "auto", *, stop):
    """Worker body: load a model file and warm it up with one blank image, so the first frame is not slow."""
    from engine.inference.inspector import Inspector  # torch loads here, off the GUI thread

    inspector = Inspector.from_file(path, device=device, precision=precision)
    size = inspector.meta.input_size
    inspector.inspect([np.zeros((size, size, 3), np.uint8)])
    yield inspector


class InspectorSlot:
    """The model a live run uses, swappable while it runs: a newly loaded model takes over from the next frame."""

    def __init__(self, inspector) -> None:
        self.current = inspector
        self._paths = {inspector.model_id: inspector.path}

    def set(self, inspector) -> None:
        """Use this inspector from the next frame on."""
        self._paths[inspector.model_id] = inspector.path
        self.current = inspector

    def inspect(self, images):
        """Inspect with whichever model is current (called on the live worker's thread)."""
        return self.current.inspect(images)

    def path_of(self, model_id: str):
        """The file of the model that produced an inspection (by its model_id)."""
        return self._paths.get(model_id, self.current.path)


def _run_live(spec, loop, slot: InspectorSlot, results: ResultsLog, run_id: str, gate, max_fps, stream_options, *, stop):
    """Worker body: open the source, inspect frames live, log every verdict (anomaly frames saved), yield results."""
    source = make_source(spec, loop=loop)
    opened = False
    for item in live_inspect(source, slot, stop=stop, gate=gate, max_fps=max_fps, **stream_options):
        if not opened:
            opened = True
            yield RunOpened(source.description, source.is_live)
        if isinstance(item, LiveResult):
            frame = item.frame
            results.log_inspection(
                run_id=run_id,
                source=source.description,
                item=frame.path or frame.index,
                model_path=slot.path_of(item.inspection.model_id),
                model_hash=item.inspection.model_id,
                inspection=item.inspection,
                image=frame.image,
            )
        elif isinstance(item, SourceEvent) and item.kind == "file_error":
            results.log_error(
                run_id=run_id,
                source=source.description,
                item=item.path or item.index or "",
                model_path=slot.current.path,
                model_hash=slot.current.model_id,
                message=item.message,
            )
        yield item


class Station(QObject):
    """Owns the inspector, the live Worker and the results log; the GUI thread drives it, workers do the work."""

    model_loaded = Signal(object)  # Inspector
    model_failed = Signal(str)
    run_started = Signal(str)  # source description
    run_finished = Signal(str)  # "ended", "stopped" or "failed"
    result_ready = Signal(object)  # LiveResult
    source_event = Signal(object)  # SourceEvent
    failed = Signal(str)  # the live run stopped on an error, in one sentence
    state_changed = Signal(str)  # "idle", "starting", "running", "paused"

    def __init__(self, results: ResultsLog, *, device: str = "auto", precision: str = "auto", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.results = results
        self.device = device
        self.precision = precision
        self.inspector = None
        self.source_description = ""
        self.run_id: str | None = None
        self._live: Worker | None = None
        self._loader: Worker | None = None
        self._gate: FrameGate | None = None
        self._slot: InspectorSlot | None = None
        self._state = "idle"
        self._end_reason = "ended"
        self._retired: set[Worker] = set()  # stopped workers kept alive until their thread has ended
        self.stream_options: dict = {}  # passed to stream_frames (tests shorten the reconnect backoff)

    # -- model ---------------------------------------------------------------------------------

    def load_model(self, path: str | os.PathLike) -> None:
        """Load a model file in a worker; model_loaded or model_failed follows."""
        if self._loader is not None:
            self._retire(self._loader)
        worker = Worker(_load_inspector, str(path), self.device, self.precision)
        worker.event_ready.connect(self._on_model_ready)
        worker.failed.connect(self.model_failed)
        self._loader = worker
        self._track(worker)
        worker.start()

    @property
    def is_loading(self) -> bool:
        """True while a model file is being loaded."""
        return self._loader is not None and self._loader.is_running()

    def _on_model_ready(self, inspector) -> None:
        """Adopt the new model; a live run goes on with it from its next frame."""
        if self.sender() is not self._loader:
            return  # a superseded load
        self.inspector = inspector
        if self._slot is not None:
            self._slot.set(inspector)
        log.info("model loaded: %s on %s", inspector.path, inspector.device_name)
        self.model_loaded.emit(inspector)

    def set_threshold(self, value: float) -> None:
        """New decision threshold: later frames use it (the live loop reads it per frame)."""
        if self.inspector is not None:
            self.inspector.threshold = float(value)

    def set_box_threshold(self, value: float) -> None:
        """New box threshold: later frames use it."""
        if self.inspector is not None:
            self.inspector.box_threshold = float(value)

    # -- live run ------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """idle, starting, running or paused."""
        return self._state

    @property
    def is_running(self) -> bool:
        """True while a live run exists (running, paused or opening its source)."""
        return self._live is not None

    def start(self, spec: SourceSpec, *, loop: bool = False, max_fps: float | None = None, steps: int = 0) -> bool:
        """Start a live run on spec (paused after `steps` frames when steps > 0); False with failed when impossible."""
        if self.inspector is None:
            self.failed.emit("No model is loaded: choose a model in the Model panel first.")
            return False
        if spec is None or spec == "" or spec == []:
            self.failed.emit("No source is chosen: pick a camera, video, folder or images first.")
            return False
        if self._live is not None:
            if self._gate is not None and self._gate.paused and steps == 0:
                self.resume()
            return True
        self._gate = FrameGate(paused=steps > 0, steps=steps)
        self.run_id = new_run_id("live")
        self.source_description = describe_spec(spec)
        self._end_reason = "ended"
        self._slot = InspectorSlot(self.inspector)
        worker = Worker(
            _run_live, spec, loop, self._slot, self.results, self.run_id, self._gate, max_fps, dict(self.stream_options)
        )
        worker.event_ready.connect(self._on_live_event)
        worker.failed.connect(self._on_live_failed)
        worker.cancelled.connect(self._on_live_cancelled)
        worker.finished.connect(self._on_live_finished)
        self._live = worker
        self._track(worker)
        self._set_state("starting")
        log.info("live run %s on %s", self.run_id, self.source_description)
        worker.start()
        return True

    def step(self, spec: SourceSpec | None = None, **options) -> None:
        """Inspect one more frame and pause; starts a paused run when none is going."""
        if self._live is None:
            if spec is not None:
                self.start(spec, steps=1, **options)
            return
        if self._gate is not None:
            self._gate.step()
            self._set_state("paused")

    def resume(self) -> None:
        """Let a paused run go on at full pace."""
        if self._gate is not None and self._live is not None:
            self._gate.resume()
            self._set_state("running")

    def stop(self) -> None:
        """End the live run; returns at once, run_finished follows when the source is released."""
        if self._live is not None:
            self._end_reason = "stopped"
            self._retire(self._live)
            self._live = None
            self._gate = None
            self._slot = None
            self._set_state("idle")
            self.run_finished.emit("stopped")

    def _on_live_event(self, item) -> None:
        """Forward the live worker's items as typed signals (ignoring a stopped run's stragglers)."""
        if self.sender() is not self._live:
            return  # late results of a run that was stopped
        if isinstance(item, RunOpened):
            self.source_description = item.description
            self._set_state("paused" if self._gate is not None and self._gate.paused else "running")
            self.run_started.emit(item.description)
        elif isinstance(item, LiveResult):
            self.result_ready.emit(item)
        elif isinstance(item, SourceEvent):
            self.source_event.emit(item)

    def _on_live_failed(self, message: str) -> None:
        """The run stopped on an error: pass on its one sentence."""
        if self.sender() is self._live:
            self._end_reason = "failed"
            self.failed.emit(message)

    def _on_live_cancelled(self) -> None:
        """The run ended because it was asked to."""
        if self.sender() is self._live:
            self._end_reason = "stopped"

    def _on_live_finished(self) -> None:
        """The worker's thread has ended: the source is released; report why the run ended."""
        if self.sender() is not self._live:
            return
        self._live = None
        self._gate = None
        self._slot = None
        self._set_state("idle")
        self.run_finished.emit(self._end_reason)

    def _set_state(self, state: str) -> None:
        """Change state and announce it only when it changed."""
        if state != self._state:
            self._state = state
            self.state_changed.emit(state)

    # -- worker lifetime -----------------------------------------------------------------------

    def _track(self, worker: Worker) -> None:
        """Keep a worker referenced until its thread has ended (a QThread must not be destroyed running)."""
        self._retired.add(worker)
        worker.finished.connect(lambda w=worker: self._retired.discard(w))

    def _retire(self, worker: Worker) -> None:
        """Ask a worker to stop; it stays referenced until its thread has ended."""
        worker.stop()

    def active_workers(self) -> list[Worker]:
        """Workers whose threads are still running (empty once the window has closed)."""
        return [w for w in self._retired if w.is_running()]

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Stop every worker and wait for them (window close); True when all ended in time."""
        self.stop()
        ok = True
        for worker in list(self._retired):
            ok = worker.wait(timeout_ms) and ok
        return ok
