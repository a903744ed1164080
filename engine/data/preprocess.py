"""Resize and normalise images exactly as the model was trained; the settings live in the model file."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """Square resize to `size` (INTER_AREA when shrinking, bilinear when enlarging), then mean/std scaling."""

    size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if self.size < 32 or self.size % 32:
            raise ValueError(f"image size must be a multiple of 32, at least 32; got {self.size}")

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
        mean = torch.tensor(self.mean, device=batch_u8.device).mul(255.0)
        std = torch.tensor(self.std, device=batch_u8.device).mul(255.0)
        x = (batch_u8.float() - mean) / std
        return x.permute(0, 3, 1, 2)  # NHWC storage viewed as NCHW is exactly channels_last

    def batch(self, images: Sequence[np.ndarray], device: torch.device | str = "cpu") -> torch.Tensor:
        """Resize and stack RGB uint8 images into a normalised model input batch."""
        stacked = np.stack([self.resize(im) for im in images])
        return self.normalize(torch.from_numpy(stacked).to(device, non_blocking=True))
