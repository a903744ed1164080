"""The station's controller: the loaded model, the one live run and the results log, behind Qt signals.

Widgets never touch the model or the source: they ask the Station, which runs every slow step
(model load, frame reads, inference, database writes) in a Worker and reports back by signals.
"""

from __future__ import annotations

import logging
import os
from enum import Enum

import numpy as np
from PySide6.QtCore import QObject, Signal

from engine.display import DisplayFeed
from engine.inference.live import LiveResult
from engine.inference.mailbox import FrameGate
from engine.jobs.live import InspectorSlot, RunOpened, SourceSpec, describe_spec, live_job
from engine.results import ResultsLog, new_run_id
from engine.sources import SourceEvent
from engine.types import RuntimeOptions
from visinspect_gui.workers import Worker

log = logging.getLogger(__name__)


class RunState(str, Enum):
    """Where the live run is: none, opening its source, inspecting, or paused between steps."""

    IDLE = "idle"
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"


def _key(spec: SourceSpec) -> str:
    """What identifies a source for going on where it stopped: the same folder, video or list of images."""
    return "\n".join(map(str, spec)) if isinstance(spec, list) else str(spec)


def _load_inspector(path: str, runtime: RuntimeOptions, *, stop):
    """Worker body: load a model file and warm it up with one blank image, so the first frame is not slow."""
    from engine.inference.inspector import Inspector  # torch loads here, off the GUI thread

    inspector = Inspector.open(path, runtime)
    size = inspector.meta.input_size
    inspector.inspect([np.zeros((size, size, 3), np.uint8)])
    yield inspector


