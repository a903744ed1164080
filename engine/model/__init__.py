"""The VGG16-CAM defect classifier and its backbone weights."""
from engine.model.builder import BACKBONES, BackboneOrigin, build_model, empty_model
from engine.model.network import TRAINABLE_CHOICES, VGG16CAM, split_vgg_features

__all__ = [
    "BACKBONES",
    "TRAINABLE_CHOICES",
    "VGG16CAM",
    "BackboneOrigin",
    "build_model",
    "empty_model",
    "split_vgg_features",
]
