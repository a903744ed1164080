"""Evaluate a tiled model (ModelMeta.tile) on whole images at native resolution, as the line inspects them.

The resized-image evaluation would hide exactly the small defects tiles are for, so images are read at full size,
inspected tile by tile, and pixel AUROC and box recall are measured on a grid of at most EVAL_GRID pixels a side,
masks shrunk so a defect pixel stays a defect pixel.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from engine.data.decode import read_image, read_mask
from engine.data.layouts import Sample
from engine.errors import Cancelled, VisInspectError
from engine.evaluation.metrics import EvalReport, SampleScore, box_recall, image_metrics, pixel_auroc
from engine.inference.inspector import Inspector
from engine.inference.localize import normalize_heatmap, upsample
from engine.inference.tiles import run_tiled
from engine.thresholds import Thresholds

EVAL_GRID = 256  # the longer side of the grid pixel metrics are measured on


def metric_grid(height: int, width: int, limit: int = EVAL_GRID) -> tuple[int, int]:
    """(h, w) of the metric grid: the image's shape, shrunk so its longer side is at most limit."""
    scale = min(1.0, limit / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def grid_mask(sample: Sample, shape: tuple[int, int], grid: tuple[int, int]) -> np.ndarray | None:
    """The sample's mask on the grid (any defect pixel under a cell marks it), zeros for a good image, None without."""
    if sample.label == 0:
        return np.zeros(grid, bool)
    if sample.mask_path is None:
        return None
    try:
        mask = read_mask(sample.mask_path, shape)
    except VisInspectError:
        return None
    return cv2.resize(mask.astype(np.float32), (grid[1], grid[0]), interpolation=cv2.INTER_AREA) > 0


def evaluate_tiled(
    inspector: Inspector,
    samples: Sequence[Sample],
    *,
    thresholds: Thresholds | None = None,
    batch_size: int = 4,
    workers: int = 2,
    stop: threading.Event | None = None,
) -> tuple[EvalReport, list[np.ndarray], tuple[str, ...]]:
    """Metrics of a tiled model on whole images; also each image's stitched raw map and the files that could not be read."""
    thresholds = inspector.thresholds if thresholds is None else thresholds

    def load(sample: Sample):
        try:
            return read_image(sample.path), None
        except VisInspectError as exc:
            return None, str(exc)

    recorded = getattr(inspector, "cams", None)  # a RecordingInspector's maps: per image (stitched) here, not per tile
    before = len(recorded) if isinstance(recorded, list) else 0
    kept, probs, cams, heat, boxes, masks, errors = [], [], [], [], [], [], []
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="load") as pool:
        for start in range(0, len(samples), batch_size):
            if stop is not None and stop.is_set():
                raise Cancelled("evaluation was cancelled")
            chunk = samples[start : start + batch_size]
            loaded = list(pool.map(load, chunk))
            errors.extend(e for _, e in loaded if e)
            ok = [(s, im) for s, (im, _) in zip(chunk, loaded) if im is not None]
            if not ok:
                continue
            outputs, _, _ = run_tiled(inspector, [im for _, im in ok])
            for (sample, image), out in zip(ok, outputs):
                kept.append(sample)
                probs.append(out.p_anomaly)
                cams.append(out.cam)
                grid = metric_grid(*image.shape[:2])
                mask = grid_mask(sample, image.shape[:2], grid)
                if mask is not None:
                    raw = upsample(out.cam, *grid)
                    heat.append(raw)
                    boxes.append(thresholds.boxes(normalize_heatmap(raw), out.p_anomaly))
                    masks.append(mask)
    if isinstance(recorded, list):
        recorded[before:] = cams
    labels = [s.label for s in kept]
    m = image_metrics(labels, probs, thresholds.decision)
    has_defect_masks = any(mask.any() for mask in masks)
    pix = pixel_auroc(heat, masks) if has_defect_masks else None
    recall, _ = box_recall(boxes, masks) if has_defect_masks else (None, 0)
    predicted = thresholds.verdicts(probs)
    scores = tuple(SampleScore(str(s.path), s.defect_type, s.label, float(p), int(v)) for s, p, v in zip(kept, probs, predicted))
    report = EvalReport(**m, pixel_auroc=pix, box_recall=recall, n_masks=sum(1 for mk in masks if mk.any()), scores=scores)
    return report, cams, tuple(errors)
