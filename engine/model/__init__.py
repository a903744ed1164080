"""The VGG16-CAM defect classifier, the one-class PaDiM on the same stem, and their backbone weights."""
from engine.model.builder import BACKBONES, BackboneOrigin, build_model, empty_model
from engine.model.network import TRAINABLE_CHOICES, VGG16CAM, split_vgg_features
from engine.model.padim import PaDiM, empty_padim, padim_from

__all__ = [
    "BACKBONES",
    "TRAINABLE_CHOICES",
    "VGG16CAM",
    "BackboneOrigin",
    "PaDiM",
    "build_model",
    "empty_model",
    "empty_padim",
    "padim_from",
    "split_vgg_features",
]
