"""The evaluate job: a model file on a dataset folder, in the runtime the line uses -> report, then a gallery.

`visinspect eval` and the station's Evaluate tab run it; the calibrate job and the Train tab choose
their images by the same rule (engine.evaluation.evaluate.evaluation_samples).
"""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.data.images import LoadedSamples, load_samples
from engine.data.layouts import DatasetIndex, load_dataset
from engine.data.preprocess import Preprocess
from engine.errors import VisInspectError
from engine.evaluation.evaluate import SampleChoice, evaluate_loaded, evaluation_samples
from engine.evaluation.metrics import EvalReport
from engine.evaluation.report import GalleryEntry, iter_gallery
from engine.inference.inspector import Inspector
from engine.modelfile import ModelMeta
from engine.types import ModelRef, RuntimeOptions

LOAD_CHUNK = 32  # images decoded between two progress events


@dataclass(frozen=True)
class EvalStarted:
    """The images are chosen (n of them, and the rule in words) and the model runs as `runtime` says."""

    n: int
    how: str
    meta: ModelMeta
    runtime: str  # e.g. "CPU: x86_64, 2 threads · int8"
    precision: str
    precision_note: str


@dataclass(frozen=True)
class LoadProgress:
    """done of total images decoded."""

    done: int
    total: int


@dataclass(frozen=True, eq=False)
class EvalDone:
    """The report on the chosen images, the files that could not be read, and where it all came from."""

    report: EvalReport
    errors: tuple[str, ...]
    how: str
    meta: ModelMeta
    model_path: str
    data_dir: str
    precision: str
    model: ModelRef


def dataset_for(meta: ModelMeta, data_dir: str | os.PathLike, *, layout: str | None = None, good_dir: str | None = None) -> DatasetIndex:
    """Index data_dir with the layout and good-image folder the model was trained with, unless others are given (defect
    images optional)."""
    return load_dataset(
        data_dir,
        layout=layout or meta.dataset.get("layout", "auto"),
        good_dir=good_dir or meta.dataset.get("good_dir", "good"),
        min_defective=0,  # good images alone can be evaluated and calibrated (max-false-reject)
    )


def load_chosen(choice: SampleChoice, preprocess: Preprocess, *, stop: threading.Event) -> Iterator[LoadProgress | LoadedSamples]:
    """Decode the chosen images in chunks, yielding progress, then the LoadedSamples (none readable: VisInspectError)."""
    samples = choice.samples
    parts: list[LoadedSamples] = []
    for start in range(0, len(samples), LOAD_CHUNK):
        parts.append(load_samples(samples[start : start + LOAD_CHUNK], preprocess, with_masks=True, stop=stop))
        yield LoadProgress(min(start + LOAD_CHUNK, len(samples)), len(samples))
    size = preprocess.size
    data = LoadedSamples(
        images=np.concatenate([p.images for p in parts]) if parts else np.zeros((0, size, size, 3), np.uint8),
        samples=tuple(s for p in parts for s in p.samples),
        masks=tuple(m for p in parts for m in p.masks),
        errors=tuple(e for p in parts for e in p.errors),
    )
    if not data.samples:
        raise VisInspectError(f"none of the {len(samples)} images chosen ({choice.how}) could be read")
    yield data


def evaluate_job(
    model_path: str | os.PathLike,
    data_dir: str | os.PathLike,
    *,
    runtime: RuntimeOptions = RuntimeOptions(),
    layout: str | None = None,
    good_dir: str | None = None,
    every_image: bool = False,
    gallery_limit: int = 0,
    stop: threading.Event,
) -> Iterator[EvalStarted | LoadProgress | EvalDone | GalleryEntry]:
    """Evaluate the model on the images evaluation_samples() chooses, in the runtime the line uses; then a gallery."""
    inspector = Inspector.open(model_path, runtime)
    meta = inspector.meta
    choice = evaluation_samples(meta, dataset_for(meta, data_dir, layout=layout, good_dir=good_dir), every_image=every_image)
    yield EvalStarted(
        len(choice.samples), choice.how, meta, inspector.runtime.describe(), inspector.precision_name, inspector.precision_note
    )
    data = None
    for item in load_chosen(choice, inspector.preprocess, stop=stop):
        if isinstance(item, LoadedSamples):
            data = item
        else:
            yield item
    report = evaluate_loaded(inspector, data, stop=stop)
    yield EvalDone(
        report, data.errors, choice.how, meta, str(Path(model_path)), str(Path(data_dir)), inspector.precision_name, inspector.ref
    )
    if gallery_limit > 0:
        yield from iter_gallery(inspector, report.scores, limit=gallery_limit, stop=stop)
