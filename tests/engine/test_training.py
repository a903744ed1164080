"""End-to-end training on synthetic data: it learns, reports progress, caches features faithfully, cancels."""
import threading

import numpy as np
import pytest

from engine.data.layouts import load_dataset
from engine.errors import Cancelled
from engine.inference import Inspector
from engine.training import EpochReport, StepReport, TrainConfig, TrainResult, train
from tests.conftest import FAST_TRAIN


def test_random_init_training_learns_synthetic_defects(trained):
    result, path = trained
    report = result.report
    assert report.n == 18
    assert report.accuracy >= 0.7 and report.balanced_accuracy >= 0.7  # chance: 0.56 and 0.5
    assert report.image_auroc >= 0.9  # the scores separate the classes
    assert report.tp + report.fn + report.fp + report.tn == report.n
    assert report.pixel_auroc is not None and report.pixel_auroc > 0.6  # the heatmap looks at the defects
    assert result.meta.metrics["accuracy"] == report.accuracy
    history, target = result.history, TrainConfig(**FAST_TRAIN).early_stop_accuracy
    assert all(not h.early_stop and h.train_accuracy < target for h in history[:-1])  # it went on while below the target
    assert history[-1].early_stop == (history[-1].train_accuracy >= target)  # and stopped once it got there
    assert len(history) <= FAST_TRAIN["epochs"] and (history[-1].early_stop or len(history) == FAST_TRAIN["epochs"])


def test_inspector_finds_drawn_defects_with_boxes(trained, synthetic_dataset):
    from engine.data.decode import read_image, read_mask

    inspector = Inspector.from_file(trained[1], device="cpu")
    paths = sorted((synthetic_dataset / "test" / "spot").glob("*.png"))[:6]
    results = inspector.inspect([read_image(p) for p in paths])
    flagged = [(p, r) for p, r in zip(paths, results) if r.is_anomaly]
    assert len(flagged) >= 4
    touched = 0
    for p, r in flagged:
        mask = read_mask(synthetic_dataset / "ground_truth" / "spot" / f"{p.stem}_mask.png")
        assert r.heatmap.shape == mask.shape and r.boxes
        touched += any(mask[b.y0 : b.y1, b.x0 : b.x1].any() for b in r.boxes)
    assert touched >= len(flagged) // 2


def test_progress_events_and_cancel(synthetic_dataset):
    index = load_dataset(synthetic_dataset)
    stop = threading.Event()
    seen = []
    with pytest.raises(Cancelled):
        for event in train(index, TrainConfig(**{**FAST_TRAIN, "epochs": 3}), product="p", stop=stop):
            seen.append(event)
            if isinstance(event, StepReport) and event.epoch == 2 and event.step == 2:
                stop.set()
    assert any(isinstance(e, EpochReport) and e.epoch == 1 for e in seen)
    assert not any(isinstance(e, TrainResult) for e in seen)


def test_feature_cache_gives_the_same_training_as_the_plain_loop(synthetic_dataset):
    index = load_dataset(synthetic_dataset)
    runs = []
    for cache in (True, False):
        cfg = TrainConfig(**{**FAST_TRAIN, "epochs": 3, "early_stop_accuracy": 1.01, "cache_features": cache})
        runs.append([e for e in train(index, cfg, product="p") if isinstance(e, EpochReport)])
    cached, plain = runs
    for a, b in zip(cached, plain):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-3, abs=1e-4)
        assert a.test_accuracy == b.test_accuracy


def test_same_seed_repeats_the_same_model(synthetic_dataset):
    index = load_dataset(synthetic_dataset)
    cfg = TrainConfig(**{**FAST_TRAIN, "epochs": 2, "early_stop_accuracy": 1.01})
    losses = [[e.train_loss for e in train(index, cfg, product="p") if isinstance(e, EpochReport)] for _ in range(2)]
    assert np.allclose(losses[0], losses[1])
