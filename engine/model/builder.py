"""Build the VGG16-CAM model with its backbone weights: ImageNet, a local file, or random init."""
from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision import models
from torchvision.models.vgg import cfgs, make_layers

from engine.errors import BackboneWeightsError
from engine.model.network import VGG16CAM, Trainable, split_vgg_features
from engine.paths import backbones_dir

BACKBONES = {
    "vgg16": (False, models.VGG16_Weights.IMAGENET1K_V1),
    "vgg16_bn": (True, models.VGG16_BN_Weights.IMAGENET1K_V1),
}
WEIGHT_CHOICES = "imagenet, none, or a path to a .pth/.safetensors file"


@dataclass(frozen=True)
class BackboneOrigin:
    """Where the backbone's starting weights came from, recorded in every model file."""

    kind: str  # "imagenet", "file" or "none"
    detail: str  # weights enum name, file name + sha256, or "random init"

    @property
    def pretrained(self) -> bool:
        return self.kind != "none"

    def describe(self) -> str:
        return {"imagenet": "ImageNet", "file": "ImageNet (local file)", "none": "none (random init)"}[
            self.kind
        ] + ("" if self.kind == "none" else f" [{self.detail}]")


def _file_name(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_state_file(path: Path) -> dict[str, torch.Tensor]:
    """Read a backbone state dict without running code: safetensors, or torch.load(weights_only=True)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any decoder failure means the same thing to the user
        raise BackboneWeightsError(f"{path}: not a readable weights file ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise BackboneWeightsError(f"{path}: holds no state dict")
    return state


def _vgg_features(*, batch_norm: bool) -> nn.Sequential:
    """torchvision's VGG16 conv stack (config D), initialised as torchvision does, without the classifier."""
    features = make_layers(cfgs["D"], batch_norm=batch_norm)
    for m in features.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return features


def _load_features(features: nn.Sequential, state: dict, backbone: str, name: str) -> None:
    """Load the `features.*` tensors of a torchvision VGG state dict into the conv stack."""
    sub = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    try:
        features.load_state_dict(sub)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise BackboneWeightsError(f"{name}: not {backbone} weights ({first})") from None


def _imagenet_state(backbone: str) -> tuple[dict[str, torch.Tensor], BackboneOrigin]:
    """The torchvision ImageNet weights: from weights/backbones/, the torch hub cache, or a download."""
    enum = BACKBONES[backbone][1]
    fname = _file_name(enum.url)
    local = backbones_dir() / fname
    if local.is_file():
        return _load_state_file(local), BackboneOrigin("file", f"{fname}")
    hub_file = Path(torch.hub.get_dir()) / "checkpoints" / fname
    try:
        state = enum.get_state_dict(progress=True, check_hash=True)
    except (urllib.error.URLError, http.client.HTTPException, OSError, RuntimeError) as exc:  # a cut download too
        raise BackboneWeightsError(
            f"ImageNet weights for {backbone} could not be downloaded ({type(exc).__name__}). "
            f"On an offline station copy {fname} (from {enum.url}) to {local} or {hub_file}, "
            f"or pass --backbone-weights PATH, or --backbone-weights none to train from random init."
        ) from None
    return state, BackboneOrigin("imagenet", str(enum))


def build_model(
    *,
    backbone: str = "vgg16",
    backbone_weights: str | os.PathLike | None = "imagenet",
    trainable: Trainable = "conv5",
    num_classes: int = 2,
) -> tuple[VGG16CAM, BackboneOrigin]:
    """Build VGG16-CAM; backbone_weights is 'imagenet', 'none'/None (random init) or a weights file path."""
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {', '.join(BACKBONES)}; got {backbone!r}")
    features = _vgg_features(batch_norm=BACKBONES[backbone][0])
    if backbone_weights is None or str(backbone_weights).lower() == "none":
        origin = BackboneOrigin("none", "random init")
    elif str(backbone_weights).lower() == "imagenet":
        state, origin = _imagenet_state(backbone)
        _load_features(features, state, backbone, origin.detail)
    else:
        path = Path(backbone_weights)
        if not path.is_file():
            raise BackboneWeightsError(f"backbone weights must be {WEIGHT_CHOICES}; {path} is not a file")
        _load_features(features, _load_state_file(path), backbone, str(path))
        origin = BackboneOrigin("file", f"{path.name} sha256:{_sha256(path)[:16]}")
    stem, block5 = split_vgg_features(features)
    model = VGG16CAM(stem, block5, num_classes=num_classes)
    model.set_trainable(trainable)
    return model, origin


def empty_model(*, backbone: str = "vgg16", num_classes: int = 2) -> VGG16CAM:
    """An architecture-only model, to be filled from a model file."""
    model, _ = build_model(backbone=backbone, backbone_weights="none", num_classes=num_classes)
    return model
