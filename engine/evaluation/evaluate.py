"""Evaluate a model on labelled images: image metrics, pixel AUROC and box recall where masks exist."""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np
import torch

from engine.data.images import LoadedSamples, load_samples
from engine.data.layouts import DatasetIndex, Sample, split_dataset
from engine.errors import Cancelled
from engine.evaluation.metrics import EvalReport, SampleScore, box_recall, image_metrics, pixel_auroc
from engine.inference.inspector import Inspector
from engine.inference.localize import heatmap_to_boxes, normalize_heatmap, upsample
from engine.modelfile import ModelMeta


def evaluate_loaded(
    inspector: Inspector,
    data: LoadedSamples,
    *,
    threshold: float | None = None,
    batch_size: int = 10,
    stop: threading.Event | None = None,
) -> EvalReport:
    """Metrics for already decoded, resized samples (the model-input resolution is the metric grid)."""
    threshold = inspector.threshold if threshold is None else threshold
    size = inspector.preprocess.size
    probs, heat, norm_heat, used_masks, masked_probs = [], [], [], [], []
    for start in range(0, len(data.samples), batch_size):
        if stop is not None and stop.is_set():
            raise Cancelled("evaluation was cancelled")
        batch = torch.from_numpy(data.images[start : start + batch_size])
        out = inspector.forward(inspector.preprocess.normalize(batch))
        probs.extend(out.p_anomaly.tolist())
        for j, cam in enumerate(out.cams):
            mask = data.masks[start + j] if data.masks else None
            if mask is not None:
                raw = upsample(cam, size, size)
                heat.append(raw)
                norm_heat.append(normalize_heatmap(raw))
                used_masks.append(mask)
                masked_probs.append(float(out.p_anomaly[j]))
    labels = [s.label for s in data.samples]
    m = image_metrics(labels, probs, threshold)
    has_defect_masks = any(mask.any() for mask in used_masks)
    pix = pixel_auroc(heat, used_masks) if has_defect_masks else None
    recall, n_regions = (None, 0)
    if has_defect_masks:
        boxes = [
            heatmap_to_boxes(h, threshold=inspector.box_threshold, min_area_fraction=inspector.min_area_fraction)
            if p >= threshold
            else ()
            for h, p in zip(norm_heat, masked_probs)
        ]
        recall, n_regions = box_recall(boxes, used_masks)
    scores = tuple(
        SampleScore(str(s.path), s.defect_type, s.label, float(p), int(p >= threshold))
        for s, p in zip(data.samples, probs)
    )
    return EvalReport(**m, pixel_auroc=pix, box_recall=recall, n_masks=sum(1 for mk in used_masks if mk.any()), scores=scores)


def evaluate(
    inspector: Inspector,
    samples: Sequence[Sample],
    *,
    threshold: float | None = None,
    batch_size: int = 10,
    workers: int = 2,
    stop: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[EvalReport, tuple[str, ...]]:
    """Decode samples and evaluate; returns the report and the files that could not be read."""
    data = load_samples(samples, inspector.preprocess, workers=workers, with_masks=True, stop=stop, progress=progress)
    return evaluate_loaded(inspector, data, threshold=threshold, batch_size=batch_size, stop=stop), data.errors


def scores_arrays(report: EvalReport) -> tuple[np.ndarray, np.ndarray]:
    """(labels, p_anomaly) arrays of a report, for calibration and histograms."""
    return (
        np.array([s.label for s in report.scores], dtype=int),
        np.array([s.p_anomaly for s in report.scores], dtype=float),
    )


def held_out_samples(meta: ModelMeta, index: DatasetIndex) -> tuple[tuple[Sample, ...], str]:
    """The samples a model was not trained on: its recorded held-out files, else the same seeded split.

    Returns the samples and a short note saying which rule chose them.
    """
    recorded = meta.dataset.get("held_out") or []
    by_rel = {str(s.path.relative_to(index.root)): s for s in index.samples}
    if recorded and all(r in by_rel for r in recorded):
        return tuple(by_rel[r] for r in recorded), f"the model's {len(recorded)} held-out images"
    if "split_seed" in meta.dataset:
        split = split_dataset(
            index, test_fraction=float(meta.dataset.get("test_fraction", 0.2)), seed=int(meta.dataset["split_seed"])
        )
        return split.test, f"a {split.test_fraction:.0%} split with the model's seed {split.seed} (files differ from training)"
    return index.samples, "every image (the model records no split)"
