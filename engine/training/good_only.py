"""Good-only training: a one-class PaDiM fitted on good images; defect images in the dataset only evaluate it.

Yields the same typed events as the supervised recipe (DataReady, StepReport per feature batch, one
EpochReport, TrainResult), so the command line and the Train tab show it the same way.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from engine.data.images import load_samples
from engine.data.layouts import DatasetIndex, split_dataset
from engine.data.preprocess import Preprocess
from engine.errors import Cancelled, DatasetError
from engine.evaluation.evaluate import evaluate_loaded
from engine.inference.device import resolve_device
from engine.inference.inspector import RecordingInspector
from engine.inference.localize import GOOD_LEVEL, CamScale, ScaleError, measure_cam_scale
from engine.inference.runtime import choose_runtime
from engine.inference.trace_gate import GATE
from engine.model import build_model, padim_from
from engine.model.padim import STAGES, fit_gaussians, score_mapping
from engine.modelfile import METHODS, LoadedModel, ModelMeta
from engine.training.config import TrainConfig
from engine.training.ood_fit import fit_guard
from engine.training.recipe import DataReady, EpochReport, StepReport, TrainResult
from engine.training.tiled_data import load_tiles, tiled_peaks
from engine.types import RuntimeOptions

MIN_GOOD = 4  # two to fit on at the very least, and held-out good parts to set the score mapping


@dataclass(frozen=True)
class ModeChosen:
    """Which training ran (supervised or good-only) and why, in words."""

    mode: str
    reason: str


FEW_DEFECTS = 10  # below this many labelled defects a supervised model rarely beats a one-class one (DRA, CVPR 2022; docs/results.md)


def choose_mode(requested: str, dataset: DatasetIndex) -> ModeChosen:
    """auto: supervised when the dataset has defect images to train on (2 or more), else good-only; others as asked."""
    if requested == "good-only":
        return ModeChosen("good-only", f"asked for: fitted on good images only; the {dataset.n_anomaly} defective images only evaluate it")
    if requested == "supervised":
        if dataset.n_anomaly < 2:
            raise DatasetError(
                f"{dataset.root}: supervised training needs at least 2 defective images; found {dataset.n_anomaly} "
                "(train good-only instead)"
            )
        return ModeChosen("supervised", "asked for")
    if dataset.n_anomaly >= 2:
        why = f"the dataset has {dataset.n_anomaly} defective images"
        if dataset.n_anomaly < FEW_DEFECTS:  # docs/results.md: the learning curve
            why += f"; with fewer than {FEW_DEFECTS}, good-only often scores as well or better: compare both on the same held-out images"
        return ModeChosen("supervised", why)
    return ModeChosen(
        "good-only", f"the dataset has {dataset.n_anomaly} defective images: a one-class model is fitted on good images only"
    )


def _check_stop(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise Cancelled("training was cancelled; no model was saved")


def _bce(p: np.ndarray, labels: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities against labels (the loss the curves show)."""
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))) if len(p) else math.nan


def good_only_scale(cams, labels, source: str) -> CamScale | None:
    """The absolute heat scale: measured with defects where the held-out images have them, else from good parts only
    (their hottest peak at GOOD_LEVEL, the median of good peaks at 0)."""
    try:
        return measure_cam_scale(cams, labels, source=source)
    except ScaleError:
        pass
    peaks = np.array([float(np.max(c)) for c, y in zip(cams, labels) if y == 0])
    if len(peaks) < 2 or not np.isfinite(peaks).all():
        return None
    med, top = float(np.median(peaks)), float(np.percentile(peaks, 99))
    try:
        return CamScale(med, med + (top - med) / GOOD_LEVEL, GOOD_LEVEL, f"{source} (good parts only)", len(peaks), 0)
    except ScaleError:
        return None


