"""The Train tab's progress: epoch and step bars and a time left measured from this run's own batches."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from PySide6.QtWidgets import QProgressBar, QVBoxLayout, QWidget

from engine.training.recipe import EpochReport, StepReport
from engine.types import JobOutcome
from visinspect_gui.widgets.common import FoldingLabel

EPOCHS_FORMAT = "%v of %m epochs done"
PREPARING = "Preparing…"


def fmt_seconds(s: float) -> str:
    s = max(0, int(round(s)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


class EtaEstimator:
    """Seconds left from measured batch times of the current epoch and the held-out pass that ends each epoch.

    The first batch of a run (model warm-up, feature caching) is not a batch time; later epochs are often
    faster than the first (cached features), so the current epoch's batches are used as soon as one is measured.
    """

    def __init__(self) -> None:
        self._last: float | None = None
        self._batches: list[float] = []  # seconds per batch, current epoch
        self._previous: list[float] = []  # seconds per batch, the epoch before
        self._tail = 0.0  # seconds from an epoch's last batch to its report (the held-out pass)
        self._first_step = True

    def start(self, now: float) -> None:
        self.__init__()
        self._last = now

    def step(self, now: float) -> None:
        if self._last is not None and not self._first_step:
            self._batches.append(now - self._last)
        self._first_step = False
        self._last = now

    def epoch(self, now: float) -> None:
        if self._last is not None:
            self._tail = now - self._last
        self._previous = self._batches or self._previous
        self._batches = []
        self._last = now

    def remaining(self, ev: StepReport) -> float | None:
        """Seconds until the last epoch's report if no early stop comes; None until a batch was measured."""
        times = self._batches or self._previous
        if not times:
            return None
        steps_left = (ev.epochs - ev.epoch) * ev.steps + (ev.steps - ev.step)
        reports_left = ev.epochs - ev.epoch + 1
        return steps_left * statistics.median(times) + reports_left * self._tail


class RunProgress(QWidget):
    """Epoch bar, step bar and a line with the loss, the time taken and the time left; says how a run ended."""

    def __init__(self, parent: QWidget | None = None, *, clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(parent)
        self.clock = clock
        self.eta = EtaEstimator()
        self._t0 = 0.0
        self.epoch_bar = QProgressBar()
        self.step_bar = QProgressBar()
        self.eta_label = FoldingLabel()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (self.epoch_bar, self.step_bar, self.eta_label):
            lay.addWidget(w)
        self.clear()

    def elapsed(self) -> float:
        return self.clock() - self._t0

    def clear(self) -> None:
        """No run yet: empty bars, no estimate."""
        for bar in (self.epoch_bar, self.step_bar):
            bar.setRange(0, 1)
            bar.setValue(0)
            bar.setFormat("")
        self.eta_label.setText("")

    def begin(self, epochs: int) -> None:
        """A run starts: images are read, nothing is trained yet."""
        self._t0 = self.clock()
        self.eta.start(self._t0)
        self.epoch_bar.setRange(0, max(1, epochs))
        self.epoch_bar.setValue(0)
        self.epoch_bar.setFormat(PREPARING)
        self.step_bar.setRange(0, 0)  # busy until the first batch
        self.step_bar.setFormat("")
        self.eta_label.setText("Preparing… reading the images")

    def data_ready(self) -> None:
        self.eta.start(self.clock())
        self.eta_label.setText("Preparing… the first batch")

    def step(self, ev: StepReport) -> None:
        now = self.clock()
        self.eta.step(now)
        self.epoch_bar.setFormat(EPOCHS_FORMAT)
        self.epoch_bar.setRange(0, ev.epochs)
        self.epoch_bar.setValue(ev.epoch - 1)
        self.step_bar.setFormat("step %v / %m")
        if self.step_bar.maximum() != ev.steps:
            self.step_bar.setRange(0, ev.steps)
        self.step_bar.setValue(ev.step)
        left = self.eta.remaining(ev)
        more = "estimating the time left…" if left is None else f"about {fmt_seconds(left)} left (less if it stops early)"
        self.eta_label.setText(f"epoch {ev.epoch}/{ev.epochs} · step {ev.step}/{ev.steps} · loss {ev.loss:.4f}\n"
                               f"elapsed {fmt_seconds(now - self._t0)} · {more}")  # fmt: skip

    def epoch(self, ev: EpochReport) -> None:
        self.eta.epoch(self.clock())
        self.epoch_bar.setFormat(EPOCHS_FORMAT)
        if ev.early_stop:  # every epoch that will run has run
            self.epoch_bar.setRange(0, ev.epoch)
            self.epoch_bar.setFormat(f"%v of {ev.epochs} epochs: stopped early, target reached")
        self.epoch_bar.setValue(ev.epoch)

    def trained(self, epochs: int, seconds: float) -> None:
        self.eta_label.setText(f"trained {epochs} epochs in {fmt_seconds(seconds)}")

    def finish(self, outcome: JobOutcome, trained: bool) -> None:
        """The run ended: no estimate is left standing; a stopped run says where it stopped."""
        self.step_bar.setRange(0, max(1, self.step_bar.maximum()))
        if not trained:
            self.eta_label.setText("")
        if outcome is not JobOutcome.DONE and not trained:
            done = self.epoch_bar.value() if self.epoch_bar.format() == EPOCHS_FORMAT else 0
            word = "cancelled" if outcome is JobOutcome.CANCELLED else "failed"
            self.epoch_bar.setFormat(f"{word} after %v of %m epochs" if done else word)
