"""Generate a small MVTec-AD-layout dataset of textured surfaces with drawn defects, for tests and demos."""

from __future__ import annotations

import itertools
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

DEFECT_TYPES = ("scratch", "spot", "crack")
TEXTURES = ("brushed", "weave")
MARKER_NAME = ".visinspect-synthetic"
MIN_IMAGE_SIZE = 32
_GENERATED_DIRS = ("train", "test", "ground_truth")
_MASK_ALPHA = 0.3  # blend weight above which a pixel counts as defect in the mask


@dataclass(frozen=True)
class SyntheticSummary:
    """What generate_dataset wrote, so callers can check counts without rescanning the folder."""

    root: Path
    n_good: int  # all good images written (train + test)
    defect_counts: dict[str, int]  # images written per defect type
    image_size: int


@dataclass(frozen=True)
class SurfaceStyle:
    """The look of one product (colour, texture, shading strength) shared by every image of a dataset."""

    base_rgb: tuple[float, float, float]
    texture: str  # one of TEXTURES
    period: float  # texture period in pixels
    vertical: bool  # brushing/weave orientation
    texture_amp: float  # relative strength of the regular texture
    shading_amp: float  # relative strength of low-frequency shading
    noise_sigma: float  # fine grain, in grey levels


class DefectSample(NamedTuple):
    """An image with one drawn defect and the bool HxW mask of exactly the pixels it changed."""

    image: np.ndarray
    mask: np.ndarray


def make_style(rng: np.random.Generator, size: int = 128) -> SurfaceStyle:
    """Draw one product look; mid-range luminance so both dark and bright defects stay visible."""
    lum = rng.uniform(95.0, 165.0)
    tint = rng.normal(0.0, 0.07, 3)
    base = np.clip(lum * (1.0 + tint - tint.mean()), 40.0, 215.0)
    return SurfaceStyle(
        base_rgb=(float(base[0]), float(base[1]), float(base[2])),
        texture=str(rng.choice(TEXTURES)),
        period=float(rng.uniform(0.035, 0.07) * size),
        vertical=bool(rng.random() < 0.5),
        texture_amp=float(rng.uniform(0.025, 0.045)),
        shading_amp=float(rng.uniform(0.04, 0.07)),
        noise_sigma=float(rng.uniform(2.5, 4.5)),
    )


def _regular_texture(rng: np.random.Generator, size: int, style: SurfaceStyle) -> np.ndarray:
    """Zero-mean, unit-ish texture field: brushed streaks with faint lines, or a woven check."""
    coords = np.arange(size, dtype=np.float32)
    phase = rng.uniform(0.0, 2.0 * math.pi, 2)
    if style.texture == "brushed":
        streaks = rng.normal(0.0, 1.0, (size, size)).astype(np.float32)
        streaks = cv2.GaussianBlur(streaks, (0, 0), sigmaX=size / 10.0, sigmaY=0.7)
        streaks /= float(streaks.std()) + 1e-6
        lines = np.sin(2.0 * math.pi * coords / style.period + phase[0])[:, None]
        field = 0.8 * streaks + 0.6 * lines
    else:
        wx = np.sin(2.0 * math.pi * coords / style.period + phase[0])
        wy = np.sin(2.0 * math.pi * coords / style.period + phase[1])
        field = np.outer(wy, wx) * 1.4 + 0.3 * np.sign(np.outer(wy, np.ones_like(wx)))
    field = np.broadcast_to(field, (size, size)).astype(np.float32)
    return np.ascontiguousarray(field.T if style.vertical else field)


