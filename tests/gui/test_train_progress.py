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
    for step in (1, 2, 3, 4):
        progress.step(StepReport(1, 10, step, 4, 0.6))
        # the first epoch also caches features: its slow batches would predict far too long a run
        assert "time left: measuring" in progress.eta_label.text() and "about" not in progress.eta_label.text()
        clock.now += 2.0
    clock.now -= 1.0  # the held-out pass at the end of the epoch took 1 s
    progress.epoch(epoch(1, 10))
    for step in (1, 2):
        clock.now += 0.4  # epoch 2 runs on cached features: much faster batches
        progress.step(StepReport(2, 10, step, 4, 0.5))
    # 34 batches of 0.4 s (epoch 2's own, not epoch 1's 2 s) and 9 held-out passes: epoch 1's 1 s pass sped up
    # as the batches did (x 0.2): 13.6 + 1.8 s
    assert "about 15 s left" in progress.eta_label.text()
    assert "elapsed 38 s" in progress.eta_label.text()


def test_a_held_out_pass_that_reached_the_window_in_a_burst_is_timed_by_the_training_thread(run) -> None:
    progress, clock = run
    progress.begin(3)
    progress.data_ready()
    for e in (1, 2):
        for step in (1, 2):
            clock.now += 1.0
            progress.step(StepReport(e, 3, step, 2, 0.5))
        progress.epoch(EpochReport(e, 3, 0.5, 0.8, 0.6, 0.7, seconds=6.0))  # 2 s of batches, 4 s held-out pass
    clock.now += 1.0
    progress.step(StepReport(3, 3, 1, 2, 0.5))
    # the epoch report arrived with its last step (no time between them here): 1 batch of 1 s + a 4 s pass
    assert "about 5 s left" in progress.eta_label.text()


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
