"""Resize and normalise images exactly as the model was trained; the settings live in the model file."""
from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch

from engine.types import check_image_size

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@functools.lru_cache(maxsize=16)
def _scales(mean: tuple, std: tuple, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """mean*255 and std*255 as float32 tensors on device, made once (no host-to-GPU copy per batch)."""
    with torch.inference_mode(False):  # ordinary tensors, usable inside and outside inference mode
        return (
            torch.tensor(mean, dtype=torch.float32).mul(255.0).to(device),
            torch.tensor(std, dtype=torch.float32).mul(255.0).to(device),
        )


@dataclass(frozen=True)
class Preprocess:
    """Square resize to `size` (INTER_AREA when shrinking, bilinear when enlarging), then mean/std scaling."""

    size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        check_image_size(self.size)

    def to_dict(self) -> dict:
        return {"resize": "square", **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> Preprocess:
        return cls(size=int(d["size"]), mean=tuple(d["mean"]), std=tuple(d["std"]))

    def resize(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 HxWx3 -> size x size x 3 uint8."""
        h, w = image.shape[:2]
        if (h, w) == (self.size, self.size):
            return image
        interp = cv2.INTER_AREA if h > self.size and w > self.size else cv2.INTER_LINEAR
        return cv2.resize(image, (self.size, self.size), interpolation=interp)

    def normalize(self, batch_u8: torch.Tensor) -> torch.Tensor:
        """(N, S, S, 3) uint8 -> (N, 3, S, S) float32 channels_last, normalised, on batch_u8's device."""
        mean, std = _scales(self.mean, self.std, batch_u8.device)
        x = batch_u8.float().sub_(mean).div_(std)  # in place: one float buffer, same values as (x - m) / s
        return x.permute(0, 3, 1, 2)  # NHWC storage viewed as NCHW is exactly channels_last

    def batch(self, images: Sequence[np.ndarray], device: torch.device | str = "cpu") -> torch.Tensor:
        """Resize and stack RGB uint8 images into a normalised model input batch."""
        stacked = np.stack([self.resize(im) for im in images])
        return self.normalize(torch.from_numpy(stacked).to(device, non_blocking=True))
