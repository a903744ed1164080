"""Turn a class activation map into a normalised heatmap and one box per connected hot region."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from engine.types import Box

DEFAULT_BOX_THRESHOLD = 0.8
DEFAULT_MIN_AREA_FRACTION = 0.001
GOOD_LEVEL = 0.1  # the absolute scale puts the hottest good held-out parts here
GOOD_TOP_PERCENTILE = 99.0  # of the good images' peaks: one odd good image does not set the scale


class ScaleError(ValueError):
    """CAMs that no absolute heat scale can be measured from (e.g. no good or no defective image)."""


@dataclass(frozen=True)
class CamScale:
    """The absolute heat scale: raw CAM `low` is 0 and `high` is 1 (a typical defect's peak); good parts stay near good_level.

    Measured on held-out images, stored in the model file, so a good part looks cool and a defect hot
    whatever the other parts of the image do (the per-image stretch makes every image's peak 1.0).
    """

    low: float
    high: float
    good_level: float = GOOD_LEVEL  # how hot the good images measured got on this scale (their 99th-percentile peak)
    source: str = ""  # which images it was measured on, in words
    n_good: int = 0
    n_defective: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.high > self.low):
            raise ScaleError(f"a heat scale needs finite low < high; got low {self.low}, high {self.high}")

    def level(self, raw: float) -> float:
        """One raw CAM value on this scale: 0 or more, above 1 for a peak hotter than the typical defect (colours stop at 1)."""
        return max(0.0, (float(raw) - self.low) / (self.high - self.low))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CamScale | None:
        """The scale stored in a model file, or None when the file has none (made before scales existed)."""
        if not d:
            return None
        try:
            return cls(float(d["low"]), float(d["high"]), float(d.get("good_level", GOOD_LEVEL)), str(d.get("source", "")),
                       int(d.get("n_good", 0)), int(d.get("n_defective", 0)))  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise ScaleError(f"the stored heat scale is incomplete ({exc})") from None


def measure_cam_scale(cams: Sequence[np.ndarray], labels: Sequence[int], *, source: str = "") -> CamScale:
    """The absolute scale from raw CAMs of labelled images (1 = defective): a typical defect's peak is 1.0,
    the hottest good parts (99th percentile of their peaks) sit at GOOD_LEVEL.

    Where defect peaks do not rise above the good parts, 1.0 is as far above the good parts' top as that
    top is above their median surface. ScaleError without good and defective images or with non-finite maps.
    """
    labels = np.asarray(labels, dtype=int)
    if len(cams) != len(labels):
        raise ScaleError(f"got {len(cams)} maps for {len(labels)} labels")
    peaks = np.array([float(np.max(c)) if np.size(c) else np.nan for c in cams], dtype=np.float64)
    n_good, n_bad = int((labels == 0).sum()), int((labels == 1).sum())
    if n_good == 0 or n_bad == 0:
        raise ScaleError(f"a heat scale needs good and defective images; got {n_good} good and {n_bad} defective")
    if not np.isfinite(peaks).all() or not all(np.isfinite(c).all() for c in cams):
        raise ScaleError("a heat scale needs finite activation maps")
    good_top = float(np.percentile(peaks[labels == 0], GOOD_TOP_PERCENTILE))
    defect_peak = float(np.median(peaks[labels == 1]))
    if not defect_peak > good_top:
        surface = float(np.median(np.concatenate([np.ravel(c) for c, y in zip(cams, labels) if y == 0])))
        defect_peak = good_top + max(good_top - surface, 1e-6)
    # Linear, with good_top -> GOOD_LEVEL and defect_peak -> 1.
    low = (good_top - GOOD_LEVEL * defect_peak) / (1.0 - GOOD_LEVEL)
    return CamScale(low, defect_peak, GOOD_LEVEL, source, n_good, n_bad)


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
    return full_heatmap_and_range(cam, height, width)[0]


def full_heatmap_and_range(cam: np.ndarray, height: int, width: int) -> tuple[np.ndarray, tuple[float, float]]:
    """full_heatmap and the raw CAM values its 0 and 1 stand for (NaN, NaN where the map has none)."""
    cam = np.asarray(cam, dtype=np.float32)
    if cam.ndim != 2 or cam.size == 0 or not np.isfinite(cam).all():
        up = upsample(cam, height, width) if cam.ndim == 2 and cam.size else cam
        return normalize_heatmap(up), (math.nan, math.nan)
    up = upsample(cam, height, width)
    lo, hi, _, _ = cv2.minMaxLoc(up)
    span = hi - lo
    if not (span > 1e-20 and np.isfinite(span)):
        return normalize_heatmap(up), (float(lo), float(lo))
    np.subtract(up, np.float32(lo), out=up)
    np.multiply(up, np.float32(1.0 / span), out=up)
    np.clip(up, 0.0, 1.0, out=up)
    return up, (float(lo), float(hi))


def heatmap_to_boxes(
    heatmap: np.ndarray,
    *,
    threshold: float = DEFAULT_BOX_THRESHOLD,
    min_area_fraction: float = DEFAULT_MIN_AREA_FRACTION,
) -> tuple[Box, ...]:
    """One box per 8-connected region of the [0, 1] heatmap at or above threshold, biggest peak first (ties top-left first).

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
    boxes.sort(key=lambda b: (-b.score, b.y0, b.x0))  # equal peaks: top to bottom, left to right, however labelled
    return tuple(boxes)
