"""Decode and resize a list of dataset samples in a thread pool (OpenCV releases the GIL)."""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from engine.data.decode import read_image, read_mask
from engine.data.layouts import Sample
from engine.data.preprocess import Preprocess
from engine.errors import Cancelled, VisInspectError


@dataclass(frozen=True, eq=False)
class LoadedSamples:
    """Resized images (N, S, S, 3) uint8 of the samples that decoded, their masks, and the failures."""

    images: np.ndarray
    samples: tuple[Sample, ...]
    masks: tuple[np.ndarray | None, ...]  # bool (S, S) per sample, None without a mask
    errors: tuple[str, ...]


def load_samples(
    samples: Sequence[Sample],
    preprocess: Preprocess,
    *,
    workers: int = 2,
    with_masks: bool = False,
    stop: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LoadedSamples:
    """Decode and resize every sample; unreadable files are listed in errors and left out."""
    size = preprocess.size

    def load(sample: Sample):
        if stop is not None and stop.is_set():
            return None
        try:
            image = preprocess.resize(read_image(sample.path))
        except VisInspectError as exc:
            return str(exc)
        mask = None
        if with_masks and sample.label == 1 and sample.mask_path is not None:
            try:
                mask = read_mask(sample.mask_path, (size, size))
            except VisInspectError:
                mask = None
        elif with_masks and sample.label == 0:
            mask = np.zeros((size, size), bool)
        return image, mask

    images, kept, masks, errors = [], [], [], []
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="load") as pool:
        for i, (sample, out) in enumerate(zip(samples, pool.map(load, samples))):
            if out is None:
                raise Cancelled("loading images was cancelled")
            if isinstance(out, str):
                errors.append(out)
            else:
                images.append(out[0])
                masks.append(out[1])
                kept.append(sample)
            if progress is not None:
                progress(i + 1, len(samples))
    array = np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
    return LoadedSamples(array, tuple(kept), tuple(masks), tuple(errors))
