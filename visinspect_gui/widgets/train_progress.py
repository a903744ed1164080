"""The Train tab's progress: epoch and step bars and a time left measured from this run's own batches."""
from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Callable

from PySide6.QtWidgets import QProgressBar, QVBoxLayout, QWidget

from engine.training.good_only import ModeChosen
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
    """Seconds left from the measured times of the latest batches and of the held-out pass that ends each epoch.

    The first epoch also computes and caches the frozen layers' outputs, so its batches (and its held-out
    pass) are several times slower than the later ones: no estimate is given during it (in a run of more than
    one epoch), and its held-out pass is scaled by how much faster the batches became.
    """

    def __init__(self) -> None:
        self._last: float | None = None
        self._first: list[float] = []  # batch seconds of the first epoch
        self._recent: deque[float] = deque(maxlen=1)  # batch seconds of the latest batches after it
        self._epoch: list[float] = []  # batch seconds of the epoch under way
        self._tail, self._tail_epoch = 0.0, 0  # the latest held-out pass and the epoch it ended
        self._first_step = True

    def start(self, now: float) -> None:
        self.__init__()
        self._last = now

    def step(self, now: float, ev: StepReport) -> None:
        if self._last is not None and not self._first_step:  # the run's first batch includes the warm-up
            seconds = now - self._last
            self._epoch.append(seconds)
            if ev.epoch == 1:
                self._first.append(seconds)
            else:
                if self._recent.maxlen != ev.steps:
                    self._recent = deque(self._recent, maxlen=ev.steps)
                self._recent.append(seconds)
        self._first_step = False
        self._last = now

    def epoch(self, now: float, ev: EpochReport) -> None:
        """An epoch ended at now (ev.seconds: its length as the training thread measured it)."""
        if self._last is not None:  # events can reach the window in bursts: the thread's own timing bounds the pass
            self._tail, self._tail_epoch = max(now - self._last, ev.seconds - sum(self._epoch)), ev.epoch
        self._epoch = []
        self._last = now

    def remaining(self, ev: StepReport) -> float | None:
        """Seconds until the last epoch's report if no early stop comes; None while it cannot be told."""
        if ev.epochs > 1 and (ev.epoch == 1 or len(self._recent) < min(2, ev.steps)):
            return None  # a single batch after the first epoch is too noisy a measure
        times = list(self._recent) or self._first
        if not times:
            return None
        per = statistics.median(times)
        tail = self._tail
        if self._tail_epoch == 1 and self._first and ev.epoch > 1:
            tail *= min(1.0, per / statistics.median(self._first))
        steps_left = (ev.epochs - ev.epoch) * ev.steps + (ev.steps - ev.step)
        return steps_left * per + (ev.epochs - ev.epoch + 1) * tail


class RunProgress(QWidget):
    """Which training runs and why, epoch bar, step bar and a line with the loss, the time taken and the time left;
    says how a run ended."""

    def __init__(self, parent: QWidget | None = None, *, clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(parent)
        self.clock = clock
        self.eta = EtaEstimator()
        self._t0 = 0.0
        self.mode_label = FoldingLabel()
        self.epoch_bar = QProgressBar()
        self.step_bar = QProgressBar()
        self.eta_label = FoldingLabel()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (self.mode_label, self.epoch_bar, self.step_bar, self.eta_label):
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
        self.mode_label.setText("")
        self._good_only = False

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

    def mode_chosen(self, ev: ModeChosen) -> None:
        """The job said which training runs: one line, kept for the whole run; good-only fits in one pass."""
        what = "Good-only training (one-class)" if ev.mode == "good-only" else "Supervised training"
        self.mode_label.setText(f"{what} — {ev.reason}.")
        self._good_only = ev.mode == "good-only"
        if self._good_only:
            self.epoch_bar.setRange(0, 1)

    def data_ready(self) -> None:
        self.eta.start(self.clock())
        self.eta_label.setText("Preparing… the first batch")

    def step(self, ev: StepReport) -> None:
        now = self.clock()
        self.eta.step(now, ev)
        self.epoch_bar.setFormat(EPOCHS_FORMAT)
        self.epoch_bar.setRange(0, ev.epochs)
        self.epoch_bar.setValue(ev.epoch - 1)
        self.step_bar.setFormat("step %v / %m")
        if self.step_bar.maximum() != ev.steps:
            self.step_bar.setRange(0, ev.steps)
        self.step_bar.setValue(ev.step)
        left = self.eta.remaining(ev)
        more = ("time left: measuring (the first epoch is the slowest)" if left is None
                else f"about {fmt_seconds(left)} left (less if it stops early)")  # fmt: skip
        loss = "gathering features" if math.isnan(ev.loss) else f"loss {ev.loss:.4f}"  # good-only: no loss while fitting
        self.eta_label.setText(f"epoch {ev.epoch}/{ev.epochs} · step {ev.step}/{ev.steps} · {loss}\n"
                               f"elapsed {fmt_seconds(now - self._t0)} · {more}")  # fmt: skip

    def epoch(self, ev: EpochReport) -> None:
        self.eta.epoch(self.clock(), ev)
        self.epoch_bar.setFormat(EPOCHS_FORMAT)
        if ev.early_stop:  # every epoch that will run has run
            self.epoch_bar.setRange(0, ev.epoch)
            self.epoch_bar.setFormat(f"%v of {ev.epochs} epochs: stopped early, target reached")
        self.epoch_bar.setValue(ev.epoch)

    def trained(self, epochs: int, seconds: float) -> None:
        done = "fitted on good images" if self._good_only else f"trained {epochs} epochs"
        self.eta_label.setText(f"{done} in {fmt_seconds(seconds)}")

    def finish(self, outcome: JobOutcome, trained: bool) -> None:
        """The run ended: no estimate is left standing; a stopped run says where it stopped."""
        self.step_bar.setRange(0, max(1, self.step_bar.maximum()))
        if not trained:
            self.eta_label.setText("")
        if outcome is not JobOutcome.DONE and not trained:
            done = self.epoch_bar.value() if self.epoch_bar.format() == EPOCHS_FORMAT else 0
            word = "cancelled" if outcome is JobOutcome.CANCELLED else "failed"
            self.epoch_bar.setFormat(f"{word} after %v of %m epochs" if done else word)