def train_good_only(
    dataset: DatasetIndex,
    config: TrainConfig = TrainConfig(),
    *,
    product: str,
    runtime: RuntimeOptions | None = None,
    stop: threading.Event | None = None,
) -> Iterator[DataReady | StepReport | EpochReport | TrainResult]:
    """Fit PaDiM on the training split's good images; held out: the held-out split and every defect image.

    The split is the supervised recipe's (same seed and share) where the dataset has defects, so both modes are
    scored on the same held-out images; with fewer than 2 defect images, a split of the good images.
    """
    t_start = time.perf_counter()
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    cam, origin = build_model(backbone=config.backbone, backbone_weights=config.backbone_weights, trainable="head")
    preprocess = Preprocess(config.image_size)
    good = replace(dataset, samples=tuple(s for s in dataset.samples if s.label == 0))
    if good.n_good < MIN_GOOD:
        raise DatasetError(f"{dataset.root}: good-only training needs at least {MIN_GOOD} good images; found {good.n_good}")
    split = split_dataset(dataset if dataset.n_anomaly >= 2 else good, test_fraction=config.test_fraction, seed=config.seed)
    held = {s.path for s in split.test} | {s.path for s in dataset.samples if s.label == 1}
    held_out = tuple(s for s in dataset.samples if s.path in held)  # dataset order
    train_good = tuple(s for s in split.train if s.label == 0)
    if config.tile:  # every tile of a good image is a good sample
        train_data = load_tiles(
            train_good, preprocess, tile=config.tile, overlap=config.tile_overlap, workers=config.workers, stop=stop
        )
    else:
        train_data = load_samples(train_good, preprocess, workers=config.workers, stop=stop)
    test_data = load_samples(held_out, preprocess, workers=config.workers, with_masks=True, stop=stop)
    if len(train_data.samples) < 2:
        raise DatasetError(f"{dataset.root}: fewer than 2 readable good training images")
    yield DataReady(
        n_train=len(train_data.samples), n_test=len(test_data.samples), counts=dataset.counts(),
        skipped=train_data.errors + test_data.errors, device=str(device), backbone_origin=origin.describe(),
    )  # fmt: skip

    t0 = time.perf_counter()
    model = padim_from(cam.stem, cam.block5, image_size=config.image_size, dims=config.padim_dims, seed=config.seed)
    model.to(device).eval()
    n, chunks = len(train_data.samples), []
    steps = (n + config.batch_size - 1) // config.batch_size
    with torch.no_grad():
        for step in range(steps):
            _check_stop(stop)
            batch = torch.from_numpy(train_data.images[step * config.batch_size : (step + 1) * config.batch_size])
            with GATE.model_call():
                chunks.append(model.chosen_features(preprocess.normalize(batch.to(device))).cpu().numpy())
            yield StepReport(1, 1, step + 1, steps, math.nan)  # no loss while features are gathered
    features = np.concatenate(chunks)
    mean, precision = fit_gaussians(features, stop=stop)
    model.gaussian.mean.copy_(torch.from_numpy(mean))
    model.gaussian.precision.copy_(torch.from_numpy(precision))
    with torch.no_grad():
        train_peaks = model.gaussian.distances(torch.from_numpy(features).to(device), model.grid).flatten(1).amax(1).cpu().numpy()
        if config.tile:
            test_peaks = tiled_peaks(model, preprocess, test_data.samples, tile=config.tile, overlap=config.tile_overlap,
                                     device=device, batch_size=config.batch_size, stop=stop)  # fmt: skip
        else:
            test_peaks = _peaks(model, preprocess, test_data.images, config.batch_size, device, stop)
    test_labels = np.array([s.label for s in test_data.samples])
    good_peaks = test_peaks[test_labels == 0]
    mapped_on = f"{len(good_peaks)} held-out good images"
    if len(good_peaks) < 2:  # too few held out: the training images' own scores (lower than new parts' will be)
        good_peaks, mapped_on = train_peaks, f"{len(train_peaks)} training good images (too few held out)"
    log_centre, width = score_mapping(good_peaks)
    model.gaussian.score_map.copy_(torch.tensor([log_centre, width]))
    fit_seconds = time.perf_counter() - t0

    root = Path(dataset.root)
    meta = ModelMeta(
        product=product,
        backbone=config.backbone,
        backbone_weights={"kind": origin.kind, "detail": origin.detail},
        preprocess=preprocess.to_dict(),
        trainable="none",
        method="padim",
        architecture=METHODS["padim"],
        one_class={
            "dims": model.dims, "grid": model.grid, "stages": list(STAGES), "score_map": [log_centre, width],
            "score_mapped_on": mapped_on, "fitted_on": f"{n} good {'tiles' if config.tile else 'images'}",
            "fit_seconds": round(fit_seconds, 2),
        },  # fmt: skip
        tile=config.tile or None,
        tile_overlap=config.tile_overlap if config.tile else 0,
        dataset={
            **dataset.summary(), "split_seed": split.seed, "test_fraction": split.test_fraction,
            "held_out": [str(s.path.relative_to(root)) for s in test_data.samples],
        },  # fmt: skip
        training={
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
            "mode": "good-only", "epochs_run": 1, "device": str(device),
            "skipped_files": list(train_data.errors + test_data.errors),
        },  # fmt: skip
    )
    _check_stop(stop)
    guard = fit_guard(model, "padim", preprocess, train_data.images, batch_size=config.batch_size, device=device,
                      source=f"{n} training good images", stop=stop)  # fmt: skip
    if guard is not None:
        meta = replace(meta, ood=guard.to_meta(), ood_limit=guard.limit)
    in_memory = LoadedModel(model, meta, Path("<in memory>"), "", None, guard)
    chosen = choose_runtime(in_memory, runtime or RuntimeOptions(device=str(device)))
    inspector = RecordingInspector(in_memory, chosen)
    report = evaluate_loaded(inspector, test_data, batch_size=config.batch_size, stop=stop)  # tiled: whole images
    _check_stop(stop)
    p_train = 1.0 / (1.0 + np.exp(-(np.log(np.maximum(train_peaks, 1e-12)) - log_centre) / width))
    p_test = np.array([s.p_anomaly for s in report.scores])
    epoch = EpochReport(
        epoch=1, epochs=1, train_loss=_bce(p_train, np.zeros(n)), train_accuracy=float(np.mean(p_train < meta.threshold)),
        test_loss=_bce(p_test, test_labels), test_accuracy=report.accuracy, seconds=time.perf_counter() - t0,
    )  # fmt: skip
    yield epoch
    scale = good_only_scale(inspector.cams, test_labels, f"{len(test_labels)} held-out images at training")
    meta = replace(
        meta,
        metrics=report.metrics(),
        heat_scale=scale.to_dict() if scale is not None else {},
        training={**meta.training, "evaluated_in": chosen.precision, "seconds": round(time.perf_counter() - t_start, 1),
                  "history": [asdict(epoch)]},  # fmt: skip
    )
    yield TrainResult(
        model, meta, report, (epoch,), train_data.errors + test_data.errors, time.perf_counter() - t_start, None,
        chosen.precision, chosen.note, guard,
    )


def _peaks(model, preprocess: Preprocess, images: np.ndarray, batch_size: int, device, stop) -> np.ndarray:
    """The image scores (peak distances) of resized images, in fp32."""
    peaks = []
    for start in range(0, len(images), batch_size):
        _check_stop(stop)
        x = preprocess.normalize(torch.from_numpy(images[start : start + batch_size]).to(device))
        with GATE.model_call():
            peaks.append(model.forward_features(x).flatten(1).amax(1).cpu().numpy())
    return np.concatenate(peaks) if peaks else np.zeros(0, np.float32)
