"""Decision-threshold calibration from held-out scores: no-miss, max-false-reject:N, balanced."""
from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import numpy as np
from sklearn.metrics import roc_curve

from engine.errors import VisInspectError
from engine.evaluation.metrics import image_metrics

TARGET_FORMS = ("no-miss", "max-false-reject:N", "balanced")
# A no-miss threshold sits this far (in log-odds) below the lowest defective score, so that the small
# score differences between precisions (int8, bf16, fp32), batch sizes and machines cannot turn that
# defect into a miss on the line: about 0.02 below a score of 0.75, 0.001 below 0.99.
NO_MISS_MARGIN_LOGIT = 0.1
TARGET_HELP = {
    "no-miss": f"misses no defective held-out image, with a margin of {NO_MISS_MARGIN_LOGIT} in log-odds below the lowest defective score",
    "max-false-reject:N": "at most N % of good images rejected, with the fewest misses (then the fewest rejects); "
    "with good images only, the most sensitive threshold that rejects at most N % of them",
    "balanced": "the best balanced accuracy (ties: the larger threshold)",
}
DEFAULT_FALSE_REJECT_PERCENTS = (1.0, 5.0)
_MAX_FR = re.compile(r"^max-false-reject:\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*%?$")


class CalibrationError(VisInspectError):
    """Scores or a target that no threshold can be chosen from."""


@dataclass(frozen=True)
class Target:
    """A parsed calibration target (kind is one of no-miss, max-false-reject, balanced); percent only for max-false-reject."""

    kind: str
    percent: float | None = None

    @property
    def text(self) -> str:
        return f"max-false-reject:{self.percent:g}" if self.kind == "max-false-reject" else self.kind


def parse_target(text: str | Target) -> Target:
    """'no-miss', 'balanced' or 'max-false-reject:N' (N percent of good images, 0..100) -> Target."""
    if isinstance(text, Target):
        return text
    raw = str(text).strip().lower().replace("_", "-")
    if raw in ("no-miss", "balanced"):
        return Target(raw)
    m = _MAX_FR.match(raw)
    if m:
        percent = float(m.group(1))
        if 0.0 <= percent <= 100.0:
            return Target("max-false-reject", percent)
    raise CalibrationError(
        f"calibration target must be one of {', '.join(TARGET_FORMS)} (N a percentage 0-100, e.g. max-false-reject:2); "
        f"got {str(text)!r}"
    )


@dataclass(frozen=True)
class Calibration:
    """A decision threshold (p_anomaly >= threshold is ANOMALY) and what it does on the calibration set."""

    target: str
    threshold: float
    miss_rate: float  # fn / anomalies
    false_reject_rate: float  # fp / good images
    accuracy: float
    balanced_accuracy: float
    tp: int
    fn: int
    fp: int
    tn: int
    accept: float | None = None  # the review band's lower end: p in [accept, threshold) is REVIEW; None: no band
    review_good: int = 0  # good images inside the band (counted as passed in accuracy, which is at threshold)
    review_anomaly: int = 0  # defective images inside the band (counted as missed in accuracy)

    @property
    def review(self) -> int:
        return self.review_good + self.review_anomaly

    @property
    def review_rate(self) -> float:
        return self.review / self.n if self.n else 0.0

    @property
    def n(self) -> int:
        return self.tp + self.fn + self.fp + self.tn

    @property
    def n_good(self) -> int:
        return self.fp + self.tn

    @property
    def n_anomaly(self) -> int:
        return self.tp + self.fn

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        """One table row for the terminal."""
        return (
            f"{self.target:<22} threshold {self.threshold:.4f}  missed {self.fn}/{self.n_anomaly} ({self.miss_rate:.1%})  "
            f"false rejects {self.fp}/{self.n_good} ({self.false_reject_rate:.1%})  "
            f"accuracy {self.accuracy:.1%}  balanced {self.balanced_accuracy:.1%}"
        )

    def band_lines(self) -> str:
        """What the review band does, in words ('' without a band)."""
        if self.accept is None:
            return ""
        passed_defects = self.fn - self.review_anomaly
        return (
            f"  review band       p {self.accept:.4f} to {self.threshold:.4f}: {self.review} of {self.n} need review "
            f"({self.review_rate:.1%}: {self.review_good} good, {self.review_anomaly} defective)\n"
            f"  with the band     {passed_defects} defective passed unseen, {self.fp} good rejected outright"
        )

    def __str__(self) -> str:
        band = self.band_lines()
        return (
            f"target {self.target}: threshold {self.threshold:.4f}\n"
            f"  missed anomalies  {self.fn} of {self.n_anomaly} ({self.miss_rate:.1%})\n"
            f"  false rejects     {self.fp} of {self.n_good} good ({self.false_reject_rate:.1%})\n"
            f"  accuracy          {self.accuracy:.1%}\n"
            f"  balanced accuracy {self.balanced_accuracy:.1%}\n"
            f"  confusion         tp {self.tp}  fn {self.fn}  fp {self.fp}  tn {self.tn}"
        ) + (f"\n{band}" if band else "")


