"""Held-out metrics: accuracy, balanced accuracy, confusion, image AUROC, pixel AUROC and box recall."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, roc_auc_score

from engine.thresholds import Thresholds
from engine.types import Box


@dataclass(frozen=True)
class SampleScore:
    """One held-out image's outcome, for galleries and calibration."""

    path: str
    defect_type: str
    label: int
    p_anomaly: float
    predicted: int
    ood_score: float | None = None  # distance from the training images' features; None without the guard


@dataclass(frozen=True)
class EvalReport:
    """Metrics on a held-out set, Anomaly as the positive class."""

    n: int
    threshold: float
    accuracy: float
    balanced_accuracy: float
    tp: int
    fn: int
    fp: int
    tn: int
    image_auroc: float | None
    pixel_auroc: float | None = None
    box_recall: float | None = None
    n_masks: int = 0
    accept: float | None = None  # the review band's lower end, when the model has one
    review: int = 0  # images inside the review band (REVIEW: neither passed nor rejected; accuracy is at threshold)
    ood_limit: float | None = None  # the out-of-distribution guard's limit, when on
    not_product: int = 0  # images the guard called NOT_PRODUCT (accuracy still counts them by p at threshold)
    scores: tuple[SampleScore, ...] = field(default=(), repr=False)

    @property
    def review_rate(self) -> float:
        return self.review / self.n if self.n else 0.0

    @property
    def not_product_rate(self) -> float:
        return self.not_product / self.n if self.n else 0.0

    def metrics(self) -> dict:
        """The numbers only (no per-image scores), as stored in a model file."""
        d = asdict(self)
        d.pop("scores")
        return d

    def to_dict(self) -> dict:
        return {**self.metrics(), "scores": [asdict(s) for s in self.scores]}

    def table(self) -> str:
        """A plain-text table for the terminal."""
        def pct(v):
            return "n/a" if v is None else f"{v:.3f}"

        rows = [
            ("images", str(self.n)),
            ("threshold", f"{self.threshold:.3f}"),
            ("accuracy", pct(self.accuracy)),
            ("balanced accuracy", pct(self.balanced_accuracy)),
            ("image AUROC", pct(self.image_auroc)),
            ("pixel AUROC", pct(self.pixel_auroc)),
            ("box recall", pct(self.box_recall)),
            ("confusion", f"tp {self.tp}  fn {self.fn}  fp {self.fp}  tn {self.tn}"),
        ]
        if self.accept is not None:
            rows.append(("needs review", f"{self.review} ({self.review_rate:.1%}; p {self.accept:.3f} to {self.threshold:.3f})"))
        if self.ood_limit is not None:
            rows.append(("not product", f"{self.not_product} ({self.not_product_rate:.1%}; distance over {self.ood_limit:.3g})"))
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def image_metrics(labels: Sequence[int], p_anomaly: Sequence[float], threshold: float) -> dict:
    """Accuracy, balanced accuracy, confusion counts and AUROC for one threshold."""
    y = np.asarray(labels, dtype=int)
    p = np.asarray(p_anomaly, dtype=float)
    pred = Thresholds(decision=threshold).verdicts(p)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    both = len(set(y.tolist())) == 2
    return {
        "n": int(len(y)),
        "threshold": float(threshold),
        "accuracy": float(accuracy_score(y, pred)) if len(y) else 0.0,
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)) if both else float(accuracy_score(y, pred)),
        "tp": int(tp),
        "fn": int(fn),
        "fp": int(fp),
        "tn": int(tn),
        "image_auroc": float(roc_auc_score(y, p)) if both else None,
    }


def pixel_auroc(heatmaps: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> float | None:
    """AUROC of raw heatmap values against ground-truth pixels, over all given images."""
    if not heatmaps:
        return None
    scores = np.concatenate([h.ravel() for h in heatmaps])
    truth = np.concatenate([m.ravel() for m in masks]).astype(np.uint8)
    if truth.min() == truth.max():
        return None
    return float(roc_auc_score(truth, scores))


def box_recall(boxes_per_image: Sequence[Sequence[Box]], masks: Sequence[np.ndarray]) -> tuple[float | None, int]:
    """Share of ground-truth defect regions (connected components) touched by at least one predicted box."""
    regions = hit = 0
    for boxes, mask in zip(boxes_per_image, masks):
        n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        for label in range(1, n):
            regions += 1
            region = labels == label
            if any(region[b.y0 : b.y1, b.x0 : b.x1].any() for b in boxes):
                hit += 1
    return (hit / regions if regions else None), regions
