"""How closely a reduced precision agrees with fp32: the gate a precision must pass to be used by default."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.thresholds import Thresholds

# The rule for a default precision: verdicts agree on >= 99.5% of images and the heatmaps
# correlate >= 0.99 on average.
PRECISION_GATE = {"verdict_agreement": 0.995, "heatmap_correlation": 0.99}


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two heatmaps; two identical flat maps count as 1, a flat and a varied one as 0."""
    a = a.astype(np.float64).ravel() - a.mean()
    b = b.astype(np.float64).ravel() - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    if den == 0.0:
        return 1.0 if np.array_equal(a, b) else 0.0
    return float((a * b).sum() / den)


@dataclass(frozen=True)
class Agreement:
    """Verdict agreement and heatmap correlation of a reduced precision against fp32 on the same images."""

    images: int
    verdict_agreement: float
    heatmap_correlation_mean: float
    heatmap_correlation_min: float
    max_abs_p_diff: float

    @property
    def agrees(self) -> bool:
        return (
            self.images > 0
            and self.verdict_agreement >= PRECISION_GATE["verdict_agreement"]
            and self.heatmap_correlation_mean >= PRECISION_GATE["heatmap_correlation"]
        )

    def describe(self) -> str:
        return (
            f"{self.verdict_agreement:.1%} of verdicts agree with fp32, heatmap correlation "
            f"{self.heatmap_correlation_mean:.4f} (worst {self.heatmap_correlation_min:.4f}) on {self.images} images"
        )


def agreement_from_scores(
    p_ref: Sequence[float], p_low: Sequence[float], correlations: Sequence[float], threshold: float
) -> Agreement:
    """Agreement from per-image probabilities and heatmap correlations: a stored check judged at any threshold."""
    p_ref, p_low = np.asarray(p_ref, np.float64), np.asarray(p_low, np.float64)
    if not (len(p_ref) == len(p_low) == len(correlations)):
        raise ValueError("agreement needs the same number of probabilities and heatmap correlations from both precisions")
    if len(p_ref) == 0:
        return Agreement(0, 0.0, 0.0, 0.0, 0.0)
    rule = Thresholds(decision=threshold)
    same = float(np.mean(rule.verdicts(p_ref) == rule.verdicts(p_low)))
    return Agreement(
        images=len(p_ref),
        verdict_agreement=same,
        heatmap_correlation_mean=float(np.mean(correlations)),
        heatmap_correlation_min=float(np.min(correlations)),
        max_abs_p_diff=float(np.max(np.abs(p_ref - p_low))),
    )