def _check(labels: Sequence[int], scores: Sequence[float], *, good_only_ok: bool = False) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    p = np.asarray(scores, dtype=float)
    if y.ndim != 1 or p.ndim != 1 or len(y) != len(p):
        raise CalibrationError(f"labels and scores must be two lists of equal length; got {y.shape} and {p.shape}")
    if len(y) == 0:
        raise CalibrationError("calibration needs held-out images; got none")
    if not np.isin(y, (0, 1)).all():
        raise CalibrationError("labels must be 0 (good) or 1 (anomaly)")
    if not np.isfinite(p).all():
        raise CalibrationError("scores must be finite probabilities; got NaN or infinity")
    y = y.astype(int)
    n_good, n_anom = int((y == 0).sum()), int((y == 1).sum())
    if n_good == 0 or (n_anom == 0 and not good_only_ok):
        raise CalibrationError(
            f"calibration needs held-out images of both classes; got {n_good} good and {n_anom} defective"
            + (" (with good images only, use max-false-reject:N)" if n_good else "")
        )
    return y, p


def at_threshold(
    labels: Sequence[int], scores: Sequence[float], threshold: float, *, target: str = "manual", accept: float | None = None
) -> Calibration:
    """What a given threshold (and review band from accept, if given) does on labelled scores (at least one image)."""
    y = np.asarray(labels, dtype=int)
    p = np.asarray(scores, dtype=float)
    if len(y) == 0 or len(y) != len(p):
        raise CalibrationError(f"labels and scores must be two non-empty lists of equal length; got {len(y)} and {len(p)}")
    m = image_metrics(y, p, threshold)
    n_anom, n_good = m["tp"] + m["fn"], m["fp"] + m["tn"]
    band = np.zeros(len(p), dtype=bool) if accept is None else (p >= float(accept)) & (p < float(threshold))
    return Calibration(
        target=target,
        threshold=float(threshold),
        miss_rate=m["fn"] / n_anom if n_anom else 0.0,
        false_reject_rate=m["fp"] / n_good if n_good else 0.0,
        accuracy=m["accuracy"],
        balanced_accuracy=m["balanced_accuracy"],
        tp=m["tp"],
        fn=m["fn"],
        fp=m["fp"],
        tn=m["tn"],
        accept=None if accept is None else float(accept),
        review_good=int((band & (y == 0)).sum()),
        review_anomaly=int((band & (y == 1)).sum()),
    )


def review_band(labels: Sequence[int], scores: Sequence[float], decision: float, band: str | float) -> float | None:
    """The accept threshold of a review band ending at decision: a target's threshold on the same scores (e.g.
    no-miss: nothing defective passes unseen) or a probability; None when it is not below decision (no band)."""
    if isinstance(band, str) and band.strip().lower() in ("off", "none"):
        return None
    try:
        accept = float(band)
    except (TypeError, ValueError):
        accept = calibrate(labels, scores, str(band)).threshold
    else:
        if not 0.0 <= accept <= 1.0:
            raise CalibrationError(f"review band must be a target ({', '.join(TARGET_FORMS)}), a probability 0..1 or off; got {band}")
    return accept if accept < float(decision) else None