class Station(QObject):
    """Owns the inspector, the live Worker and the results log; the GUI thread drives it, workers do the work."""

    model_loaded = Signal(object)  # Inspector
    model_failed = Signal(str)
    run_started = Signal(str)  # source description
    run_finished = Signal(str)  # "ended", "stopped" or "failed"
    result_ready = Signal(object)  # LiveResult
    source_event = Signal(object)  # SourceEvent
    failed = Signal(str)  # the live run stopped on an error, in one sentence
    state_changed = Signal(object)  # RunState
    model_switched = Signal(str, str)  # a live run goes on with a newly loaded model: (new run id, model name)

    def __init__(self, results: ResultsLog, *, runtime: RuntimeOptions = RuntimeOptions(), parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.results = results
        self.runtime = runtime  # every model this station loads runs so, in every tab
        self.inspector = None
        self.source_description = ""
        self.run_id: str | None = None
        self._live: Worker | None = None
        self._loader: Worker | None = None
        self._gate: FrameGate | None = None
        self._slot: InspectorSlot | None = None
        self._state = RunState.IDLE
        self._end_reason = "ended"
        self._position: tuple[str, int] | None = None  # (source key, next frame) of the file source last stopped
        self._next_frame = 0
        self._is_live_source = True
        self._spec_key = ""
        self.stream_options: dict = {}  # passed to stream_frames (tests shorten the reconnect backoff)
        self.display = DisplayFeed()  # which results carry the picture to show, composed beside the model
        self.line_options = dict  # the live run's line arguments (hub, triggered) as the window's line I/O gives them
        self.roi: tuple[int, int, int, int] | None = None  # only this part of each frame is inspected, from the next start
        self.run_roi: tuple[int, int, int, int] | None = None  # the ROI the live frames shown are cut to
        self.recipe: str | None = None  # the recipe in use, logged with each result

    # -- model ---------------------------------------------------------------------------------

    def load_model(self, path: str | os.PathLike) -> None:
        """Load a model file in a worker; model_loaded or model_failed follows."""
        if self._loader is not None:
            self._loader.stop()
        worker = Worker(_load_inspector, str(path), self.runtime)
        worker.event_ready.connect(self._on_model_ready)
        worker.failed.connect(self.model_failed)
        self._loader = worker
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
        log.info("model loaded: %s (sha256 %s) on %s", inspector.path, inspector.ref.id, inspector.device_name)
        self.model_loaded.emit(inspector)
        if self._slot is not None:
            self.run_id = new_run_id("live")
            self._slot.set(inspector, self.run_id)
            log.info("live run continues as %s with model %s", self.run_id, inspector.path)
            self.model_switched.emit(self.run_id, os.path.basename(str(inspector.path)))

    def set_threshold(self, value: float) -> None:
        """New decision threshold: later frames use it (the live loop reads it per frame)."""
        if self.inspector is not None:
            self.inspector.thresholds = self.inspector.thresholds.with_decision(value)

    def set_box_threshold(self, value: float) -> None:
        """New box threshold: later frames use it."""
        if self.inspector is not None:
            self.inspector.thresholds = self.inspector.thresholds.with_box(value)

    # -- live run ------------------------------------------------------------------------------

    @property
    def state(self) -> RunState:
        """Where the live run is."""
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
        self._slot = InspectorSlot(self.inspector, self.run_id)
        start_at = self.resume_position(spec)
        self._next_frame, self._position, self._spec_key, self._is_live_source = start_at, None, _key(spec), True
        self.run_roi = self.roi
        worker = Worker(
            live_job, spec, self._slot, self.results, loop=loop, start_at=start_at, gate=self._gate,
            max_fps=max_fps, stream_options=dict(self.stream_options), display=self.display, roi=self.roi, recipe=self.recipe,
            **self.line_options(),
        )
        worker.event_ready.connect(self._on_live_event)
        worker.failed.connect(self._on_live_failed)
        worker.cancelled.connect(self._on_live_cancelled)
        worker.finished.connect(self._on_live_finished)
        self._live = worker
        self._set_state(RunState.STARTING)
        where = f" from frame {start_at + 1}" if start_at else ""
        log.info("live run %s on %s%s with model %s", self.run_id, self.source_description, where, self.inspector.path)
        worker.start()
        return True

    def resume_position(self, spec: SourceSpec) -> int:
        """The frame a run on spec starts from: where a stopped run on the same file source left off, else 0."""
        return self._position[1] if self._position is not None and self._position[0] == _key(spec) else 0

    def rewind(self) -> None:
        """Forget where the last file source stopped: the next start reads it from its first frame."""
        self._position = None

    def step(self, spec: SourceSpec | None = None, **options) -> None:
        """Inspect one more frame and pause; starts a paused run when none is going."""
        if self._live is None:
            if spec is not None:
                self.start(spec, steps=1, **options)
            return
        if self._gate is not None:
            self._gate.step()
            self._set_state(RunState.PAUSED)

    def resume(self) -> None:
        """Let a paused run go on at full pace."""
        if self._gate is not None and self._live is not None:
            self._gate.resume()
            self._set_state(RunState.RUNNING)

    def stop(self) -> None:
        """End the live run; returns at once, run_finished follows when the source is released.

        A file source (folder, images, video) remembers where it stopped: Start or Step goes on from there.
        """
        if self._live is not None:
            self._end_reason = "stopped"
            if not self._is_live_source and self._next_frame:
                self._position = (self._spec_key, self._next_frame)
            log.info("live run %s stopped after frame %d", self.run_id, self._next_frame)
            self._live.stop()
            self._live = None
            self._gate = None
            self._slot = None
            self._set_state(RunState.IDLE)
            self.run_finished.emit("stopped")

    def _on_live_event(self, item) -> None:
        """Forward the live worker's items as typed signals (ignoring a stopped run's stragglers)."""
        if self.sender() is not self._live:
            return  # late results of a run that was stopped
        if isinstance(item, RunOpened):
            self.source_description = item.description
            self._is_live_source = item.is_live
            self._set_state(RunState.PAUSED if self._gate is not None and self._gate.paused else RunState.RUNNING)
            self.run_started.emit(item.description)
        elif isinstance(item, LiveResult):
            self._next_frame = item.frame.index + 1
            self.result_ready.emit(item)
        elif isinstance(item, SourceEvent):
            self.source_event.emit(item)

    def _on_live_failed(self, message: str) -> None:
        """The run stopped on an error: pass on its one sentence."""
        if self.sender() is self._live:
            self._end_reason = "failed"  # the worker has logged the reason; _on_live_finished logs the run's end
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
        self._set_state(RunState.IDLE)
        log.info("live run %s %s after frame %d", self.run_id, self._end_reason, self._next_frame)
        self.run_finished.emit(self._end_reason)

    def _set_state(self, state: RunState) -> None:
        """Change state and announce it only when it changed."""
        if state != self._state:
            self._state = state
            self.state_changed.emit(state)

    # -- worker lifetime -----------------------------------------------------------------------

    @staticmethod
    def active_workers() -> list[Worker]:
        """Workers whose threads are still running (empty once the window has closed)."""
        return Worker.running()

    def shutdown(self) -> None:
        """Stop the live run and a model load (window close; the window then waits for every worker)."""
        self.stop()
        if self._loader is not None:
            self._loader.stop()
