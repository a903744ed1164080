"""The train job: the founding recipe (or, good-only, a one-class PaDiM) on a dataset -> a saved model file,
its held-out report and a gallery.

`visinspect train` and the station's Train tab run it. The report (and the gallery) are scored in the
precision the line will run the saved model in, so a threshold calibrated on them holds on the line.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from engine.data.layouts import DatasetIndex
from engine.errors import Cancelled, VisInspectError
from engine.evaluation.report import GalleryEntry, iter_gallery
from engine.inference.inspector import Inspector
from engine.inference.runtime import choose_runtime
from engine.modelfile import MODEL_SUFFIX, ModelMeta, file_sha256, save_model
from engine.training import TrainConfig, TrainResult, train
from engine.training.good_only import ModeChosen, choose_mode, train_good_only
from engine.training.recipe import TrainEvent
from engine.types import RuntimeOptions


@dataclass(frozen=True)
class ModelSaved:
    """The trained model was written to path (replacing a file that was there, when replaced)."""

    path: str
    meta: ModelMeta
    replaced: bool


def check_model_path(out: str | os.PathLike) -> Path:
    """The model file to write; ValueError when it does not end in .safetensors."""
    path = Path(out)
    if path.suffix != MODEL_SUFFIX:
        raise ValueError(f"a model file must end in {MODEL_SUFFIX}; got {path.name}")
    return path


def train_job(
    dataset: DatasetIndex,
    config: TrainConfig,
    *,
    product: str,
    out: str | os.PathLike,
    runtime: RuntimeOptions | None = None,
    gallery_limit: int = 0,
    stop: threading.Event,
) -> Iterator[ModeChosen | TrainEvent | ModelSaved | GalleryEntry]:
    """Say which training runs (config.mode; auto: by the dataset's defect count), train, save to out (atomically, only
    once training finished), then yield up to gallery_limit gallery entries."""
    out = check_model_path(out)
    runtime = runtime or RuntimeOptions(device=config.device)
    mode = choose_mode(config.mode, dataset)
    yield mode
    run = train_good_only if mode.mode == "good-only" else train
    result: TrainResult | None = None
    for event in run(dataset, replace(config, mode=mode.mode), product=product, runtime=runtime, stop=stop):
        yield event
        if isinstance(event, TrainResult):
            result = event
    if result is None:
        raise VisInspectError("training ended without a result")
    if stop.is_set():
        raise Cancelled("training was cancelled; no model was saved")
    replaced = out.exists()
    save_model(out, result.model, result.meta, calibration=result.calibration, ood=result.ood)
    yield ModelSaved(str(out), result.meta, replaced)
    if gallery_limit > 0:
        loaded = result.loaded(out.resolve(), file_sha256(out))
        inspector = Inspector(loaded, choose_runtime(loaded, runtime))
        yield from iter_gallery(inspector, result.report.scores, limit=gallery_limit, stop=stop)
