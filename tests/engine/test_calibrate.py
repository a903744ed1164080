"""Threshold calibration: each target's promise holds on the calibration set, and the threshold is stored."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.data.layouts import load_dataset, split_dataset
from engine.data.preprocess import Preprocess
from engine.data.synthetic import generate_dataset
from engine.evaluation.calibrate import (
    NO_MISS_MARGIN_LOGIT,
    Calibration,
    CalibrationError,
    Target,
    below_with_margin,
    calibrate,
    calibration_table,
    parse_target,
    store_calibration,
)
from engine.jobs.calibrate import CalibrationDone, calibrate_job
from engine.model import build_model
from engine.modelfile import ModelMeta, read_meta, save_model

# Scores as float32 probabilities, as the model produces them; coarse values make ties common.
_score = st.integers(0, 40).map(lambda k: float(np.float32(k / 40)))
_sets = st.lists(st.tuples(st.integers(0, 1), _score), min_size=2, max_size=60).filter(
    lambda xs: len({label for label, _ in xs}) == 2
)


def _split(data):
    return np.array([label for label, _ in data]), np.array([p for _, p in data])


def _brute(labels, scores):
    """Every distinct operating point by brute force, as (threshold, tp, fn, fp, tn, balanced accuracy)."""
    cands = sorted(set(scores.tolist())) + [float(np.nextafter(np.float32(scores.max()), np.float32(np.inf)))]
    out = []
    for t in cands:
        tp, fn, fp, tn = _counts(labels, scores, t)
        out.append((t, tp, fn, fp, tn, (tp / (tp + fn) + tn / (tn + fp)) / 2))
    return out


def test_parse_target_accepts_the_three_forms() -> None:
    assert parse_target("no-miss") == Target("no-miss")
    assert parse_target(" Balanced ") == Target("balanced")
    assert parse_target("max-false-reject:2.5") == Target("max-false-reject", 2.5)
    assert parse_target("max-false-reject:5%").text == "max-false-reject:5"


@pytest.mark.parametrize("bad", ["", "fast", "max-false-reject", "max-false-reject:-1", "max-false-reject:101", "no miss!"])
def test_parse_target_error_names_the_allowed_forms(bad: str) -> None:
    with pytest.raises(CalibrationError) as err:
        parse_target(bad)
    for form in ("no-miss", "max-false-reject:N", "balanced"):
        assert form in str(err.value)


@settings(max_examples=150, deadline=None)
@given(_sets)
def test_no_miss_catches_every_anomaly_with_its_stated_margin_below_the_lowest(data) -> None:
    labels, scores = _split(data)
    cal = calibrate(labels, scores, "no-miss")
    assert cal.fn == 0 and cal.miss_rate == 0.0
    lowest = float(scores[labels == 1].min())
    assert cal.threshold == below_with_margin(lowest) <= lowest  # a margin below the lowest defect's score
    if 1e-6 < lowest < 1 - 1e-6:
        logit = np.log(lowest / (1 - lowest)) - np.log(cal.threshold / (1 - cal.threshold))
        assert logit == pytest.approx(NO_MISS_MARGIN_LOGIT, abs=1e-9)
    assert (cal.tp, cal.fn, cal.fp, cal.tn) == _counts(labels, scores, cal.threshold)


def test_a_score_slightly_lower_on_the_line_is_still_caught() -> None:
    """The defect: a no-miss threshold at exactly the lowest defect's score misses it when the line scores it 1e-4 lower."""
    labels, scores = np.array([0, 0, 1, 1]), np.array([0.2, 0.4, 0.7501, 0.9])
    cal = calibrate(labels, scores, "no-miss")
    assert cal.fn == 0 and cal.threshold < 0.7501 - 0.01
    assert 0.7501 - 1e-4 >= cal.threshold


def _counts(labels, scores, t):
    pred = scores >= t
    return (
        int((pred & (labels == 1)).sum()),
        int((~pred & (labels == 1)).sum()),
        int((pred & (labels == 0)).sum()),
        int((~pred & (labels == 0)).sum()),
    )


@settings(max_examples=150, deadline=None)
@given(_sets, st.sampled_from([0.0, 1.0, 5.0, 10.0, 33.3, 50.0, 100.0]))
def test_max_false_reject_respects_n_with_fewest_misses(data, percent) -> None:
    labels, scores = _split(data)
    cal = calibrate(labels, scores, f"max-false-reject:{percent}")
    n_good = int((labels == 0).sum())
    assert cal.fp <= percent / 100 * n_good + 1e-9
    allowed = [c for c in _brute(labels, scores) if c[3] <= percent / 100 * n_good + 1e-9]
    best = min(c[2] for c in allowed)
    assert cal.fn == best
    assert cal.fp == min(c[3] for c in allowed if c[2] == best)


@settings(max_examples=150, deadline=None)
@given(_sets)
def test_balanced_maximises_balanced_accuracy(data) -> None:
    labels, scores = _split(data)
    cal = calibrate(labels, scores, "balanced")
    assert cal.balanced_accuracy == pytest.approx(max(c[5] for c in _brute(labels, scores)))


def test_ties_between_classes_give_a_clear_result() -> None:
    labels = np.array([0, 0, 1, 1])
    scores = np.array([0.2, 0.7, 0.7, 0.9], dtype=np.float32)
    no_miss = calibrate(labels, scores, "no-miss")
    assert no_miss.threshold < 0.7 and (no_miss.fn, no_miss.fp) == (0, 1)
    strict = calibrate(labels, scores, "max-false-reject:0")
    assert (strict.fn, strict.fp) == (1, 0) and strict.threshold == pytest.approx(0.9)


