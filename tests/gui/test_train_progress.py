"""Train progress as an engineer reads it: no false epoch count before training, a time left measured from the
run's own batches, a full bar after an early stop, no estimate left standing after Cancel."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from engine.training.recipe import EpochReport, StepReport  # noqa: E402
from engine.types import JobOutcome  # noqa: E402
from visinspect_gui.widgets.train_progress import RunProgress  # noqa: E402


class Clock:
    """A hand-moved clock, so no assert depends on how fast this machine is."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def run(qtbot):
    clock = Clock()
    progress = RunProgress(clock=clock)
    qtbot.addWidget(progress)
    return progress, clock


def epoch(n: int, of: int, *, early: bool = False) -> EpochReport:
    return EpochReport(n, of, 0.5, 0.8, 0.6, 0.7, 1.0, early_stop=early)


def test_before_the_first_batch_it_says_preparing_not_an_epoch_count(run) -> None:
    progress, clock = run
    progress.begin(10)
    assert progress.epoch_bar.text() == "Preparing…" and "Preparing" in progress.eta_label.text()
    clock.now += 3
    progress.data_ready()
    assert progress.epoch_bar.text() == "Preparing…" and "first batch" in progress.eta_label.text()
    assert "0 of 1" not in progress.epoch_bar.text()
    progress.step(StepReport(1, 10, 1, 4, 0.7))
    assert progress.epoch_bar.text() == "0 of 10 epochs done"


def test_time_left_comes_from_measured_batch_times_of_the_current_epoch(run) -> None:
    progress, clock = run
    progress.begin(10)
    progress.data_ready()
    clock.now += 30  # warm-up before the first batch is not a batch time
    progress.step(StepReport(1, 10, 1, 4, 0.7))
    assert "estimating" in progress.eta_label.text()
    for step in (2, 3, 4):
        clock.now += 2.0
        progress.step(StepReport(1, 10, step, 4, 0.6))
    # 36 batches of 2 s and 10 held-out passes not measured yet: 72 s
    assert "about 1 min 12 s left" in progress.eta_label.text()
    clock.now += 1.0  # the held-out pass at the end of the epoch
    progress.epoch(epoch(1, 10))
    clock.now += 0.4  # epoch 2 runs on cached features: much faster batches
    progress.step(StepReport(2, 10, 1, 4, 0.5))
    # 35 batches of 0.4 s and 9 held-out passes of 1 s, from epoch 2's own batch, not epoch 1's
    assert "about 23 s left" in progress.eta_label.text()
    assert "elapsed 37 s" in progress.eta_label.text()


def test_an_early_stop_fills_the_bar_and_says_so(run) -> None:
    progress, clock = run
    progress.begin(10)
    for n in range(1, 7):
        progress.step(StepReport(n, 10, 1, 1, 0.5))
        progress.epoch(epoch(n, 10, early=n == 6))
    bar = progress.epoch_bar
    assert bar.value() == bar.maximum() == 6
    assert bar.text() == "6 of 10 epochs: stopped early, target reached"


def test_cancel_leaves_no_time_left_standing(run) -> None:
    progress, clock = run
    progress.begin(10)
    progress.data_ready()
    for step in (1, 2):
        clock.now += 1
        progress.step(StepReport(1, 10, step, 4, 0.5))
    progress.epoch(epoch(1, 10))
    progress.step(StepReport(2, 10, 1, 4, 0.5))
    assert "left" in progress.eta_label.text()
    progress.finish(JobOutcome.CANCELLED, trained=False)
    assert progress.eta_label.text() == ""
    assert progress.epoch_bar.text() == "cancelled after 1 of 10 epochs"


def test_cancel_while_reading_images_says_cancelled_not_an_epoch_count(run) -> None:
    progress, _clock = run
    progress.begin(5)
    progress.finish(JobOutcome.CANCELLED, trained=False)
    assert progress.epoch_bar.text() == "cancelled" and progress.eta_label.text() == ""
