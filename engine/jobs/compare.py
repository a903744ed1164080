"""The compare job: an old and a new model of a product on the same held-out images, before the new one goes live.

A retrained model splits its grown dataset afresh, so the two models' held-out sets differ. The images used are
those neither model was trained on: held out by the new model, and either held out by the old one or added to the
dataset (labelled feedback copies) after the old one was trained. When that leaves no good or no defective image,
the new model's held-out images are used and the comparison says the old model may have trained on some of them.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.data.images import LoadedSamples
from engine.data.layouts import DatasetIndex
from engine.evaluation.evaluate import SampleChoice, evaluate_loaded, evaluation_samples
from engine.evaluation.metrics import EvalReport
from engine.feedback import PREFIX, trained_since
from engine.inference.inspector import Inspector
from engine.jobs.evaluate import LoadProgress, dataset_for, load_chosen
from engine.modelfile import ModelMeta
from engine.types import RuntimeOptions

METRICS = (("accuracy", "Accuracy"), ("balanced_accuracy", "Balanced accuracy"), ("image_auroc", "Image AUROC"))


@dataclass(frozen=True)
class CompareStarted:
    """The n images both models are scored on, and the rule that chose them, in words."""

    n: int
    how: str


@dataclass(frozen=True, eq=False)
class CompareDone:
    """Both models' reports on the same images."""

    old: EvalReport
    new: EvalReport
    how: str
    old_path: str
    new_path: str

    def rows(self) -> list[tuple[str, float | None, float | None]]:
        """(metric name, old value, new value) for accuracy, balanced accuracy and image AUROC."""
        return [(name, getattr(self.old, key), getattr(self.new, key)) for key, name in METRICS]

    def table(self) -> str:
        """A plain-text old-vs-new table for the terminal."""
        def fmt(v):
            return "n/a" if v is None else f"{v:.3f}"

        lines = [f"{'':20} {'old':>8} {'new':>8}", f"{'images':20} {self.old.n:>8} {self.new.n:>8}"]
        lines += [f"{name:20} {fmt(o):>8} {fmt(n):>8}" for name, o, n in self.rows()]
        return "\n".join(lines)


def comparison_samples(old: ModelMeta, new: ModelMeta, index: DatasetIndex) -> SampleChoice:
    """The images neither model was trained on (see the module docstring), or the new model's held-out images."""
    fallback = evaluation_samples(new, index)
    old_held = set(old.dataset.get("held_out") or [])
    since = trained_since(old)
    chosen = []
    for sample in fallback.samples:
        rel = str(sample.path.relative_to(index.root))
        added = sample.path.name.startswith(PREFIX) and _mtime(sample.path) >= since
        if rel in old_held or added:
            chosen.append(sample)
    if any(s.label == 0 for s in chosen) and any(s.label == 1 for s in chosen):
        return SampleChoice(tuple(chosen), f"the {len(chosen)} held-out images neither model was trained on")
    return SampleChoice(fallback.samples, f"{fallback.how}; the old model may have been trained on some of them")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _report(inspector: Inspector, choice: SampleChoice, stop: threading.Event) -> Iterator[LoadProgress | EvalReport]:
    data = None
    for item in load_chosen(choice, inspector.preprocess, stop=stop):
        if isinstance(item, LoadedSamples):
            data = item
        else:
            yield item
    yield evaluate_loaded(inspector, data, stop=stop)


def compare_job(
    old_path: str | os.PathLike,
    new_path: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    *,
    runtime: RuntimeOptions = RuntimeOptions(),
    stop: threading.Event,
) -> Iterator[CompareStarted | LoadProgress | CompareDone]:
    """Score both models, in the runtime the line uses, on the same images of data_dir (default: the new model's dataset)."""
    old, new = Inspector.open(old_path, runtime), Inspector.open(new_path, runtime)
    folder = data_dir if data_dir is not None else new.meta.dataset.get("root", "")
    choice = comparison_samples(old.meta, new.meta, dataset_for(new.meta, folder))
    yield CompareStarted(len(choice.samples), choice.how)
    reports = []
    for inspector in (old, new):
        for item in _report(inspector, choice, stop):
            if isinstance(item, EvalReport):
                reports.append(item)
            else:
                yield item
    yield CompareDone(reports[0], reports[1], choice.how, str(Path(old_path)), str(Path(new_path)))