def make_surface(rng: np.random.Generator, size: int, *, style: SurfaceStyle | None = None) -> np.ndarray:
    """Render one good RGB uint8 surface; pass the dataset's style so all images look like one product."""
    if size < MIN_IMAGE_SIZE:
        raise ValueError(f"image size must be at least {MIN_IMAGE_SIZE} px, got {size}")
    style = style if style is not None else make_style(rng, size)
    grid = rng.normal(0.0, 1.0, (4, 4)).astype(np.float32)
    shading = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    slope = rng.uniform(-1.0, 1.0, 2).astype(np.float32)
    shading = shading + slope[0] * ramp[None, :] + slope[1] * ramp[:, None]
    brightness = 1.0 + rng.uniform(-0.03, 0.03)
    gain = brightness * (
        1.0 + style.shading_amp * shading + style.texture_amp * _regular_texture(rng, size, style)
    )
    base = np.asarray(style.base_rgb, dtype=np.float32)
    grain = rng.normal(0.0, style.noise_sigma, (size, size, 1)).astype(np.float32)
    chroma = rng.normal(0.0, style.noise_sigma * 0.3, (size, size, 3)).astype(np.float32)
    image = gain[:, :, None] * base[None, None, :] + grain + chroma
    return np.clip(image + 0.5, 0.0, 255.0).astype(np.uint8)


def _thickness(size: int) -> int:
    """Line thickness that stays visible after downscaling to a 64 px network input."""
    return max(1, round(size * 0.012))


def _walk(
    rng: np.random.Generator,
    *,
    start: np.ndarray,
    heading: float,
    length: float,
    step: float,
    drift: float,
    jag: float = 0.0,
) -> np.ndarray:
    """Random-walk points: heading wanders by up to drift per step, each step also kinks by up to jag."""
    n = max(2, math.ceil(length / step))
    angles = heading + np.cumsum(rng.uniform(-drift, drift, n)) + rng.uniform(-jag, jag, n)
    steps = np.stack([np.cos(angles), np.sin(angles)], axis=1) * (length / n)
    return start + np.vstack([np.zeros((1, 2)), np.cumsum(steps, axis=0)])


def _through(
    rng: np.random.Generator, *, size: int, length: float, step: float, drift: float, jag: float = 0.0
) -> np.ndarray:
    """A walk whose midpoint lies anywhere in the image, so defects can reach the edges."""
    mid = rng.uniform(0.0, size, 2)
    heading = rng.uniform(0.0, 2.0 * math.pi)
    forward = _walk(rng, start=mid, heading=heading, length=length / 2, step=step, drift=drift, jag=jag)
    back = _walk(
        rng, start=mid, heading=heading + math.pi, length=length / 2, step=step, drift=drift, jag=jag
    )
    return np.vstack([back[::-1], forward[1:]])


class _Stroke(NamedTuple):
    """A defect's blend layer on the padded canvas (0..1) and whether it lightens or darkens the surface."""

    alpha: np.ndarray
    bright: bool


_SHIFT = 4  # sub-pixel bits for anti-aliased drawing


def _fixed(points: np.ndarray, *, pad: int) -> np.ndarray:
    """Points shifted into the padded canvas as int32 fixed-point coordinates for cv2 (shift=_SHIFT)."""
    return np.round((points + pad) * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)


def _alpha_scratch(rng: np.random.Generator, *, size: int, pad: int) -> _Stroke:
    """Blend layer of a thin, slightly bent polyline 20-50 % of the image long, and whether it is bright."""
    alpha = np.zeros((size + 2 * pad, size + 2 * pad), np.float32)
    points = _through(rng, size=size, length=rng.uniform(0.2, 0.5) * size, step=size / 10.0, drift=0.12)
    cv2.polylines(alpha, [_fixed(points, pad=pad)], False, 1.0, _thickness(size), cv2.LINE_AA, _SHIFT)
    return _Stroke(alpha=alpha, bright=bool(rng.random() < 0.5))


