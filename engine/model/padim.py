"""One-class PaDiM on the VGG16 stem: per-position Gaussians over three conv stages, fitted on good parts only.

The Mahalanobis distance map is the heatmap (the Inspector reads it where a CAM model gives its CAM), its
peak the image score, mapped to a probability-like p in [0, 1] by a stored logistic on log(score), so
verdicts, thresholds and calibration work as for the CAM classifier (Defard et al., PaDiM, ICPR 2021).
"""
from __future__ import annotations

import math
import threading

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import Cancelled

STAGES = ("relu3_3", "relu4_3", "relu5_3")  # stride 4, 8 and 16; pooled / upsampled to stride 8
STAGE_CHANNELS = 256 + 512 + 512
STRIDE = 8  # the anomaly map is at 1/8 of the input size
DEFAULT_DIMS = 100  # channels kept at random, as in PaDiM (100 of 448 for ResNet-18)
GOOD_MEDIAN_P = 0.01  # the score mapping puts the median good part here ...
GOOD_TOP_P = 0.1  # ... and the most anomalous good part it was fitted on here (p = 0.5 lies beyond it)


class GaussianMap(nn.Module):
    """Per-position mean and precision (inverse covariance) of `dims` chosen channels; distances always in fp32.

    Its buffers keep their dtype when the model is cast (a bf16 copy runs the conv stack in bf16, never the
    distances), so only device moves apply to them.
    """

    def __init__(self, dims: int, positions: int) -> None:
        super().__init__()
        self.register_buffer("index", torch.zeros(dims, dtype=torch.long))
        self.register_buffer("mean", torch.zeros(positions, dims))
        self.register_buffer("precision", torch.eye(dims).repeat(positions, 1, 1))
        self.register_buffer("score_map", torch.tensor([0.0, 1.0]))  # log(score) at p = 0.5, log-score width

    def _apply(self, fn, recurse=True):
        before = {k: b for k, b in self._buffers.items() if b is not None}
        super()._apply(fn, recurse)
        for k, old in before.items():
            if self._buffers[k].dtype != old.dtype:  # a cast: keep the original values, on the new device
                self._buffers[k] = old.to(self._buffers[k].device)
        return self

    def select(self, features: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) stage features -> (N, dims, h*w) fp32 of the chosen channels."""
        return features.index_select(1, self.index).float().flatten(2)

    def distances(self, chosen: torch.Tensor, side: int) -> torch.Tensor:
        """(N, dims, P) chosen features -> (N, side, side) Mahalanobis distance maps."""
        with torch.autocast(device_type=chosen.device.type, enabled=False):
            delta = chosen.float().permute(2, 0, 1) - self.mean[:, None, :]  # (P, N, d)
            squared = (torch.bmm(delta, self.precision) * delta).sum(-1)  # (P, N)
            return squared.clamp_min(0).sqrt().T.reshape(-1, side, side)

    def logits(self, maps: torch.Tensor) -> torch.Tensor:
        """Two-class logits whose softmax gives p = sigmoid((log peak - log centre) / width)."""
        with torch.autocast(device_type=maps.device.type, enabled=False):
            peaks = maps.float().flatten(1).amax(1).clamp_min(1e-12)
            z = (peaks.log() - self.score_map[0]) / self.score_map[1]
            return torch.stack([torch.zeros_like(z), z], dim=1)


def _stage_taps(stem: nn.Sequential) -> tuple[int, int]:
    """Indices in the stem (conv1 .. pool4) of the ReLUs feeding pool3 and pool4 (relu3_3, relu4_3)."""
    pools = [i for i, m in enumerate(stem) if isinstance(m, nn.MaxPool2d)]
    if len(pools) != 4:
        raise ValueError(f"expected a VGG stem with 4 max-pools, found {len(pools)}")
    return pools[2] - 1, pools[3] - 1


class PaDiM(nn.Module):
    """VGG16 stem + block5 (as in VGG16CAM) and a GaussianMap; the same forward_features/forward_head/cam interface."""

    method = "padim"

    def __init__(self, stem: nn.Sequential, block5: nn.Sequential, *, dims: int, grid: int) -> None:
        super().__init__()
        if not 1 <= dims <= STAGE_CHANNELS:
            raise ValueError(f"PaDiM dimensions must be within 1..{STAGE_CHANNELS}; got {dims}")
        self.stem, self.block5 = stem, block5
        self.taps = _stage_taps(stem)
        self.grid = grid
        self.gaussian = GaussianMap(dims, grid * grid)
        self.frozen_stem = True
        for p in self.parameters():
            p.requires_grad = False

    @property
    def dims(self) -> int:
        return int(self.gaussian.index.numel())

    def stage_features(self, x: torch.Tensor) -> torch.Tensor:
        """relu3_3 (avg-pooled), relu4_3 and relu5_3 (upsampled) concatenated at stride 8: (N, 1280, S/8, S/8)."""
        taps = []
        h = x
        for i, layer in enumerate(self.stem):
            h = layer(h)
            if i in self.taps:
                taps.append(h)
        s3, s4 = taps
        s5 = self.block5(h)
        size = s4.shape[-2:]
        return torch.cat([F.avg_pool2d(s3, 2), s4, F.interpolate(s5, size=size, mode="bilinear", align_corners=False)], 1)

    def chosen_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, dims, P) fp32: the features the Gaussians are fitted on."""
        return self.gaussian.select(self.stage_features(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The anomaly maps (N, S/8, S/8): Mahalanobis distance of each position's features from the good parts'."""
        return self.gaussian.distances(self.chosen_features(x), self.grid)

    def forward_head(self, maps: torch.Tensor) -> torch.Tensor:
        return self.gaussian.logits(maps)

    def cam(self, maps: torch.Tensor, class_index: int = 1) -> torch.Tensor:
        """The heatmap: the distance map itself (class_index is accepted for the CAM model's interface)."""
        return maps.float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def train(self, mode: bool = True) -> PaDiM:
        """Always in eval mode: nothing here is trained by gradient, and batch-norm statistics must not drift."""
        return super().train(False)


def padim_from(stem: nn.Sequential, block5: nn.Sequential, *, image_size: int, dims: int, seed: int = 0) -> PaDiM:
    """A PaDiM on a VGG stem for square inputs of image_size, with `dims` of the 1280 channels chosen at random (seeded)."""
    if image_size % (2 * STRIDE):
        raise ValueError(f"PaDiM needs an image size that is a multiple of {2 * STRIDE}; got {image_size}")
    model = PaDiM(stem, block5, dims=dims, grid=image_size // STRIDE)
    generator = torch.Generator().manual_seed(seed)
    model.gaussian.index.copy_(torch.randperm(STAGE_CHANNELS, generator=generator)[:dims].sort().values)
    return model


def ledoit_wolf_batched(x: torch.Tensor) -> torch.Tensor:
    """Ledoit-Wolf shrunk covariances of (P, n, d) samples, one per position: sklearn.covariance.ledoit_wolf's
    estimator (1/n empirical covariance shrunk towards mu*I), vectorised over positions in float64."""
    x = x.double() - x.double().mean(dim=1, keepdim=True)
    n, d = x.shape[1], x.shape[2]
    emp = x.transpose(1, 2) @ x / n  # (P, d, d)
    trace = emp.diagonal(dim1=1, dim2=2).sum(-1)
    mu = trace / d
    beta_ = (x * x).sum(-1).square().sum(-1)  # sum over pairs of features of <x_i^2, x_j^2>
    delta_ = emp.square().sum((1, 2))
    beta = (beta_ / n - delta_) / (d * n)
    delta = (delta_ - 2.0 * mu * trace + d * mu.square()) / d
    beta = torch.minimum(beta, delta)
    shrinkage = torch.where(delta > 0, beta / delta.clamp_min(1e-300), torch.zeros_like(delta))
    eye = torch.eye(d, dtype=emp.dtype, device=emp.device)
    return (1.0 - shrinkage)[:, None, None] * emp + (shrinkage * mu)[:, None, None] * eye


def fit_gaussians(
    features: np.ndarray, *, stop: threading.Event | None = None, chunk: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """(N, dims, P) good-part features -> per-position mean (P, dims) and precision (P, dims, dims), float32.

    Covariances are Ledoit-Wolf shrunk, so they are well-conditioned even with fewer parts than dimensions.
    """
    n, dims, positions = features.shape
    if n < 2:
        raise ValueError(f"fitting the good parts' Gaussians needs at least 2 images; got {n}")
    mean = features.mean(axis=0).T.astype(np.float32)
    precision = np.empty((positions, dims, dims), np.float32)
    samples = torch.from_numpy(np.ascontiguousarray(features)).permute(2, 0, 1)  # (P, N, d)
    eye = torch.eye(dims, dtype=torch.float64)
    for start in range(0, positions, chunk):
        if stop is not None and stop.is_set():
            raise Cancelled("training was cancelled; no model was saved")
        cov = ledoit_wolf_batched(samples[start : start + chunk])
        scale = cov.diagonal(dim1=1, dim2=2).mean(-1).clamp_min(1e-12)
        cov = cov + 1e-6 * scale[:, None, None] * eye  # a constant channel stays invertible
        precision[start : start + chunk] = torch.cholesky_inverse(torch.linalg.cholesky(cov)).float().numpy()
    return mean, precision


def score_mapping(good_scores: np.ndarray) -> tuple[float, float]:
    """(log centre, width) of the logistic on log(score): the median good part at p 0.01, the highest at p 0.1."""
    logs = np.log(np.maximum(np.asarray(good_scores, np.float64), 1e-12))
    if logs.size == 0 or not np.isfinite(logs).all():
        raise ValueError("the score mapping needs finite scores of good parts")
    med, top = float(np.median(logs)), float(np.max(logs))
    logit = lambda p: math.log(p / (1.0 - p))  # noqa: E731
    width = max((top - med) / (logit(GOOD_TOP_P) - logit(GOOD_MEDIAN_P)), 1e-3)
    return top - logit(GOOD_TOP_P) * width, width


def empty_padim(*, backbone: str, image_size: int, dims: int) -> PaDiM:
    """An architecture-only PaDiM, to be filled from a model file."""
    from engine.model.builder import build_model

    cam, _ = build_model(backbone=backbone, backbone_weights="none")
    return PaDiM(cam.stem, cam.block5, dims=dims, grid=image_size // STRIDE)
