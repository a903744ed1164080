"""Turn a class activation map into a normalised heatmap and one box per connected hot region."""
from __future__ import annotations

import cv2
import numpy as np

from engine.types import Box

DEFAULT_BOX_THRESHOLD = 0.8
DEFAULT_MIN_AREA_FRACTION = 0.001


def normalize_heatmap(cam: np.ndarray) -> np.ndarray:
    """Min-max scale to float32 [0, 1]; NaN/inf are treated as the map's minimum; a flat map becomes all 0.

    Any real-valued 2-D array is accepted (raises ValueError only for another number of dimensions
    or values that are not numbers); the result always has cam's shape and finite values in [0, 1].
    """
    cam = np.asarray(cam, dtype=np.float64)
    if cam.ndim != 2:
        raise ValueError(f"heatmap must be 2-D (H, W); got shape {cam.shape}")
    finite = np.isfinite(cam)
    if not finite.any():
        return np.zeros(cam.shape, np.float32)
    lo, hi = float(cam[finite].min()), float(cam[finite].max())
    out = np.where(finite, cam, lo)
    if not np.isfinite(hi - lo):  # e.g. -1e308 .. 1e308: the span overflows; halve everything first
        out, lo, hi = out / 2, lo / 2, hi / 2
    span = hi - lo
    if not span > 0:
        return np.zeros(cam.shape, np.float32)
    return np.clip((out - lo) / span, 0.0, 1.0).astype(np.float32)


def upsample(cam: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a low-resolution map to the image's size."""
    return cv2.resize(np.asarray(cam, np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def full_heatmap(cam: np.ndarray, height: int, width: int) -> np.ndarray:
    """normalize_heatmap(upsample(cam, height, width)), computed in float32 in place.

    Equal to the float64 reference within a few float32 ulps (< 1e-6) and about 10x cheaper on a
    full-size map; maps with NaN/inf or a (near-)flat range take the reference path.
    """
    cam = np.asarray(cam, dtype=np.float32)
    if cam.ndim != 2 or cam.size == 0 or not np.isfinite(cam).all():
        return normalize_heatmap(upsample(cam, height, width) if cam.ndim == 2 and cam.size else cam)
    up = upsample(cam, height, width)
    lo, hi, _, _ = cv2.minMaxLoc(up)
    span = hi - lo
    if not (span > 1e-20 and np.isfinite(span)):
        return normalize_heatmap(up)
    np.subtract(up, np.float32(lo), out=up)
    np.multiply(up, np.float32(1.0 / span), out=up)
    np.clip(up, 0.0, 1.0, out=up)
    return up


def heatmap_to_boxes(
    heatmap: np.ndarray,
    *,
    threshold: float = DEFAULT_BOX_THRESHOLD,
    min_area_fraction: float = DEFAULT_MIN_AREA_FRACTION,
) -> tuple[Box, ...]:
    """One box per 8-connected region of the [0, 1] heatmap at or above threshold, biggest peak first.

    Values are taken as clipped to [0, 1] (NaN as 0, +inf as 1), so every box satisfies
    0 <= x0 < x1 <= W, 0 <= y0 < y1 <= H and 0 <= score <= 1. ValueError (and nothing else) for a
    threshold or min_area_fraction outside 0..1 (or NaN) or a heatmap that is not 2-D.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"box threshold must be within 0..1; got {threshold}")
    if not 0.0 <= min_area_fraction <= 1.0:
        raise ValueError(f"minimum area fraction must be within 0..1; got {min_area_fraction}")
    heatmap = np.asarray(heatmap)
    if heatmap.ndim != 2:
        raise ValueError(f"heatmap must be 2-D (H, W); got shape {heatmap.shape}")
    if heatmap.size == 0:
        return ()
    lo, hi = (float(heatmap.min()), float(heatmap.max())) if heatmap.dtype == np.float32 else (np.nan, np.nan)
    if not (0.0 <= lo and hi <= 1.0):  # NaN fails too: anything but a clean float32 map is cleaned first
        # Clip in float64 before narrowing, so huge values cannot overflow float32 (and warn) on the way.
        heatmap = np.clip(np.nan_to_num(heatmap.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
        heatmap = heatmap.astype(np.float32)
        hi = float(heatmap.max())
    if hi <= 0.0:
        return ()
    heatmap_size = heatmap.size
    hot = (heatmap >= np.float32(threshold)).view(np.uint8)
    # Label only the rectangle around the hot pixels: same regions, a fraction of the work for a small defect.
    cx, cy, cw, ch = cv2.boundingRect(hot)
    if cw == 0 or ch == 0:
        return ()
    hot, heatmap = hot[cy : cy + ch, cx : cx + cw], heatmap[cy : cy + ch, cx : cx + cw]
    n, labels, stats, _ = cv2.connectedComponentsWithStats(np.ascontiguousarray(hot), connectivity=8)
    min_area = max(1, int(round(min_area_fraction * heatmap_size)))
    boxes = []
    for label in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[label])
        if area < min_area:
            continue
        peak = float(heatmap[y : y + h, x : x + w][labels[y : y + h, x : x + w] == label].max())
        boxes.append(Box(cx + x, cy + y, cx + x + w, cy + y + h, peak))
    boxes.sort(key=lambda b: b.score, reverse=True)
    return tuple(boxes)
