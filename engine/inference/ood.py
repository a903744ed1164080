"""Out-of-distribution guard: how far a frame lies from the training images, from what one forward pass has anyway.

Views, each a Ledoit-Wolf Mahalanobis distance on standardised vectors: the input's per-channel quartiles (another
colour, a lens cap, a lighting failure; quartiles, not mean and spread, so that a defect covering less than a
quarter of the part does not move them) and, for a CAM model, its globally pooled conv5_3 features (fitted on good
and defective training images). A one-class PaDiM model has the input view only: the level of its distance map
rises with a defect at the input sizes used (measured on the synthetic set: a median-of-map view called 29 of 36
held-out defects NOT_PRODUCT), and it is fitted on good images only. Each distance is divided by its view's limit
(a high quantile of out-of-fold distances times a margin); the frame's score is the largest, so 1.0 is the limit.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

INPUT_KIND = "input-quartiles"  # per-channel 25th, 50th and 75th percentile of the normalised input
VIEWS_OF_METHOD = {"cam": ("pooled-conv5", INPUT_KIND), "padim": (INPUT_KIND,)}
KINDS = ("pooled-conv5", INPUT_KIND)
INPUT_SAMPLES = 32  # the input view reads about this many pixels per row and column (a strided subsample) ...
INPUT_CELLS = 8  # ... averaged into 8 x 8 cells, whose quartiles it takes: about 20 us a frame on one CPU thread
FOLDS = 5
QUANTILE = 0.99
MARGIN = 2.0  # chosen on measured scores: docs/line-integration.md, "Out-of-distribution guard"
LIMIT = 1.0  # the score is in units of each view's limit
TENSOR_PREFIX = "ood."  # tensors stored in the model file beside the weights: ood.<kind>.mean / ood.<kind>.precision


class OodError(ValueError):
    """Feature statistics that cannot be fitted or do not fit together."""


@dataclass(frozen=True, eq=False)
class OodView:
    """One view's mean, precision (of standardised vectors, in the vectors' own units) and limit."""

    kind: str
    mean: np.ndarray  # (d,) float32
    precision: np.ndarray  # (d, d) float32
    limit: float
    info: dict = field(default_factory=dict)  # images, shrinkage, out-of-fold and in-sample quantiles, the rule

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise OodError(f"feature statistics kind must be one of {', '.join(KINDS)}; got {self.kind!r}")
        d = self.mean.shape[0] if self.mean.ndim == 1 else -1
        if d < 1 or self.precision.shape != (d, d):
            raise OodError(f"feature statistics do not fit: mean {self.mean.shape}, precision {self.precision.shape}")
        if not (np.isfinite(self.limit) and self.limit > 0):
            raise OodError(f"out-of-distribution limit must be a positive number; got {self.limit}")

    def distances(self, vectors: np.ndarray) -> np.ndarray:
        """Mahalanobis distances of (N, d) vectors, float64."""
        return _mahalanobis(np.asarray(vectors, np.float64), self.mean.astype(np.float64), self.precision.astype(np.float64))


@dataclass(frozen=True, eq=False)
class OodStats:
    """Every view of the guard; a frame's score is max(distance / limit) over them."""

    views: tuple[OodView, ...]

    def __post_init__(self) -> None:
        if not self.views:
            raise OodError("feature statistics need at least one view")

    @property
    def limit(self) -> float:
        return LIMIT

    def to_meta(self) -> dict:
        """The JSON part stored in ModelMeta.ood (the arrays go into the file as tensors)."""
        return {"limit": LIMIT, "score": "max over views of distance / view limit",
                "views": [{"kind": v.kind, "dims": int(v.mean.shape[0]), "limit": float(v.limit), **v.info} for v in self.views]}  # fmt: skip

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {}
        for v in self.views:
            out[f"{TENSOR_PREFIX}{v.kind}.mean"] = torch.from_numpy(np.ascontiguousarray(v.mean, np.float32))
            out[f"{TENSOR_PREFIX}{v.kind}.precision"] = torch.from_numpy(np.ascontiguousarray(v.precision, np.float32))
        return out

    @classmethod
    def from_file(cls, meta_ood: dict, tensors: dict[str, torch.Tensor]) -> OodStats:
        """The statistics as stored: ModelMeta.ood and its tensors; OodError when they do not agree."""
        views = []
        for d in meta_ood.get("views", []):
            kind = str(d.get("kind"))
            mean, precision = tensors.pop(f"{TENSOR_PREFIX}{kind}.mean", None), tensors.pop(f"{TENSOR_PREFIX}{kind}.precision", None)
            if mean is None or precision is None:
                raise OodError(f"feature statistics {kind!r} have no tensors")
            view = OodView(kind, mean.float().numpy(), precision.float().numpy(), float(d.get("limit", np.nan)),
                           {k: v for k, v in d.items() if k not in ("kind", "dims", "limit")})  # fmt: skip
            if int(d.get("dims", -1)) != view.mean.shape[0]:
                raise OodError(f"feature statistics {kind!r} say {d.get('dims')} dimensions, the tensors have {view.mean.shape[0]}")
            views.append(view)
        if tensors:
            raise OodError(f"feature statistics tensors without a description: {', '.join(sorted(tensors))}")
        return cls(tuple(views))

    def scores(self, vectors: dict[str, np.ndarray]) -> np.ndarray:
        """Each frame's score from its vectors per view: the largest distance / limit."""
        return np.max([v.distances(vectors[v.kind]) / v.limit for v in self.views], axis=0)


