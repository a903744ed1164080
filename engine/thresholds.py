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
    """p(anomaly) >= decision is ANOMALY; heatmap regions at or above box, covering min_area_fraction, are its boxes."""

    decision: float = 0.5
    box: float = DEFAULT_BOX_THRESHOLD
    min_area_fraction: float = DEFAULT_MIN_AREA_FRACTION

    def __post_init__(self) -> None:
        # Stored as plain floats so comparisons happen in float64 everywhere, whatever the caller passed.
        object.__setattr__(self, "decision", _unit("decision threshold", self.decision, NOTHING_REJECTED))
        object.__setattr__(self, "box", _unit("box threshold", self.box))
        object.__setattr__(self, "min_area_fraction", _unit("minimum area fraction", self.min_area_fraction))

    @classmethod
    def of(cls, meta) -> Thresholds:
        """The thresholds stored in a model file's metadata."""
        return cls(float(meta.threshold), float(meta.box_threshold), float(meta.min_area_fraction))

    def verdict(self, p_anomaly: float) -> Verdict:
        """GOOD or ANOMALY for one anomaly probability (compared in float64)."""
        if not math.isfinite(float(p_anomaly)):
            raise ValueError(f"p(anomaly) must be a finite number; got {p_anomaly}")
        return Verdict.ANOMALY if float(p_anomaly) >= self.decision else Verdict.GOOD

    def verdicts(self, p_anomaly) -> np.ndarray:
        """1 (ANOMALY) or 0 (GOOD) for an array of probabilities, by the same rule as verdict()."""
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
        return replace(self, decision=decision)

    def with_box(self, box: float) -> Thresholds:
        return replace(self, box=box)