def _alpha_spot(rng: np.random.Generator, *, size: int, pad: int) -> _Stroke:
    """Blend layer of a soft-edged filled ellipse with radii 4-10 % of the image, and whether it is bright."""
    alpha = np.zeros((size + 2 * pad, size + 2 * pad), np.float32)
    centre = np.round((rng.uniform(0.0, size, 2) + pad) * (1 << _SHIFT)).astype(int)
    axes = np.round(rng.uniform(0.04, 0.10, 2) * size * (1 << _SHIFT)).astype(int)
    angle = float(rng.uniform(0.0, 180.0))
    cv2.ellipse(
        alpha,
        (int(centre[0]), int(centre[1])),
        (int(axes[0]), int(axes[1])),
        angle,
        0.0,
        360.0,
        1.0,
        -1,
        cv2.LINE_AA,
        _SHIFT,
    )
    alpha = cv2.GaussianBlur(alpha, (0, 0), sigmaX=max(0.8, size / 128.0))
    return _Stroke(alpha=alpha, bright=bool(rng.random() < 0.4))


def _alpha_crack(rng: np.random.Generator, *, size: int, pad: int) -> _Stroke:
    """Blend layer of a dark jagged random-walk line of varying width, sometimes with a short branch."""
    alpha = np.zeros((size + 2 * pad, size + 2 * pad), np.float32)
    step = max(2.0, size / 32.0)
    points = _through(rng, size=size, length=rng.uniform(0.3, 0.55) * size, step=step, drift=0.15, jag=0.7)
    widest = _thickness(size)
    fixed = _fixed(points, pad=pad)[:, 0, :]
    for a, b in itertools.pairwise(fixed):
        width = int(rng.integers(max(1, widest - 1), widest + 1))
        cv2.line(alpha, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 1.0, width, cv2.LINE_8, _SHIFT)
    if rng.random() < 0.5:
        start = points[int(rng.integers(1, len(points) - 1))]
        branch = _walk(
            rng,
            start=start,
            heading=rng.uniform(0.0, 2.0 * math.pi),
            length=rng.uniform(0.08, 0.15) * size,
            step=step,
            drift=0.15,
            jag=0.7,
        )
        cv2.polylines(alpha, [_fixed(branch, pad=pad)], False, 1.0, max(1, widest - 1), cv2.LINE_8, _SHIFT)
    return _Stroke(alpha=alpha, bright=False)


_ALPHA_MAKERS = {"scratch": _alpha_scratch, "spot": _alpha_spot, "crack": _alpha_crack}


def _check_kind(kind: str) -> None:
    """Raise a ValueError naming the allowed defect kinds when kind is not one of them."""
    if kind not in _ALPHA_MAKERS:
        raise ValueError(f"unknown defect kind {kind!r}; allowed kinds: {', '.join(DEFECT_TYPES)}")


