"""Large synthetic surfaces with defects a few pixels wide (MVTec layout, masks included): the case tiled inspection is for.

Resized to a model's input, a 640 px image shrinks its 4 px speck below one input pixel; a tile at native resolution
keeps it. Same product look and writer as engine/data/synthetic.py.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np

from engine.data.synthetic import MARKER_NAME, SyntheticSummary, _prepare_root, _write_png, make_style, make_surface

SMALL_DEFECT_TYPES = ("speck", "nick")


def draw_small_defect(image: np.ndarray, kind: str, width: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A speck (a round blot `width` px across) or a nick (a stroke 3 x width long, about width / 2 thick), darker or
    brighter than the surface; the image and the bool mask of the pixels it changed."""
    if kind not in SMALL_DEFECT_TYPES:
        raise ValueError(f"small defect type must be one of {', '.join(SMALL_DEFECT_TYPES)}; got {kind!r}")
    h, w = image.shape[:2]
    pad = 3 * width + 2
    cy, cx = int(rng.integers(pad, h - pad)), int(rng.integers(pad, w - pad))
    alpha = np.zeros((h, w), np.float32)
    if kind == "speck":
        cv2.circle(alpha, (cx, cy), max(1, width // 2), 1.0, -1, lineType=cv2.LINE_AA)
    else:
        angle = rng.uniform(0, math.pi)
        dx, dy = 1.5 * width * math.cos(angle), 1.5 * width * math.sin(angle)
        p0, p1 = (round(cx - dx), round(cy - dy)), (round(cx + dx), round(cy + dy))
        cv2.line(alpha, p0, p1, 1.0, max(1, width // 2), lineType=cv2.LINE_AA)
    sign = -1.0 if rng.random() < 0.7 else 1.0
    shift = sign * rng.uniform(55.0, 85.0)
    out = np.clip(image.astype(np.float32) + shift * alpha[:, :, None], 0, 255).round().astype(np.uint8)
    return out, alpha > 0.3


def generate_small_defects(
    out: str | os.PathLike,
    *,
    n_train_good: int = 30,
    n_test_good: int = 15,
    n_per_defect: int = 8,
    image_size: int = 640,
    defect_width: int = 4,
    seed: int = 0,
) -> SyntheticSummary:
    """Write a seeded MVTec-layout dataset of large surfaces with small specks and nicks under out."""
    if image_size < 16 * defect_width or defect_width < 1:
        raise ValueError(f"image_size must be at least 16 x defect_width; got {image_size} and {defect_width}")
    root = Path(out)
    _prepare_root(root)
    (root / MARKER_NAME).write_text(
        f"VisInspect small-defect synthetic dataset; seed={seed} size={image_size} width={defect_width}\n", encoding="utf-8"
    )
    style = make_style(np.random.default_rng([seed, 0]), image_size)
    for split, count, stream in (("train", n_train_good, 1), ("test", n_test_good, 2)):
        folder = root / split / "good"
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng([seed, stream])
        for i in range(count):
            _write_png(folder / f"{i:03d}.png", make_surface(rng, image_size, style=style))
    for k, kind in enumerate(SMALL_DEFECT_TYPES):
        images, masks = root / "test" / kind, root / "ground_truth" / kind
        images.mkdir(parents=True, exist_ok=True)
        masks.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng([seed, 10 + k])
        for i in range(n_per_defect):
            image, mask = draw_small_defect(make_surface(rng, image_size, style=style), kind, defect_width, rng)
            _write_png(images / f"{i:03d}.png", image)
            _write_png(masks / f"{i:03d}_mask.png", mask.astype(np.uint8) * 255)
    return SyntheticSummary(root, n_train_good + n_test_good, {k: n_per_defect for k in SMALL_DEFECT_TYPES}, image_size)
