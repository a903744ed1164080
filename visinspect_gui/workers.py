"""The one worker type: runs an engine job (a generator taking `stop`) in a QThread and forwards what it yields as signals.

Every running Worker is kept referenced by the class until its thread has ended (a QThread must not be
destroyed while it runs), so callers never hold workers just to keep them alive; `Worker.stop_all`
stops and waits for every one of them when the window closes.
"""
from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import shiboken6
from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal

from engine.errors import EXPECTED_ERRORS, Cancelled, VisInspectError
from engine.types import JobOutcome

log = logging.getLogger(__name__)


def plain_message(exc: BaseException) -> str:
    """One sentence an operator can read; engine errors already are one."""
    if isinstance(exc, VisInspectError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "Out of memory: try a smaller batch size or image size."
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{type(exc).__name__}: {text}"


class _Runner(QObject):
    event = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    done = Signal()

    def __init__(self, fn: Callable[..., Iterator[Any]], args, kwargs, stop: threading.Event) -> None:
        super().__init__()
        self._fn, self._args, self._kwargs, self._stop = fn, args, kwargs, stop

    def run(self) -> None:
        try:
            for item in self._fn(*self._args, stop=self._stop, **self._kwargs):
                self.event.emit(item)
                if self._stop.is_set():
                    break
            if self._stop.is_set():
                self.cancelled.emit()
        except Cancelled:
            self.cancelled.emit()
        except EXPECTED_ERRORS as exc:  # expected trouble (bad input, missing file, camera absent): one line
            log.warning("job stopped: %s", plain_message(exc))
            self.failed.emit(plain_message(exc))
        except Exception as exc:  # noqa: BLE001 - the thread boundary: every failure becomes one sentence
            log.error("worker failed: %s", "".join(traceback.format_exception(exc)))
            self.failed.emit(plain_message(exc))
        finally:
            self.done.emit()


class Worker(QObject):
    """Run `fn(*args, stop=Event, **kwargs)` (a generator) off the GUI thread.

    Signals: `event_ready(object)` for each yielded item, `failed(str)` with one plain sentence,
    `cancelled()` after stop(), and `finished()` last, always. Items arrive on the GUI thread (queued).
    `outcome` says how it ended once finished has been emitted.
    """

    event_ready = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    finished = Signal()

    _running: ClassVar[set[Worker]] = set()

    def __init__(self, fn: Callable[..., Iterator[Any]], *args, **kwargs) -> None:
        super().__init__()
        self.stop_event = threading.Event()
        self.outcome = JobOutcome.DONE
        self._thread = QThread()
        self._runner = _Runner(fn, args, kwargs, self.stop_event)
        self._runner.moveToThread(self._thread)
        self._thread.started.connect(self._runner.run)
        self._runner.event.connect(self.event_ready)
        self._runner.failed.connect(self._on_failed)
        self._runner.cancelled.connect(self._on_cancelled)
        # Direct: quit() is thread-safe, and a queued call would wait for the GUI thread, deadlocking wait().
        self._runner.done.connect(self._thread.quit, Qt.ConnectionType.DirectConnection)
        self._thread.finished.connect(self._on_thread_finished)

    def start(self) -> Worker:
        """Start the thread; the worker stays referenced until it has ended."""
        Worker._running.add(self)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the generator to stop at its next check; returns at once."""
        self.stop_event.set()

    def is_running(self) -> bool:
        return self._thread.isRunning()

    def wait(self, ms: int = 10_000) -> bool:
        """Stop and block until the thread has ended (for close); True when it ended in time."""
        self.stop_event.set()
        return self._thread.wait(ms)

    @classmethod
    def running(cls) -> list[Worker]:
        """Workers whose threads have not ended yet."""
        return [w for w in cls._running if w.is_running()]

    @classmethod
    def stop_all(cls, ms: int = 10_000) -> bool:
        """Stop every running worker and wait for its thread (window close); True when all ended in time."""
        return all([w.wait(ms) for w in list(cls._running)])

    def _on_failed(self, message: str) -> None:
        self.outcome = JobOutcome.FAILED
        self.failed.emit(message)

    def _on_cancelled(self) -> None:
        self.outcome = JobOutcome.CANCELLED
        self.cancelled.emit()

    def _on_thread_finished(self) -> None:
        self.finished.emit()
        # Released on the next event-loop turn, not from inside its own finished signal.
        QTimer.singleShot(0, lambda: Worker._running.discard(self))


Slot = Callable[..., object] | None


def call(fn: Callable[..., Any], *args, stop: threading.Event, **kwargs) -> Iterator[Any]:
    """A job of one step: fn(*args, **kwargs) off the GUI thread (a file header, a folder listing), its result yielded."""
    yield fn(*args, **kwargs)


def _connect(worker: Worker, on_event: Slot, on_failed: Slot, on_cancelled: Slot, on_finished: Slot, guard=None) -> None:
    """Connect the given callbacks to the worker's signals (each call made only while guard() is true, if given)."""
    pairs = ((worker.event_ready, on_event), (worker.failed, on_failed), (worker.cancelled, on_cancelled),
             (worker.finished, on_finished))  # fmt: skip
    for signal, slot in pairs:
        if slot is not None:
            signal.connect(_guarded(slot, guard))


def _guarded(slot: Callable[..., object], guard) -> Callable[..., object]:
    """slot, called only while guard() holds and, for a widget's method, while the widget still exists.

    A job can end after its window closed (a test fixture, a quit); its callback then finds
    the widget's C++ side deleted, so the call is skipped instead of raising in the event loop.
    """
    owner = getattr(slot, "__self__", None)
    if not isinstance(owner, QObject):
        owner = None

    def call_slot(*args):
        if (guard is None or guard()) and (owner is None or shiboken6.isValid(owner)):
            slot(*args)

    return call_slot


def start_worker(fn: Callable[..., Iterator[Any]], *args, on_event: Slot = None, on_failed: Slot = None,
                 on_cancelled: Slot = None, on_finished: Slot = None, **kwargs) -> Worker:  # fmt: skip
    """Run a job in a new Worker with its signals connected; the Worker is returned already started."""
    worker = Worker(fn, *args, **kwargs)
    _connect(worker, on_event, on_failed, on_cancelled, on_finished)
    return worker.start()


class Latest:
    """The newest worker of one kind a widget started: a superseded one is stopped and its signals ignored."""

    def __init__(self) -> None:
        self.worker: Worker | None = None
        self._finished: Worker | None = None  # the newest worker whose finished signal the GUI thread has seen

    def start(self, fn: Callable[..., Iterator[Any]], *args, on_event: Slot = None, on_failed: Slot = None,
              on_cancelled: Slot = None, on_finished: Slot = None, **kwargs) -> Worker:  # fmt: skip
        """Stop the previous worker (if any) and start fn; only this one's signals reach the callbacks."""
        self.stop()
        worker = self.worker = Worker(fn, *args, **kwargs)
        worker.finished.connect(lambda: self._on_finished(worker))
        _connect(worker, on_event, on_failed, on_cancelled, on_finished, guard=lambda: self.worker is worker)
        return worker.start()

    def busy(self) -> bool:
        """True until the newest worker's results have all reached the GUI thread (its finished signal comes last)."""
        return self.worker is not None and self._finished is not self.worker

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    def _on_finished(self, worker: Worker) -> None:
        # A superseded worker may finish after the newest one; only the newest one's end counts.
        if worker is self.worker:
            self._finished = worker

    def wait(self, ms: int = 10_000) -> bool:
        return self.worker.wait(ms) if self.worker is not None else True
