"""The one worker type: runs an engine generator in a QThread and forwards what it yields as signals."""
from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal

from engine.errors import Cancelled, VisInspectError

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
        except Exception as exc:  # noqa: BLE001 - the thread boundary: every failure becomes one sentence
            log.error("worker failed: %s", "".join(traceback.format_exception(exc)))
            self.failed.emit(plain_message(exc))
        finally:
            self.done.emit()


class Worker(QObject):
    """Run `fn(*args, stop=Event, **kwargs)` (a generator) off the GUI thread.

    Signals: `event_ready(object)` for each yielded item, `failed(str)` with one plain sentence,
    `cancelled()` after stop(), and `finished()` last, always. Items arrive on the GUI thread (queued).
    """

    event_ready = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    finished = Signal()

    def __init__(self, fn: Callable[..., Iterator[Any]], *args, **kwargs) -> None:
        super().__init__()
        self.stop_event = threading.Event()
        self._thread = QThread()
        self._runner = _Runner(fn, args, kwargs, self.stop_event)
        self._runner.moveToThread(self._thread)
        self._thread.started.connect(self._runner.run)
        self._runner.event.connect(self.event_ready)
        self._runner.failed.connect(self.failed)
        self._runner.cancelled.connect(self.cancelled)
        # Direct: quit() is thread-safe, and a queued call would wait for the GUI thread, deadlocking wait().
        self._runner.done.connect(self._thread.quit, Qt.ConnectionType.DirectConnection)
        self._thread.finished.connect(self.finished)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the generator to stop at its next check; returns at once."""
        self.stop_event.set()

    def is_running(self) -> bool:
        return self._thread.isRunning()

    def wait(self, ms: int = 10_000) -> bool:
        """Stop and block until the thread has ended (for close); True when it ended in time."""
        self.stop_event.set()
        return self._thread.wait(ms)


class WorkerGroup:
    """The workers a widget started: each stays referenced until its thread has ended; all are stopped on close."""

    def __init__(self) -> None:
        self._workers: set[Worker] = set()

    def start(self, worker: Worker) -> Worker:
        """Keep worker referenced and start it."""
        self._workers.add(worker)
        # Released on the next event-loop turn, not from inside the worker's own finished signal.
        worker.finished.connect(lambda w=worker: QTimer.singleShot(0, lambda: self._workers.discard(w)))
        worker.start()
        return worker

    def wait(self, ms: int = 10_000) -> bool:
        """Stop every worker and wait for its thread (window close); True when all ended in time."""
        return all([w.wait(ms) for w in list(self._workers)])
