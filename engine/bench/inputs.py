"""What the benchmark runs on: synthetic or given image files, a random-init model, real sets and int8 evidence."""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from engine.data import walk
from engine.data.decode import read_image
from engine.errors import SourceError
from engine.inference.runtime import with_int8_check
from engine.modelfile import LoadedModel, ModelMeta

if TYPE_CHECKING:
    from engine.data.layouts import DatasetIndex

# Real sets for the precision check, looked for in ../shared/data: name -> load_dataset keyword arguments.
KNOWN_SETS = {"hazelnut_toy": {}, "magnetic_tile": {"layout": "folders", "good_dir": "MT_Free"}}


def make_image_set(folder: Path, n: int, *, size: int = 512, distinct: int = 24, seed: int = 0) -> list[Path]:
    """Write n JPEG files (quality 95) of synthetic surfaces, a third of them with a drawn defect."""
    from engine.data.synthetic import DEFECT_TYPES, draw_defect, make_style, make_surface

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    style = make_style(rng, size)
    encoded = []
    for i in range(min(n, distinct)):
        image = make_surface(rng, size, style=style)
        if i % 3 == 2:
            image = draw_defect(image, DEFECT_TYPES[i % len(DEFECT_TYPES)], rng).image
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise RuntimeError("OpenCV could not encode a JPEG")
        encoded.append(buf.tobytes())
    paths = []
    for i in range(n):
        path = folder / f"bench_{i:04d}.jpg"
        path.write_bytes(encoded[i % len(encoded)])
        paths.append(path)
    return paths


def list_images(folder: str | os.PathLike, n: int) -> list[Path]:
    """n part images under folder (the one walker's order, masks skipped), repeated in order when there are fewer."""
    root = Path(folder)
    try:
        found = walk.list_images(root)
    except SourceError:
        raise ValueError(f"--images {root}: not a folder") from None
    if not found:
        raise ValueError(f"--images {root}: no image files found")
    return [found[i % len(found)] for i in range(n)]


def random_init_model(size: int = 224, backbone: str = "vgg16") -> LoadedModel:
    """An in-memory VGG16-CAM with random weights (nothing is downloaded), as a LoadedModel."""
    from engine.data.preprocess import Preprocess
    from engine.model import build_model

    torch.manual_seed(0)
    model, origin = build_model(backbone=backbone, backbone_weights="none")
    model.eval()
    meta = ModelMeta(
        product="bench",
        backbone=backbone,
        backbone_weights={"kind": origin.kind, "detail": origin.detail},
        preprocess=Preprocess(size).to_dict(),
    )
    return LoadedModel(model, meta, Path("<random init>"), "")


def shared_data_root() -> Path | None:
    """../shared/data beside the checkout (or the working folder), where the project's real sets live."""
    checkout = Path(__file__).resolve().parents[2]
    for root in (checkout.parent / "shared" / "data", Path.cwd().parent / "shared" / "data", Path.cwd() / "shared" / "data"):
        if root.is_dir():
            return root
    return None


def _known_sets() -> list[tuple[str, DatasetIndex]]:
    """(name, index) of each known real set present and readable in ../shared/data."""
    from engine.data.layouts import load_dataset
    from engine.errors import DatasetError

    root = shared_data_root()
    if root is None:
        return []
    sets = []
    for name, kwargs in KNOWN_SETS.items():
        if not (root / name).is_dir():
            continue
        try:
            index = load_dataset(root / name, **kwargs)
        except DatasetError:
            continue
        sets.append((name, index))
    return sets


def precision_sets(n_per_set: int) -> list[tuple[str, list[Path]]]:
    """Real image sets from ../shared/data, each sampled evenly over its classes (up to n_per_set)."""
    sets = []
    for name, index in _known_sets():
        by_kind: dict[str, list[Path]] = {}
        for s in index.samples:
            by_kind.setdefault(s.defect_type, []).append(Path(s.path))
        rng = np.random.default_rng(0)
        pools = {k: list(rng.permutation(sorted(v))) for k, v in sorted(by_kind.items())}
        picked: list[Path] = []
        while len(picked) < n_per_set and any(pools.values()):
            for pool in pools.values():
                if pool and len(picked) < n_per_set:
                    picked.append(Path(pool.pop()))
        sets.append((name, picked))
    return sets


def calibration_images(n: int, exclude: Sequence[Path], folder: Path) -> tuple[list[np.ndarray], str]:
    """Images to calibrate the int8 path on: real ones not used by the precision check, else synthetic."""
    excluded = {Path(p) for p in exclude}
    pools: list[list[Path]] = []
    for _, index in _known_sets():
        rest = sorted(Path(s.path) for s in index.samples if Path(s.path) not in excluded)
        pools.append(list(np.random.default_rng(1).permutation(rest)))
    picked = [Path(pool[i]) for i in range(n) for pool in pools if i < len(pool)][:n]
    if len(picked) >= n:
        return [read_image(p) for p in picked], f"{n} real images not in the precision check"
    paths = make_image_set(folder, n, size=256, seed=7)
    return [read_image(p) for p in paths], f"{n} synthetic images"


def with_int8_evidence(loaded: LoadedModel, calibration: Sequence[np.ndarray], held_out: Sequence[np.ndarray]) -> LoadedModel:
    """loaded with calibration images and an int8 check on held_out images, as a trained model file carries them."""
    resize = loaded.meta.preprocessing().resize
    return with_int8_check(replace(loaded, calibration=np.stack([resize(im) for im in calibration])), held_out)
