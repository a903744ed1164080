"""First-run demo: build a synthetic product and a small model for it offline, so a new station shows itself working.

`prepare_demo` generates a synthetic MVTec-layout dataset under data_dir()/demo, trains a small
random-init VGG16-BN CAM model on it (no ImageNet download, well under two minutes on two CPU cores),
saves it as weights_dir()/demo-synthetic.safetensors and lays out a shuffled "line" folder of test
parts to replay as a looping source. It yields DemoProgress events and ends with DemoReady. Qt-free.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import Cancelled, VisInspectError
from engine.paths import data_dir, weights_dir

DEMO_MODEL_NAME = "demo-synthetic.safetensors"
DEMO_PRODUCT = "demo-synthetic"
DEMO_IMAGE_SIZE = 128  # pixels of the generated parts; the model sees them at demo_config().image_size
DEMO_SEED = 0
GOOD_ENOUGH = 0.9  # held-out balanced accuracy at which a training attempt is kept
# (input size, seed) tried in turn until one is good enough: random init is less steady than ImageNet.
# 96 px gives a 6x6 activation map, so demo heatmaps and boxes sit on the defect; 64 px is the quick fallback.
ATTEMPTS = ((96, 0), (64, 0), (64, 2))
EXPECTED_EPOCHS = 14  # early stopping usually ends training about here; the progress bar is scaled to it
LINE_FOLDER = "line"


def demo_config(image_size: int = 96, seed: int = 0):
    """The demo's training recipe: small random-init VGG16-BN, early stop on training accuracy."""
    from engine.training import TrainConfig

    return TrainConfig(backbone="vgg16_bn", backbone_weights="none", image_size=image_size, epochs=30, lr=1e-3, seed=seed)


@dataclass(frozen=True)
class DemoProgress:
    """How far preparation is (fraction 0..1) and what it is doing, in one line for a progress bar."""

    fraction: float
    message: str
    detail: object | None = None  # the training event behind this report, if any


@dataclass(frozen=True)
class DemoReady:
    """The demo model and the looping folder of parts to show it on."""

    model_path: Path
    line_folder: Path
    dataset: Path
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0
    reused: bool = False  # True when an earlier run's model and folder were found and kept


def demo_paths(out_dir: str | Path | None = None, model_dir: str | Path | None = None) -> tuple[Path, Path, Path]:
    """(model file, line folder, dataset folder) where the demo lives."""
    root = Path(out_dir) if out_dir is not None else data_dir() / "demo"
    model = (Path(model_dir) if model_dir is not None else weights_dir()) / DEMO_MODEL_NAME
    return model, root / LINE_FOLDER, root / "dataset"


def existing_demo(out_dir: str | Path | None = None, model_dir: str | Path | None = None) -> DemoReady | None:
    """The demo from an earlier run when its model file is valid and its line folder has images."""
    from engine.modelfile import read_meta

    model, line, dataset = demo_paths(out_dir, model_dir)
    try:
        meta = read_meta(model)
    except VisInspectError:
        return None
    if not line.is_dir() or not any(line.glob("*.png")):
        return None
    return DemoReady(model_path=model, line_folder=line, dataset=dataset, metrics=dict(meta.metrics), reused=True)


def _make_line(dataset: Path, line: Path, seed: int) -> int:
    """Copy the dataset's test parts into line/ in a seeded shuffled order (part-0001.png ...); returns the count."""
    from engine.sources import list_images

    parts = list_images(dataset / "test")
    order = np.random.default_rng(seed).permutation(len(parts))
    if line.exists():
        shutil.rmtree(line)
    line.mkdir(parents=True)
    for n, i in enumerate(order, start=1):
        shutil.copyfile(parts[i], line / f"part-{n:04d}.png")
    return len(parts)


def _check(stop: threading.Event) -> None:
    """Raise Cancelled once stop is set."""
    if stop.is_set():
        raise Cancelled("demo preparation was cancelled; no model was saved")


def prepare_demo(
    *,
    stop: threading.Event,
    out_dir: str | Path | None = None,
    model_dir: str | Path | None = None,
    force: bool = False,
    config=None,
) -> Iterator[DemoProgress | DemoReady]:
    """Generate the synthetic product, train and save its model, lay out the line folder; yield progress, then DemoReady.

    An earlier complete demo is reused unless force. config overrides the training recipe (tests);
    without it the ATTEMPTS recipes are tried in turn until one reaches GOOD_ENOUGH held-out
    balanced accuracy, keeping the best. Raises Cancelled when stop is set; a partial model is never written.
    """
    from engine.data.layouts import load_dataset
    from engine.data.synthetic import generate_dataset
    from engine.modelfile import save_model
    from engine.training import DataReady, EpochReport, StepReport, TrainResult, train

    t0 = time.perf_counter()
    model_path, line, dataset = demo_paths(out_dir, model_dir)
    if not force and (found := existing_demo(out_dir, model_dir)) is not None:
        yield DemoProgress(1.0, "Demo model found")
        yield found
        return

    yield DemoProgress(0.0, "Generating synthetic parts...")
    generate_dataset(dataset, image_size=DEMO_IMAGE_SIZE, seed=DEMO_SEED)
    _check(stop)
    n_parts = _make_line(dataset, line, DEMO_SEED)
    index = load_dataset(dataset)
    yield DemoProgress(0.05, f"Generated {len(index.samples)} images ({index.describe()})")

    configs = [config] if config is not None else [demo_config(size, seed) for size, seed in ATTEMPTS]
    best: TrainResult | None = None
    base, span = 0.05, 0.9  # each attempt fills the bar again; its label says which attempt it is
    for attempt, cfg in enumerate(configs):
        _check(stop)
        label = "Training demo model" if attempt == 0 else f"Training demo model (attempt {attempt + 1})"
        for event in train(index, cfg, product=DEMO_PRODUCT, stop=stop):
            if isinstance(event, DataReady):
                yield DemoProgress(base, f"{label}: {event.n_train} training images on {event.device}", event)
            elif isinstance(event, StepReport):
                done = min(0.98, (event.epoch - 1 + event.step / event.steps) / min(event.epochs, EXPECTED_EPOCHS))
                yield DemoProgress(base + span * done, f"{label}: epoch {event.epoch}, loss {event.loss:.3f}", event)
            elif isinstance(event, EpochReport):
                yield DemoProgress(
                    base + span * min(0.98, event.epoch / min(event.epochs, EXPECTED_EPOCHS)),
                    f"{label}: epoch {event.epoch} done, held-out accuracy {event.test_accuracy:.0%}",
                    event,
                )
            elif isinstance(event, TrainResult):
                score = event.meta.metrics.get("balanced_accuracy", 0.0)
                if best is None or score > best.meta.metrics.get("balanced_accuracy", 0.0):
                    best = event
        if best is not None and best.meta.metrics.get("balanced_accuracy", 0.0) >= GOOD_ENOUGH:
            break
    _check(stop)
    if best is None:
        raise VisInspectError("demo training ended without a model")
    yield DemoProgress(0.97, "Saving demo model...")
    save_model(model_path, best.model, best.meta, calibration=best.calibration, ood=best.ood)
    metrics = dict(best.meta.metrics)
    yield DemoProgress(1.0, f"Demo ready: {n_parts} parts, held-out accuracy {metrics.get('accuracy', 0.0):.0%}")
    yield DemoReady(
        model_path=model_path,
        line_folder=line,
        dataset=dataset,
        metrics=metrics,
        seconds=time.perf_counter() - t0,
    )
