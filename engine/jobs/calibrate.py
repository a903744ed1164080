"""The calibrate job: choose a decision threshold on held-out scores from the precision the line will run, and store it.

The precision auto runs can depend on the threshold (int8 is kept only where it agrees with fp32 at the
threshold in force), so a threshold chosen on one precision's scores is checked against the precision
the line will run at that threshold; where they differ the images are scored again in that one and
the threshold chosen again. `visinspect calibrate` and the station's Store button both run it.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.data.images import LoadedSamples
from engine.evaluation.calibrate import (
    Calibration,
    at_threshold,
    calibrate,
    calibration_table,
    parse_target,
    store_calibration,
)
from engine.evaluation.calibrate import (
    review_band as band_accept,
)
from engine.evaluation.evaluate import evaluate_loaded, evaluation_samples, scores_arrays
from engine.inference.inspector import RecordingInspector
from engine.inference.localize import CamScale, ScaleError, measure_cam_scale
from engine.inference.runtime import choose_runtime
from engine.jobs.evaluate import LoadProgress, dataset_for, load_chosen
from engine.modelfile import load_model
from engine.types import RuntimeOptions

MAX_ROUNDS = 3  # precisions tried before settling on a threshold


@dataclass(frozen=True)
class CalibrationStarted:
    """The images are chosen; scoring starts in `precision`."""

    n: int
    how: str
    precision: str


@dataclass(frozen=True, eq=False)
class CalibrationDone:
    """The threshold chosen, what it does on the images in the precision the line runs at it, and where it went."""

    calibration: Calibration
    table: tuple[Calibration, ...]
    precision: str
    how: str
    model_path: str
    previous_threshold: float
    stored: bool  # False on a dry run
    notes: tuple[str, ...] = ()  # each change of precision on the way, in words
    heat_scale: CamScale | None = None  # the absolute heat scale measured on the same images (stored with the threshold)


def calibrate_job(
    model_path: str | os.PathLike,
    data_dir: str | os.PathLike,
    *,
    target: str | None = None,
    threshold: float | None = None,
    runtime: RuntimeOptions = RuntimeOptions(),
    layout: str | None = None,
    good_dir: str | None = None,
    every_image: bool = False,
    dry_run: bool = False,
    review_band: str | float | None = None,
    stop: threading.Event,
) -> Iterator[CalibrationStarted | LoadProgress | CalibrationDone]:
    """Choose a threshold for target (or check a given one), on scores of the precision the line runs at it; store it.

    review_band: where the review band starts (a target such as no-miss, a probability, or 'off'); None keeps the
    model's band, ended at the new threshold. The band is chosen on the same scores as the threshold."""
    if (target is None) == (threshold is None):
        raise ValueError("give either a calibration target or a threshold, not both or neither")
    if target is not None:
        target = parse_target(target).text
    elif not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be within 0..1; got {threshold}")
    loaded = load_model(model_path)
    meta = loaded.meta
    choice = evaluation_samples(meta, dataset_for(meta, data_dir, layout=layout, good_dir=good_dir), every_image=every_image)
    chosen = choose_runtime(loaded, runtime)
    yield CalibrationStarted(len(choice.samples), choice.how, chosen.precision)
    data: LoadedSamples | None = None
    for item in load_chosen(choice, meta.preprocessing(), stop=stop):
        if isinstance(item, LoadedSamples):
            data = item
        else:
            yield item
    scores: dict[str, tuple] = {}
    cams: dict[str, list] = {}  # the raw CAMs of the images per precision, for the heat scale

    def scored(runtime_now):
        """(labels, p) of the images in a precision, scoring them first if needed."""
        if runtime_now.precision not in scores:
            inspector = RecordingInspector(loaded, runtime_now)
            scores[runtime_now.precision] = scores_arrays(evaluate_loaded(inspector, data, stop=stop))
            cams[runtime_now.precision] = inspector.cams
        return scores[runtime_now.precision]

    def choose(runtime_now, at: float | None = threshold) -> Calibration:
        labels, probs = scored(runtime_now)
        return calibrate(labels, probs, target) if at is None else at_threshold(labels, probs, float(at), target=target or "manual")

    notes: list[str] = []
    for _ in range(MAX_ROUNDS):
        result = choose(chosen)
        there = choose_runtime(loaded, runtime, threshold=result.threshold)
        if there.precision == chosen.precision:
            break
        notes.append(
            f"at threshold {result.threshold:.4f} the line runs {there.precision}, not {chosen.precision} "
            f"({there.note}); scored again in {there.precision}"
        )
        chosen = there
    else:
        if target == "no-miss":  # settle where no precision tried misses anything: the lowest of their thresholds
            lowest = min(calibrate(*scores[p], target).threshold for p in scores)
            chosen = choose_runtime(loaded, runtime, threshold=lowest)
            result = choose(chosen, lowest)
        else:
            result = choose(chosen)
        notes.append(f"the precision did not settle; the threshold was chosen on {chosen.precision}'s scores")
    labels, probs = scores[chosen.precision]
    if review_band is None:
        accept = meta.accept_threshold if meta.accept_threshold is not None and meta.accept_threshold < result.threshold else None
    else:
        accept = band_accept(labels, probs, result.threshold, review_band)
    result = at_threshold(labels, probs, result.threshold, target=result.target, accept=accept)
    table = tuple(calibration_table(labels, probs))
    try:
        scale = measure_cam_scale(cams[chosen.precision], labels, source=f"{choice.how} at calibration")
    except ScaleError:
        scale = None  # the images cannot give one: the model keeps the scale it has
    if not dry_run:
        store_calibration(
            model_path, result, table=table, source=choice.how, data=str(Path(data_dir)), precision=chosen.precision, heat_scale=scale
        )
    yield CalibrationDone(
        result, table, chosen.precision, choice.how, str(model_path), float(meta.threshold), not dry_run, tuple(notes), scale
    )
