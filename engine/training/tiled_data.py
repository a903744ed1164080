"""Training data of a tiled model: every sample cut into overlapping tiles at native resolution, each tile labelled.

A tile of a good image is good. A tile of a defect image is defective when the image's ground-truth mask marks a
pixel inside it, good otherwise; without a mask a defect image's tiles cannot be labelled, so supervised tiled
training refuses such a dataset (good-only training uses good images only and needs no masks).
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import torch

from engine.data.decode import read_image, read_mask
from engine.data.images import LoadedSamples
from engine.data.layouts import GOOD, Sample
from engine.data.preprocess import Preprocess
from engine.errors import Cancelled, DatasetError, VisInspectError
from engine.inference.tiles import cut_tiles
from engine.inference.trace_gate import GATE
from engine.tiling import tile_grid


def check_masks(samples: Sequence[Sample], root) -> None:
    """Supervised tiled training labels tiles by the masks: refuse, in one line, defect images without one."""
    missing = [s for s in samples if s.label == 1 and s.mask_path is None]
    if missing:
        raise DatasetError(
            f"{root}: tiled supervised training labels each tile by the defect's mask; {len(missing)} defective images "
            f"have none (e.g. {missing[0].path.name}): add masks, or train good-only"
        )


def load_tiles(
    samples: Sequence[Sample], preprocess: Preprocess, *, tile: int, overlap: int, workers: int = 2,
    stop: threading.Event | None = None,
) -> LoadedSamples:
    """Every tile of every readable sample, resized to the input size, as one sample each (label from the mask)."""

    def load(sample: Sample):
        if stop is not None and stop.is_set():
            return None
        try:
            image = read_image(sample.path)
            mask = read_mask(sample.mask_path, image.shape[:2]) if sample.label == 1 and sample.mask_path else None
        except VisInspectError as exc:
            return str(exc)
        grid = tile_grid(image.shape[0], image.shape[1], tile, overlap)
        labels = [int(mask is not None and mask[t.y : t.y + t.height, t.x : t.x + t.width].any()) for t in grid]
        return cut_tiles(image, grid, preprocess), labels

    images, kept, errors = [], [], []
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="tiles") as pool:
        for sample, out in zip(samples, pool.map(load, samples)):
            if out is None:
                raise Cancelled("loading images was cancelled")
            if isinstance(out, str):
                errors.append(out)
                continue
            images.append(out[0])
            kept.extend(replace(sample, label=y, defect_type=sample.defect_type if y else GOOD) for y in out[1])
    size = preprocess.size
    array = np.concatenate(images) if images else np.zeros((0, size, size, 3), np.uint8)
    return LoadedSamples(array, tuple(kept), tuple([None] * len(kept)), tuple(errors))


def tiled_peaks(
    model, preprocess: Preprocess, samples: Sequence[Sample], *, tile: int, overlap: int, device, batch_size: int,
    stop: threading.Event | None = None,
) -> np.ndarray:
    """Image scores of a one-class model, tiled: the peak distance over each image's tiles, in fp32."""
    peaks = []
    for sample in samples:
        if stop is not None and stop.is_set():
            raise Cancelled("training was cancelled; no model was saved")
        image = read_image(sample.path)
        tiles = cut_tiles(image, tile_grid(image.shape[0], image.shape[1], tile, overlap), preprocess)
        best = -np.inf
        for start in range(0, len(tiles), batch_size):
            x = preprocess.normalize(torch.from_numpy(tiles[start : start + batch_size]).to(device))
            with torch.no_grad(), GATE.model_call():
                best = max(best, float(model.forward_features(x).amax()))
        peaks.append(best)
    return np.asarray(peaks, np.float32)


def balance_tiles(data: LoadedSamples, share: float = 0.25) -> LoadedSamples:
    """Repeat the defective tiles until they are at least `share` of all tiles (a defect covers few of an image's
    tiles: without this a classifier that calls every tile good already scores 95 % and training stops there)."""
    labels = np.array([s.label for s in data.samples])
    bad, good = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    if len(bad) == 0 or len(bad) >= share * len(labels):
        return data
    want = int(np.ceil(share * len(good) / (1.0 - share)))
    order = np.concatenate([np.arange(len(labels)), np.resize(bad, want - len(bad))])
    return LoadedSamples(data.images[order], tuple(data.samples[i] for i in order), tuple(data.masks[i] for i in order), data.errors)
