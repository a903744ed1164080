"""Tiled inspection: overlapping tiles at native resolution, run in batches, their maps stitched back into the image.

A defect a few pixels wide on a large image vanishes when the whole image is resized to the model's input; a tiled
model (ModelMeta.tile) sees each tile at the input size instead. p(anomaly) of an image is the max over its tiles,
and the stitched map keeps, where tiles overlap, the hottest tile's value ("max"; "mean" averages them).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import cv2
import numpy as np

from engine.data.decode import read_image
from engine.data.preprocess import Preprocess
from engine.errors import VisInspectError
from engine.inference.prefetch import decode_ahead
from engine.thresholds import Thresholds
from engine.tiling import Tile, tile_grid
from engine.types import Inspection, Timings

if TYPE_CHECKING:
    from engine.inference.inspector import FileResult, Inspector

TILE_BATCH = 32  # tiles per model call: bounds memory on large images
STITCH_MODES = ("max", "mean")


def cut_tiles(image: np.ndarray, grid: Sequence[Tile], preprocess: Preprocess) -> np.ndarray:
    """(N, S, S, 3) uint8: each tile of image resized to the model's input size."""
    return np.stack([preprocess.resize(np.ascontiguousarray(image[t.y : t.y + t.height, t.x : t.x + t.width])) for t in grid])


def stitch(maps: np.ndarray, grid: Sequence[Tile], shape: tuple[int, int], *, mode: str = "max") -> np.ndarray:
    """Per-tile raw maps (N, h, w) -> one raw map of the image at the maps' resolution (h / tile height cells a pixel).

    Where tiles overlap, "max" keeps the hottest tile's value, "mean" averages them.
    """
    if mode not in STITCH_MODES:
        raise ValueError(f"stitch mode must be one of {', '.join(STITCH_MODES)}; got {mode!r}")
    maps = np.asarray(maps, np.float32)
    if len(maps) != len(grid) or len(grid) == 0:
        raise ValueError(f"{len(maps)} tile maps for {len(grid)} tiles")
    h, w = maps.shape[1:]
    sy, sx = h / grid[0].height, w / grid[0].width
    out_h, out_w = max(1, round(shape[0] * sy)), max(1, round(shape[1] * sx))
    total = np.full((out_h, out_w), -np.inf if mode == "max" else 0.0, np.float32)
    count = np.zeros((out_h, out_w), np.float32)
    for m, t in zip(maps, grid):
        y0, x0 = round(t.y * sy), round(t.x * sx)
        y1, x1 = min(out_h, round((t.y + t.height) * sy)), min(out_w, round((t.x + t.width) * sx))
        part = m if (y1 - y0, x1 - x0) == m.shape else cv2.resize(m, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        if mode == "max":
            np.maximum(total[y0:y1, x0:x1], part, out=total[y0:y1, x0:x1])
        else:
            total[y0:y1, x0:x1] += part
        count[y0:y1, x0:x1] += 1
    covered = count > 0
    if mode == "mean":
        total[covered] /= count[covered]
    total[~covered] = total[covered].min()
    return total


@dataclass(frozen=True, eq=False)
class TiledOutput:
    """One image's raw tiled result: p(anomaly) and the out-of-distribution score (each the max over its tiles), the stitched raw map."""

    p_anomaly: float
    cam: np.ndarray
    tiles: int
    ood_score: float | None = None  # None: the model has no guard


def run_tiled(
    inspector: Inspector, images: Sequence[np.ndarray], *, batch_tiles: int = TILE_BATCH, mode: str = "max"
) -> tuple[list[TiledOutput], float, float]:
    """Tile, run and stitch images; the outputs, the milliseconds spent tiling and in the model."""
    meta = inspector.meta
    t0 = time.perf_counter()
    grids = [tile_grid(im.shape[0], im.shape[1], meta.tile, meta.tile_overlap) for im in images]
    tiles = np.concatenate([cut_tiles(im, g, inspector.preprocess) for im, g in zip(images, grids)])
    pre_ms = (time.perf_counter() - t0) * 1000
    probs, cams, oods, model_ms = [], [], [], 0.0
    for start in range(0, len(tiles), batch_tiles):
        out, ms = inspector._run_model(tiles[start : start + batch_tiles])
        probs.append(out.p_anomaly)
        cams.append(out.cams)
        if out.ood_scores is not None:
            oods.append(out.ood_scores)
        model_ms += ms
    p_all, cam_all = np.concatenate(probs), np.concatenate(cams)
    ood_all = np.concatenate(oods) if oods else None  # the guard was fitted on tiles too: each tile is scored
    outputs, start = [], 0
    for im, g in zip(images, grids):
        part = slice(start, start + len(g))
        ood = None if ood_all is None else float(ood_all[part].max())
        outputs.append(TiledOutput(float(p_all[part].max()), stitch(cam_all[part], g, im.shape[:2], mode=mode), len(g), ood))
        start += len(g)
    return outputs, pre_ms, model_ms


def inspect_tiled(inspector: Inspector, images: Sequence[np.ndarray], *, thresholds: Thresholds) -> list[Inspection]:
    """One Inspection per image: heatmap in the image's pixels, boxes in image coordinates, p the max over tiles."""
    if len(images) == 0:
        return []
    outputs, pre_ms, model_ms = run_tiled(inspector, images)
    n, results = len(images), []
    for im, out in zip(images, outputs):
        t = time.perf_counter()
        insp = inspector.judge(out.p_anomaly, out.cam, im.shape[:2], thresholds=thresholds, ood_score=out.ood_score)
        post = (time.perf_counter() - t) * 1000
        results.append(replace(insp, timings=Timings(preprocess_ms=pre_ms / n, model_ms=model_ms / n, postprocess_ms=post)))
    return results


def inspect_files_tiled(
    inspector: Inspector,
    paths: Iterable[str],
    *,
    batch_size: int,
    workers: int,
    keep_images: bool,
    stop: threading.Event | None,
    thresholds: Thresholds,
) -> Iterator[FileResult]:
    """Inspector.inspect_files for a tiled model: files decode in a thread pool one batch ahead of the tiled model."""
    from engine.inference.inspector import FileResult

    paths = list(paths)

    def load(path: str):
        try:
            return read_image(path), None
        except VisInspectError as exc:
            return None, str(exc)

    for chunk, loaded, _ in decode_ahead(paths, load, batch_size=batch_size, workers=workers, stop=stop):
        ok = [i for i, (image, _) in enumerate(loaded) if image is not None]
        found = inspect_tiled(inspector, [loaded[i][0] for i in ok], thresholds=thresholds) if ok else []
        inspections = dict(zip(ok, found))
        for i, path in enumerate(chunk):
            image, error = loaded[i]
            yield FileResult(path, inspections.get(i), error, image if keep_images else None)
