"""The one rule that turns a model's answer into a verdict and boxes: decision threshold, box threshold, minimum area."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from engine.inference.localize import DEFAULT_BOX_THRESHOLD, DEFAULT_MIN_AREA_FRACTION, heatmap_to_boxes
from engine.types import Box, Verdict

NOTHING_REJECTED = float(1.0 + 2**-22)  # just above every float32 probability: no part is an ANOMALY


def _unit(name: str, value: float, top: float = 1.0) -> float:
    value = float(value)
    if not 0.0 <= value <= top:  # NaN fails too
        raise ValueError(f"{name} must be within 0..1; got {value}")
    return value


@dataclass(frozen=True)
class Thresholds:
    """p(anomaly) >= decision is ANOMALY; heatmap regions at or above box, covering min_area_fraction, are its boxes.

    accept: with a review band, p in [accept, decision) is REVIEW (None: no band, GOOD below decision).
    ood_limit: a frame whose out-of-distribution score passes it is NOT_PRODUCT (None: guard off).
    """

    decision: float = 0.5
    box: float = DEFAULT_BOX_THRESHOLD
    min_area_fraction: float = DEFAULT_MIN_AREA_FRACTION
    accept: float | None = None
    ood_limit: float | None = None

    def __post_init__(self) -> None:
        # Stored as plain floats so comparisons happen in float64 everywhere, whatever the caller passed.
        object.__setattr__(self, "decision", _unit("decision threshold", self.decision, NOTHING_REJECTED))
        object.__setattr__(self, "box", _unit("box threshold", self.box))
        object.__setattr__(self, "min_area_fraction", _unit("minimum area fraction", self.min_area_fraction))
        if self.accept is not None:
            accept = _unit("accept threshold", self.accept, NOTHING_REJECTED)
            if accept > self.decision:
                raise ValueError(f"accept threshold must be at most the decision threshold {self.decision:g}; got {accept:g}")
            object.__setattr__(self, "accept", accept)
        if self.ood_limit is not None:
            limit = float(self.ood_limit)
            if not limit > 0.0 or not math.isfinite(limit):
                raise ValueError(f"out-of-distribution limit must be a positive number; got {self.ood_limit}")
            object.__setattr__(self, "ood_limit", limit)

    @classmethod
    def of(cls, meta) -> Thresholds:
        """The thresholds stored in a model file's metadata (review band and guard limit where it has them)."""
        accept = getattr(meta, "accept_threshold", None)
        limit = getattr(meta, "ood_limit", None)
        return cls(
            float(meta.threshold), float(meta.box_threshold), float(meta.min_area_fraction),
            None if accept is None else float(accept), None if limit is None else float(limit),
        )  # fmt: skip

    def verdict(self, p_anomaly: float, *, ood_score: float | None = None) -> Verdict:
        """The one rule: NOT_PRODUCT if ood_score > ood_limit, else ANOMALY if p >= decision, else REVIEW if
        accept is set and p >= accept, else GOOD (compared in float64)."""
        if not math.isfinite(float(p_anomaly)):
            raise ValueError(f"p(anomaly) must be a finite number; got {p_anomaly}")
        if self.ood_limit is not None and ood_score is not None and not float(ood_score) <= self.ood_limit:
            return Verdict.NOT_PRODUCT  # a NaN score is not trusted to be the product either
        p = float(p_anomaly)
        if p >= self.decision:
            return Verdict.ANOMALY
        return Verdict.REVIEW if self.accept is not None and p >= self.accept else Verdict.GOOD

    def verdicts(self, p_anomaly) -> np.ndarray:
        """1 (ANOMALY) or 0 (not) for an array of probabilities, at the decision threshold (accuracy's rule)."""
        return (np.asarray(p_anomaly, dtype=np.float64) >= self.decision).astype(int)

    def regions(self, heatmap: np.ndarray) -> tuple[Box, ...]:
        """Every hot region of a [0, 1] heatmap at the box threshold, biggest peak first (whatever the verdict)."""
        return heatmap_to_boxes(heatmap, threshold=self.box, min_area_fraction=self.min_area_fraction)

    def boxes(self, heatmap: np.ndarray, p_anomaly: float) -> tuple[Box, ...]:
        """The boxes shown for one image: its regions when it is an ANOMALY, none when GOOD."""
        return self.regions(heatmap) if self.verdict(p_anomaly) is Verdict.ANOMALY else ()

    def same_regions(self, other: Thresholds) -> bool:
        """True when other finds the same regions (same box threshold and minimum area)."""
        return self.box == other.box and self.min_area_fraction == other.min_area_fraction

    def with_decision(self, decision: float) -> Thresholds:
        """These thresholds at another decision; a review band that would pass it ends at it."""
        accept = None if self.accept is None else min(self.accept, float(decision))
        return replace(self, decision=decision, accept=accept)

    def with_accept(self, accept: float | None) -> Thresholds:
        return replace(self, accept=accept)

    def with_ood_limit(self, limit: float | None) -> Thresholds:
        return replace(self, ood_limit=limit)

    def with_box(self, box: float) -> Thresholds:
        return replace(self, box=box)
