"""Training options, defined once: each field carries its label, help and limits, so the `visinspect train` flags
and the station's Train form are both built from it."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from typing import Any

from engine.tiling import check_tiling
from engine.types import BACKBONE_NAMES, DEVICE_HELP, TRAINABLE_CHOICES, check_image_size

TRAIN_MODES = ("auto", "supervised", "good-only")


def option(default: Any, *, label: str, help: str, cli: bool = True, gui: bool = True, **limits: Any) -> Any:
    """A TrainConfig field with what the CLI and the form need to offer it.

    limits: choices, minimum, maximum, step, decimals, suffix, special (form: the text shown at the minimum), gui_help
    (form: a tooltip where help is worded for the command line); flag (CLI, default --field-name);
    widget="weights" for the backbone-weights chooser; negate=True for a flag that turns a default-on switch off.
    """
    return field(default=default, metadata={"label": label, "help": help, "cli": cli, "gui": gui, **limits})


@dataclass(frozen=True)
class TrainConfig:
    """Training options; the defaults are the founding recipe."""

    backbone: str = option("vgg16", label="Backbone", choices=BACKBONE_NAMES,
                           help="VGG16 conv layers (founding design); vgg16_bn adds batch norm and trains far better from random init")  # fmt: skip
    backbone_weights: str = option("imagenet", label="Backbone weights", widget="weights",
                                   help="imagenet, none (random init) or a weights file PATH (.pth or .safetensors)",
                                   gui_help="ImageNet (downloaded once, or copied into the weights folder's backbones/), "
                                            "a local .pth or .safetensors file, or none: random init")  # fmt: skip
    trainable: str = option("conv5", label="Layers trained", choices=TRAINABLE_CHOICES,
                            help="layers fine-tuned: conv5 + dense (founding), head (dense only) or all")  # fmt: skip
    image_size: int = option(224, label="Image size", minimum=32, maximum=1024, step=32, suffix=" px",
                             help="model input size in pixels, a multiple of 32")  # fmt: skip
    epochs: int = option(10, label="Epochs", minimum=1, maximum=1000, help="at most this many passes over the training images")
    batch_size: int = option(10, label="Batch size", minimum=1, maximum=512, help="images per optimisation step")
    lr: float = option(1e-4, label="Learning rate", minimum=1e-6, maximum=1.0, step=5e-5, decimals=6, help="Adam learning rate")
    class_weights: tuple[float, float] = option((1.0, 3.0), label="Class weights", minimum=0.01, maximum=100.0, step=0.5,
                                                decimals=2, parts=("good", "defective"), metavar=("GOOD", "ANOMALY"),
                                                help="cross-entropy weights of the good and defective class")  # fmt: skip
    early_stop_accuracy: float = option(0.98, label="Early-stop accuracy", flag="--early-stop", minimum=0.5, maximum=1.01,
                                        step=0.01, decimals=3,
                                        help="stop once an epoch's training accuracy reaches this (above 1: never)")  # fmt: skip
    test_fraction: float = option(0.2, label="Held-out share", minimum=0.05, maximum=0.5, step=0.05, decimals=2,
                                  help="share of the images held out (stratified by defect type) for the report")  # fmt: skip
    seed: int = option(0, label="Seed", minimum=0, maximum=2**31 - 1, help="seed of the split and of training")
    device: str = option("auto", label="Device", gui=False, help=f"device to train on: {DEVICE_HELP}")
    cache_features: bool = option(True, label="Reuse frozen-layer outputs", gui=False, flag="--no-feature-cache", negate=True,
                                  help="recompute the frozen layers every epoch (slower; results are the same)")  # fmt: skip
    workers: int = option(2, label="Decode threads", cli=False, gui=False, help="threads decoding images")
    mode: str = option("auto", label="Training mode", choices=TRAIN_MODES, gui=False,
                       help="supervised: the CAM classifier, needs defect images; good-only: a one-class PaDiM fitted on "
                            "good images only (defect images only evaluate it); auto: supervised when the dataset has "
                            "defect images, else good-only")  # fmt: skip
    padim_dims: int = option(100, label="One-class feature channels", gui=False, minimum=1, maximum=1280,
                             help="good-only: feature channels (of 1280) each position's Gaussian models")  # fmt: skip
    tile: int = option(0, label="Tiles", minimum=0, maximum=4096, step=32, suffix=" px", special="Off (whole image)",
                       help="train and inspect overlapping tiles of this side in image pixels, each at the image size "
                            "(small defects on large images); 0: the whole image resized",
                       gui_help="Inspect overlapping tiles of this side (in image pixels) at full resolution instead of "
                                "the whole image resized: for defects a few pixels wide on large images")  # fmt: skip
    tile_overlap: int = option(16, label="Tile overlap", gui=False, minimum=0, maximum=2048,
                               help="pixels neighbouring tiles share (with --tile)")  # fmt: skip

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch size must be at least 1; got {self.epochs} and {self.batch_size}")
        if self.lr <= 0:
            raise ValueError(f"learning rate must be positive; got {self.lr}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"held-out share must be between 0 and 1; got {self.test_fraction}")
        if self.backbone not in BACKBONE_NAMES:
            raise ValueError(f"backbone must be one of {', '.join(BACKBONE_NAMES)}; got {self.backbone!r}")
        if self.trainable not in TRAINABLE_CHOICES:
            raise ValueError(f"layers trained must be one of {', '.join(TRAINABLE_CHOICES)}; got {self.trainable!r}")
        check_image_size(self.image_size)
        if self.mode not in TRAIN_MODES:
            raise ValueError(f"training mode must be one of {', '.join(TRAIN_MODES)}; got {self.mode!r}")
        if not 1 <= self.padim_dims <= 1280:
            raise ValueError(f"one-class feature channels must be within 1..1280; got {self.padim_dims}")
        if self.tile:
            check_tiling(self.tile, self.tile_overlap)


def config_fields(*, where: str) -> list:
    """The TrainConfig fields offered on the command line (where="cli") or in the form (where="gui")."""
    return [f for f in fields(TrainConfig) if f.metadata.get(where, True)]


def flag_of(f) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One `visinspect train` flag per TrainConfig field, with its default and help."""
    for f in config_fields(where="cli"):
        meta, default = f.metadata, f.default
        help_text = meta["help"]
        if isinstance(default, bool):
            action = "store_false" if meta.get("negate") else "store_true"
            parser.add_argument(flag_of(f), dest=f.name, action=action, help=help_text)
        elif isinstance(default, tuple):
            parser.add_argument(flag_of(f), dest=f.name, type=type(default[0]), nargs=len(default), default=default,
                                metavar=meta.get("metavar"), help=f"{help_text} (default: {' '.join(map(str, default))})")  # fmt: skip
        else:
            choices = meta.get("choices")
            extra = f"; one of {', '.join(choices)}" if choices else ""
            parser.add_argument(flag_of(f), dest=f.name, type=type(default), default=default, choices=choices,
                                help=f"{help_text} (default: {default}{extra})")  # fmt: skip


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the parsed flags describe."""
    values = {f.name: getattr(args, f.name) for f in config_fields(where="cli")}
    return TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