def _mahalanobis(x: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    delta = x - mean
    return np.sqrt(np.maximum(np.einsum("nd,de,ne->n", delta, precision, delta), 0.0))


def view_vectors(kind: str, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """(N, d) float32 vectors of one view from the normalised input x (N, 3, S, S) and what forward_features gave:
    conv5_3 maps (N, C, h, w) for the pooled-conv5 view."""
    if kind == INPUT_KIND:
        step = max(1, x.shape[-1] // INPUT_SAMPLES)
        sampled = x[:, :, ::step, ::step].float()
        cells = F.avg_pool2d(sampled, max(1, sampled.shape[-1] // INPUT_CELLS))
        ranked = cells.flatten(2).sort(dim=2).values  # (N, C, n): a full sort of n values is cheap for n this small
        n = ranked.shape[2]
        return ranked[:, :, [n // 4, n // 2, (3 * n) // 4]].flatten(1)  # (N, C * 3): each channel's quartiles
    return features.float().mean(dim=(2, 3))


class OodGuard:
    """The statistics on the Inspector's device: a few small matrix products per batch, no second forward pass."""

    def __init__(self, stats: OodStats, device: torch.device) -> None:
        self.stats = stats
        self._views = [(v.kind, torch.from_numpy(v.mean).to(device), torch.from_numpy(v.precision).to(device), float(v.limit))
                       for v in stats.views]  # fmt: skip

    def scores(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """(N,) scores of a batch (1.0 = the limit) from its normalised input and its features."""
        with torch.autocast(device_type=features.device.type, enabled=False):
            out = None
            for kind, mean, precision, limit in self._views:
                delta = view_vectors(kind, x, features) - mean
                d = ((delta @ precision) * delta).sum(1).clamp_min(0).sqrt() / limit
                out = d if out is None else torch.maximum(out, d)
            return out


def _fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean and precision of x: Ledoit-Wolf on standardised columns (so no view's units drown another's), back in x's units."""
    from sklearn.covariance import LedoitWolf  # imported when fitting only (training), not on every model load

    mean, scale = x.mean(0), x.std(0) + 1e-6
    lw = LedoitWolf(assume_centered=True).fit((x - mean) / scale)
    return mean, lw.precision_ / np.outer(scale, scale), float(lw.shrinkage_)


def fit_view(vecs: np.ndarray, kind: str, *, quantile: float = QUANTILE, margin: float = MARGIN, folds: int = FOLDS,
             seed: int = 0) -> OodView:  # fmt: skip
    """One view fitted on (N, d) vectors of the training images; its limit is `quantile` of the out-of-fold distances
    (each image measured against a fit that did not see it: in-sample distances are too small) times margin."""
    x = np.asarray(vecs, np.float64)
    if x.ndim != 2 or len(x) < 3 or not np.isfinite(x).all():
        raise OodError(f"feature statistics need at least 3 finite feature vectors; got {x.shape}")
    mean, precision, shrinkage = _fit(x)
    order = np.random.default_rng(seed).permutation(len(x))
    oof = np.empty(len(x))
    for part in np.array_split(order, min(folds, len(x))):
        m, p, _ = _fit(x[np.setdiff1d(order, part)])
        oof[part] = _mahalanobis(x[part], m, p)
    inside = _mahalanobis(x, mean, precision)
    quantiles = {"q50": 0.5, "q90": 0.9, "q99": 0.99, "max": 1.0}
    info = {
        "images": int(len(x)), "shrinkage": round(shrinkage, 4), "quantile": quantile, "margin": margin,
        "rule": f"{quantile:g} quantile of {len(x)} out-of-fold distances x {margin:g}",
        "out_of_fold": {k: round(float(np.quantile(oof, q)), 4) for k, q in quantiles.items()},
        "in_sample": {k: round(float(np.quantile(inside, q)), 4) for k, q in quantiles.items()},
    }  # fmt: skip
    return OodView(kind, mean.astype(np.float32), precision.astype(np.float32), float(np.quantile(oof, quantile)) * margin, info)


def fit_ood(vectors: dict[str, np.ndarray], **kwargs) -> OodStats:
    """Every view fitted on its training vectors ({kind: (N, d)})."""
    return OodStats(tuple(fit_view(v, kind, **kwargs) for kind, v in vectors.items()))