def draw_defect(image: np.ndarray, kind: str, rng: np.random.Generator) -> DefectSample:
    """Return a copy of a uint8 grey or RGB image with one visible defect drawn, and its bool mask."""
    _check_kind(kind)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or min(image.shape[:2]) < MIN_IMAGE_SIZE:
        raise ValueError(
            f"expected a uint8 HxW or HxWx3 image of at least {MIN_IMAGE_SIZE} px, "
            f"got {image.dtype} with shape {image.shape}"
        )
    height, width = image.shape[:2]
    size = max(height, width)
    pad = size // 2
    # Drawn on a padded canvas so we can tell how much lands inside; redraw (deterministically) when
    # a near-edge placement would leave under half of the defect, or too few pixels, visible.
    for _ in range(64):
        stroke = _ALPHA_MAKERS[kind](rng, size=size, pad=pad)
        alpha = stroke.alpha[pad : pad + height, pad : pad + width]
        mask = alpha > _MASK_ALPHA
        if int(mask.sum()) >= max(6, int((stroke.alpha > _MASK_ALPHA).sum()) // 2):
            break
    strength = float(rng.uniform(0.65, 0.85))
    pixels = image.astype(np.float32)
    target = pixels + (255.0 - pixels) * strength if stroke.bright else pixels * (1.0 - strength)
    weight = alpha if image.ndim == 2 else alpha[:, :, None]
    out = pixels * (1.0 - weight) + target * weight
    return DefectSample(image=np.clip(out + 0.5, 0.0, 255.0).astype(np.uint8), mask=mask)


def _write_png(path: Path, image: np.ndarray) -> None:
    """Write an RGB or single-channel uint8 image as PNG via imencode (safe for non-ASCII paths)."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    path.write_bytes(buf.tobytes())


def _prepare_root(root: Path) -> None:
    """Create root, or clear a previous generated set there; refuse any other non-empty folder or a file."""
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root} exists and is not a folder; choose another output location")
    if root.is_dir() and any(root.iterdir()):
        if not (root / MARKER_NAME).is_file():
            raise ValueError(
                f"{root} is a non-empty folder that is not a VisInspect synthetic dataset; "
                "choose an empty or new folder so nothing of yours is overwritten"
            )
        for name in _GENERATED_DIRS:
            if (root / name).is_dir():
                shutil.rmtree(root / name)
    root.mkdir(parents=True, exist_ok=True)


def _validate(*, counts: dict[str, int], defect_types: Sequence[str], image_size: int) -> None:
    """Raise ValueError for negative counts, too-small images, or unknown/duplicate defect types."""
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be an integer of at least {MIN_IMAGE_SIZE}, got {image_size!r}")
    if isinstance(defect_types, str):
        raise TypeError("defect_types must be a sequence of names, not a single string")
    for kind in defect_types:
        _check_kind(kind)
    if len(set(defect_types)) != len(defect_types):
        raise ValueError(f"defect_types has duplicates: {list(defect_types)}")


def generate_dataset(
    out: str | os.PathLike,
    *,
    n_train_good: int = 40,
    n_test_good: int = 10,
    n_per_defect: int = 12,
    defect_types: Sequence[str] = DEFECT_TYPES,
    image_size: int = 128,
    seed: int = 0,
    grey: bool = False,
) -> SyntheticSummary:
    """Write a seeded, byte-deterministic MVTec-layout dataset of one synthetic product under out."""
    _validate(
        counts={"n_train_good": n_train_good, "n_test_good": n_test_good, "n_per_defect": n_per_defect},
        defect_types=defect_types,
        image_size=image_size,
    )
    root = Path(out)
    _prepare_root(root)
    (root / MARKER_NAME).write_text(
        f"VisInspect synthetic dataset; seed={seed} size={image_size} grey={grey}\n", encoding="utf-8"
    )
    # Independent streams per split and defect type: changing one count never changes the other images.
    style = make_style(np.random.default_rng([seed, 0]), image_size)

    def finish(image: np.ndarray) -> np.ndarray:
        """The image as it is stored: RGB, or one grey channel when grey=True."""
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if grey else image

    for split, count, stream in (("train", n_train_good, 1), ("test", n_test_good, 2)):
        folder = root / split / "good"
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng([seed, stream])
        for i in range(count):
            _write_png(folder / f"{i:03d}.png", finish(make_surface(rng, image_size, style=style)))

    defect_counts: dict[str, int] = {}
    for kind in defect_types:
        images = root / "test" / kind
        masks = root / "ground_truth" / kind
        images.mkdir(parents=True, exist_ok=True)
        masks.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng([seed, 3 + DEFECT_TYPES.index(kind)])
        for i in range(n_per_defect):
            sample = draw_defect(make_surface(rng, image_size, style=style), kind, rng)
            _write_png(images / f"{i:03d}.png", finish(sample.image))
            _write_png(masks / f"{i:03d}_mask.png", sample.mask.astype(np.uint8) * 255)
        defect_counts[kind] = n_per_defect

    return SyntheticSummary(
        root=root, n_good=n_train_good + n_test_good, defect_counts=defect_counts, image_size=image_size
    )