def _candidates(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every distinct operating point, highest threshold first: (thresholds, fp counts, tp counts)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fpr, tpr, thr = roc_curve(y, p, drop_intermediate=False)
    n_good, n_anom = int((y == 0).sum()), int((y == 1).sum())
    thr = thr.astype(float).copy()
    # sklearn's first point (nothing flagged) is +inf; use the next float32 above the top score instead
    # (model probabilities are float32, and the Inspector compares in float32).
    thr[0] = float(np.nextafter(np.float32(p.max()), np.float32(np.inf)))
    return thr, np.rint(fpr * n_good).astype(int), np.rint(tpr * n_anom).astype(int)


def below_with_margin(score: float, margin_logit: float = NO_MISS_MARGIN_LOGIT) -> float:
    """A threshold margin_logit log-odds below score, never above it (scores within 1e-7 of 0 or 1 count as that far in)."""
    p = min(max(float(score), 1e-7), 1.0 - 1e-7)
    return min(float(score), 1.0 / (1.0 + math.exp(-(math.log(p / (1.0 - p)) - margin_logit))))


def calibrate(
    labels: Sequence[int], scores: Sequence[float], target: str | Target, *, margin_logit: float = NO_MISS_MARGIN_LOGIT
) -> Calibration:
    """Choose a threshold for a target from held-out labels (1 = anomaly) and p_anomaly scores (see TARGET_HELP)."""
    tgt = parse_target(target)
    y, p = _check(labels, scores, good_only_ok=tgt.kind == "max-false-reject")
    if not (y == 1).any():
        return at_threshold(y, p, _good_only_threshold(p, tgt.percent, margin_logit), target=tgt.text)
    if tgt.kind == "no-miss":
        return at_threshold(y, p, below_with_margin(float(p[y == 1].min()), margin_logit), target=tgt.text)
    thr, fp, tp = _candidates(y, p)
    n_good, n_anom = int((y == 0).sum()), int((y == 1).sum())
    fn = n_anom - tp
    if tgt.kind == "max-false-reject":
        ok = np.flatnonzero(fp <= tgt.percent / 100.0 * n_good + 1e-9)  # never empty: the first point rejects nothing
        best_fn = fn[ok].min()
        i = int(ok[fn[ok] == best_fn][0])  # fewest misses, then the largest threshold (fewest false rejects)
    else:
        bal = tp / n_anom + (n_good - fp) / n_good
        i = int(np.flatnonzero(bal >= bal.max() - 1e-12)[0])
    return at_threshold(y, p, thr[i], target=tgt.text)


def _logit(p: float) -> float:
    p = min(max(float(p), 1e-7), 1.0 - 1e-7)
    return math.log(p / (1.0 - p))


def _good_only_threshold(good: np.ndarray, percent: float, margin_logit: float) -> float:
    """The most sensitive threshold rejecting at most percent % of good scores: between the last good part allowed to be
    rejected and the next (midway in log-odds); above the top good score by margin_logit when none may be."""
    ranked = np.sort(good.astype(np.float64))[::-1]
    allowed = int(math.floor(percent / 100.0 * len(ranked) + 1e-9))
    if allowed >= len(ranked):
        return 0.0
    passing = float(ranked[allowed])  # the highest score that must stay GOOD
    if allowed == 0 or ranked[allowed - 1] <= passing:  # none may be rejected, or a tie: just above it
        above = 1.0 / (1.0 + math.exp(-(_logit(passing) + margin_logit)))
    else:
        above = 1.0 / (1.0 + math.exp(-(_logit(passing) + _logit(float(ranked[allowed - 1]))) / 2))
    # strictly above the passing score in float32 (the Inspector's precision), never above 1
    return float(max(above, float(np.nextafter(np.float32(passing), np.float32(np.inf)))))


def calibration_table(
    labels: Sequence[int],
    scores: Sequence[float],
    *,
    false_reject_percents: Sequence[float] = DEFAULT_FALSE_REJECT_PERCENTS,
) -> list[Calibration]:
    """Every target side by side (no-miss, max-false-reject at each percent, balanced) to choose knowingly;
    the max-false-reject rows only when there are no defective images."""
    targets = [f"max-false-reject:{pc:g}" for pc in false_reject_percents]
    if (np.asarray(labels) == 1).any():
        targets = ["no-miss", *targets, "balanced"]
    return [calibrate(labels, scores, t) for t in targets]


def calibration_record(
    calibration: Calibration,
    *,
    table: Sequence[Calibration] = (),
    source: str = "",
    data: str = "",
) -> dict:
    """The JSON-ready dict stored as ModelMeta.calibration."""
    return {
        **calibration.to_dict(),
        "n": calibration.n,
        "source": source,
        "data": data,
        "table": [c.to_dict() for c in table],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def store_calibration(
    model_path: str | os.PathLike,
    calibration: Calibration,
    *,
    table: Sequence[Calibration] = (),
    source: str = "",
    data: str = "",
    precision: str = "",
    heat_scale=None,
):
    """Write the threshold, the review band's accept threshold (None: no band), its calibration record and (when
    given) the absolute heat scale into the model file.

    heat_scale: a CamScale measured on the same images; returns the new ModelMeta.
    """
    from engine.modelfile import update_meta

    record = {**calibration_record(calibration, table=table, source=source, data=data), "precision": precision}
    scale = {} if heat_scale is None else {"heat_scale": heat_scale.to_dict()}
    return update_meta(
        model_path, threshold=float(calibration.threshold), accept_threshold=calibration.accept, calibration=record, **scale
    )
