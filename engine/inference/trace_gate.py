"""torch.fx tracing patches nn.Module.__call__ for every thread, so no model may run while one is being traced.

Quantizing a model (FX tracing) while the live view runs another used to fail the live run with
"module is not installed as a submodule". Model calls hold the gate shared; tracing holds it alone,
and a waiting trace goes before new model calls so it is never starved by a busy live view.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class TraceGate:
    """A readers-writer gate: many model calls at once, or one trace and nothing else."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._calls = 0
        self._tracing = False
        self._traces_waiting = 0

    @contextmanager
    def model_call(self) -> Iterator[None]:
        """Run a model (any thread); waits while a trace runs or waits."""
        with self._cond:
            while self._tracing or self._traces_waiting:
                self._cond.wait()
            self._calls += 1
        try:
            yield
        finally:
            with self._cond:
                self._calls -= 1
                self._cond.notify_all()

    @contextmanager
    def tracing(self) -> Iterator[None]:
        """Trace a model with no model running anywhere in the process."""
        with self._cond:
            self._traces_waiting += 1
            while self._tracing or self._calls:
                self._cond.wait()
            self._traces_waiting -= 1
            self._tracing = True
        try:
            yield
        finally:
            with self._cond:
                self._tracing = False
                self._cond.notify_all()


GATE = TraceGate()
