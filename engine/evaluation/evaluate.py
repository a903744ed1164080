"""Evaluate a model on labelled images: image metrics, pixel AUROC and box recall where masks exist."""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.data.images import LoadedSamples, load_samples
from engine.data.layouts import DatasetIndex, Sample, split_dataset
from engine.errors import Cancelled
from engine.evaluation.metrics import EvalReport, SampleScore, box_recall, image_metrics, pixel_auroc
from engine.inference.inspector import Inspector
from engine.inference.localize import normalize_heatmap, upsample
from engine.modelfile import ModelMeta
from engine.thresholds import Thresholds
from engine.types import Verdict


@dataclass(frozen=True)
class SampleChoice:
    """The images an evaluation or calibration uses, and the rule that chose them, in words."""

    samples: tuple[Sample, ...]
    how: str


def _same_root(meta: ModelMeta, index: DatasetIndex) -> bool:
    root = meta.dataset.get("root")
    try:
        return bool(root) and Path(root).resolve() == Path(index.root).resolve()
    except OSError:
        return False


def evaluation_samples(meta: ModelMeta, index: DatasetIndex, *, every_image: bool = False) -> SampleChoice:
    """The one rule for which images evaluate, calibrate, the Evaluate tab and the Train tab use.

    The model's recorded held-out files when the dataset has them all; on the model's own dataset whose
    files changed, the same seeded split (it may then hold training images, and says so); on any
    other dataset every image (none of them was trained on); every image when asked.
    """
    name = Path(index.root).name
    if every_image:
        return SampleChoice(index.samples, f"every image of {name} ({len(index.samples)})")
    recorded = meta.dataset.get("held_out") or []
    by_rel = {str(s.path.relative_to(index.root)): s for s in index.samples}
    if recorded and all(r in by_rel for r in recorded):
        return SampleChoice(tuple(by_rel[r] for r in recorded), f"the model's {len(recorded)} held-out images")
    if _same_root(meta, index) and "split_seed" in meta.dataset:
        split = split_dataset(
            index, test_fraction=float(meta.dataset.get("test_fraction", 0.2)), seed=int(meta.dataset["split_seed"])
        )
        how = (
            f"a {split.test_fraction:.0%} split of {name} with the model's seed {split.seed} "
            "(the dataset changed since training: some of these images may have been trained on)"
        )
        return SampleChoice(split.test, how)
    return SampleChoice(index.samples, f"every image of {name} ({len(index.samples)}; not the model's training dataset)")


def evaluate_loaded(
    inspector: Inspector,
    data: LoadedSamples,
    *,
    thresholds: Thresholds | None = None,
    batch_size: int = 10,
    stop: threading.Event | None = None,
) -> EvalReport:
    """Metrics for already decoded, resized samples (the model-input resolution is the metric grid); a tiled model is
    evaluated on its samples' whole images instead (evaluation/tiled.py)."""
    thresholds = inspector.thresholds if thresholds is None else thresholds
    if inspector.meta.tile:
        from engine.evaluation.tiled import evaluate_tiled

        return evaluate_tiled(inspector, data.samples, thresholds=thresholds, stop=stop)[0]
    size = inspector.preprocess.size
    probs, ood, heat, boxes, used_masks = [], [], [], [], []
    for start in range(0, len(data.samples), batch_size):
        if stop is not None and stop.is_set():
            raise Cancelled("evaluation was cancelled")
        batch = torch.from_numpy(data.images[start : start + batch_size])
        out = inspector.forward(inspector.preprocess.normalize(batch))
        probs.extend(out.p_anomaly.tolist())
        ood.extend([None] * len(out.p_anomaly) if out.ood_scores is None else out.ood_scores.tolist())
        for j, cam in enumerate(out.cams):
            mask = data.masks[start + j] if data.masks else None
            if mask is not None:
                raw = upsample(cam, size, size)
                heat.append(raw)
                boxes.append(thresholds.boxes(normalize_heatmap(raw), float(out.p_anomaly[j])))
                used_masks.append(mask)
    labels = [s.label for s in data.samples]
    m = image_metrics(labels, probs, thresholds.decision)
    has_defect_masks = any(mask.any() for mask in used_masks)
    pix = pixel_auroc(heat, used_masks) if has_defect_masks else None
    recall, _regions = box_recall(boxes, used_masks) if has_defect_masks else (None, 0)
    predicted = thresholds.verdicts(probs)
    scores = tuple(
        SampleScore(str(s.path), s.defect_type, s.label, float(p), int(v), None if d is None else float(d))
        for s, p, v, d in zip(data.samples, probs, predicted, ood)
    )
    verdicts = [thresholds.verdict(p, ood_score=d) for p, d in zip(probs, ood)]
    return EvalReport(
        **m, pixel_auroc=pix, box_recall=recall, n_masks=sum(1 for mk in used_masks if mk.any()),
        accept=thresholds.accept, review=sum(v is Verdict.REVIEW for v in verdicts), ood_limit=thresholds.ood_limit,
        not_product=sum(v is Verdict.NOT_PRODUCT for v in verdicts), scores=scores,
    )  # fmt: skip


def evaluate(
    inspector: Inspector,
    samples: Sequence[Sample],
    *,
    thresholds: Thresholds | None = None,
    batch_size: int = 10,
    workers: int = 2,
    stop: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[EvalReport, tuple[str, ...]]:
    """Decode samples and evaluate; returns the report and the files that could not be read."""
    data = load_samples(samples, inspector.preprocess, workers=workers, with_masks=True, stop=stop, progress=progress)
    return evaluate_loaded(inspector, data, thresholds=thresholds, batch_size=batch_size, stop=stop), data.errors


def scores_arrays(report: EvalReport) -> tuple[np.ndarray, np.ndarray]:
    """(labels, p_anomaly) arrays of a report, for calibration and histograms."""
    return (
        np.array([s.label for s in report.scores], dtype=int),
        np.array([s.p_anomaly for s in report.scores], dtype=float),
    )
