"""The founding VGG16-CAM network: VGG16 conv layers, MaxPool2d(2) -> GAP -> Linear(512, 2)."""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from engine.types import TRAINABLE_CHOICES

Trainable = Literal["conv5", "head", "all"]


class VGG16CAM(nn.Module):
    """VGG16 features without the last max-pool, split at pool4 so conv5 can be fine-tuned alone."""

    def __init__(self, stem: nn.Sequential, block5: nn.Sequential, num_classes: int = 2) -> None:
        super().__init__()
        self.stem = stem  # conv1_1 .. pool4
        self.block5 = block5  # conv5_1 .. relu5_3
        self.pool = nn.MaxPool2d(2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        self.frozen_stem = False

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The conv5_3 feature maps (N, 512, H/16, W/16) that the CAM reads."""
        return self.block5(self.stem(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Class logits from conv5_3 features."""
        return self.fc(torch.flatten(self.avgpool(self.pool(features)), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def cam(self, features: torch.Tensor, class_index: int = 1) -> torch.Tensor:
        """Class activation maps (N, h, w): conv5_3 maps weighted by the class's dense-layer weights."""
        return torch.einsum("nchw,c->nhw", features, self.fc.weight[class_index].to(features.dtype))

    def set_trainable(self, trainable: Trainable) -> None:
        """Freeze everything but the chosen part: conv5 + head (founding default), head only, or all."""
        if trainable not in TRAINABLE_CHOICES:
            raise ValueError(f"trainable must be one of {', '.join(TRAINABLE_CHOICES)}; got {trainable!r}")
        for p in self.stem.parameters():
            p.requires_grad = trainable == "all"
        for p in self.block5.parameters():
            p.requires_grad = trainable in ("all", "conv5")
        for p in self.fc.parameters():
            p.requires_grad = True
        self.frozen_stem = trainable != "all"
        self.train(self.training)

    def train(self, mode: bool = True) -> VGG16CAM:
        """Like nn.Module.train, but frozen layers stay in eval mode so batch-norm statistics never drift."""
        super().train(mode)
        if self.frozen_stem:
            self.stem.eval()
            if not any(p.requires_grad for p in self.block5.parameters()):
                self.block5.eval()
        return self


def split_vgg_features(features: nn.Sequential) -> tuple[nn.Sequential, nn.Sequential]:
    """Split torchvision VGG `features` into (conv1..pool4, conv5 block), dropping the last max-pool."""
    pools = [i for i, m in enumerate(features) if isinstance(m, nn.MaxPool2d)]
    if len(pools) != 5:
        raise ValueError(f"expected a VGG feature stack with 5 max-pools, found {len(pools)}")
    pool4, pool5 = pools[3], pools[4]
    stem = nn.Sequential(*list(features)[: pool4 + 1])
    block5 = nn.Sequential(*list(features)[pool4 + 1 : pool5])
    return stem, block5