def test_when_a_good_image_scores_highest_zero_false_rejects_means_rejecting_nothing() -> None:
    labels = np.array([0, 1, 1])
    scores = np.array([1.0, 0.8, 0.6], dtype=np.float32)
    cal = calibrate(labels, scores, "max-false-reject:0")
    assert cal.threshold > 1.0 and (cal.tp, cal.fp) == (0, 0) and cal.miss_rate == 1.0


def test_a_perfect_separation_gives_perfect_numbers() -> None:
    labels = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    for cal in calibration_table(labels, scores):
        assert (cal.fn, cal.fp, cal.accuracy, cal.balanced_accuracy) == (0, 0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("labels", "scores", "words"),
    [
        ([0, 0, 0], [0.1, 0.2, 0.3], "both classes"),
        ([1, 1], [0.9, 0.8], "both classes"),
        ([], [], "none"),
        ([0, 1], [0.1], "equal length"),
        ([0, 1], [0.1, float("nan")], "finite"),
        ([0, 2], [0.1, 0.2], "0 (good) or 1"),
    ],
)
def test_degenerate_inputs_raise_a_clear_error(labels, scores, words) -> None:
    with pytest.raises(CalibrationError, match=words.replace("(", r"\(").replace(")", r"\)")):
        calibrate(labels, scores, "balanced")


def test_table_has_every_target_and_a_readable_line() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    scores = np.array([0.05, 0.2, 0.4, 0.6, 0.5, 0.7, 0.95])
    table = calibration_table(labels, scores, false_reject_percents=(0, 25))
    assert [c.target for c in table] == ["no-miss", "max-false-reject:0", "max-false-reject:25", "balanced"]
    assert all(isinstance(c, Calibration) for c in table)
    assert f"threshold {below_with_margin(0.5):.4f}" in table[0].line() and "missed 0/3" in table[0].line()
    assert "missed anomalies  0 of 3" in str(table[0])


# --- stored in the model file ---------------------------------------------------------------


def _model_file(path: Path, dataset: dict | None = None) -> Path:
    model, _ = build_model(backbone="vgg16_bn", backbone_weights="none")
    meta = ModelMeta(
        product="calib",
        backbone="vgg16_bn",
        backbone_weights={"kind": "none", "detail": "random init"},
        preprocess=Preprocess(32).to_dict(),
        dataset=dataset or {},
    )
    return save_model(path, model, meta)


def test_stored_threshold_round_trips_and_an_inspector_uses_it(tmp_path: Path) -> None:
    from engine.inference import Inspector

    path = _model_file(tmp_path / "m.safetensors")
    labels, scores = np.array([0, 0, 1, 1]), np.array([0.1, 0.3, 0.35, 0.9], dtype=np.float32)
    cal = calibrate(labels, scores, "no-miss")
    table = calibration_table(labels, scores)
    meta = store_calibration(path, cal, table=table, source="unit test", data="nowhere")
    assert meta.threshold == cal.threshold
    stored = read_meta(path)
    assert stored.threshold == cal.threshold < float(np.float32(0.35)) and stored.calibration["target"] == "no-miss"
    assert stored.calibration["fn"] == 0 and len(stored.calibration["table"]) == len(table)
    inspector = Inspector.from_file(path, device="cpu")
    assert inspector.threshold == cal.threshold
    image = np.full((40, 40, 3), 128, np.uint8)
    insp = inspector.inspect([image])[0]
    assert insp.threshold == cal.threshold
    assert insp.is_anomaly == (insp.p_anomaly >= cal.threshold)


def _done(events) -> CalibrationDone:
    return [e for e in events if isinstance(e, CalibrationDone)][-1]


def test_calibrate_job_uses_the_held_out_split_says_what_it_stored_and_dry_run_changes_nothing(tmp_path: Path) -> None:
    import threading

    from engine.types import RuntimeOptions

    root = generate_dataset(tmp_path / "data", n_train_good=8, n_test_good=4, n_per_defect=4, image_size=64).root
    index = load_dataset(root)
    split = split_dataset(index, seed=3)
    held_out = [str(s.path.relative_to(root)) for s in split.test]
    path = _model_file(tmp_path / "m.safetensors", {**index.summary(), "split_seed": 3, "test_fraction": 0.2, "held_out": held_out})
    runtime = RuntimeOptions("cpu", "fp32")
    done = _done(calibrate_job(path, root, target="no-miss", runtime=runtime, stop=threading.Event()))
    cal = done.calibration
    assert cal.n == len(held_out) and cal.fn == 0
    assert done.stored and done.previous_threshold == 0.5 and done.precision == "fp32"
    meta = read_meta(path)
    assert meta.threshold == cal.threshold
    assert meta.calibration["source"].startswith("the model's") and meta.calibration["n"] == len(held_out)
    assert meta.calibration["precision"] == "fp32"
    dry = _done(calibrate_job(path, root, target="balanced", runtime=runtime, dry_run=True, stop=threading.Event()))
    assert read_meta(path).threshold == cal.threshold  # a dry run leaves the file alone
    assert not dry.stored and dry.previous_threshold == cal.threshold and dry.calibration.n == cal.n
