"""Inspector: a loaded product model that turns images into typed GOOD/ANOMALY inspections."""
from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from engine.data.decode import read_image
from engine.errors import VisInspectError
from engine.inference.device import describe_device, resolve_device
from engine.inference.localize import heatmap_to_boxes, normalize_heatmap, upsample
from engine.modelfile import LoadedModel, ModelMeta, load_model
from engine.types import ANOMALY, GOOD, Inspection, Timings

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class ModelOutput:
    """Raw network output for a batch: anomaly probabilities and low-resolution CAMs."""

    p_anomaly: np.ndarray  # (N,) float32
    cams: np.ndarray  # (N, h, w) float32, raw (not normalised)


@dataclass(frozen=True, eq=False)
class FileResult:
    """One file of a batch run: an inspection, or the one-line reason it could not be inspected."""

    path: str
    inspection: Inspection | None
    error: str | None = None
    image: np.ndarray | None = None  # the decoded RGB image, when asked to keep it


def _autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "auto":
        precision = "fp16" if device.type == "cuda" else "fp32"
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


class Inspector:
    """Runs a product model on batches of RGB uint8 images under torch.inference_mode()."""

    def __init__(self, loaded: LoadedModel, *, device: str | torch.device = "auto", precision: str = "auto") -> None:
        self.device = resolve_device(device)
        self.loaded = loaded
        self.model = loaded.model.to(self.device).eval()
        if self.device.type in ("cpu", "cuda"):
            self.model = self.model.to(memory_format=torch.channels_last)
        self.precision = precision
        self._amp_dtype = _autocast_dtype(self.device, precision)
        self.preprocess = loaded.meta.preprocessing()
        self.threshold = float(loaded.meta.threshold)
        self.box_threshold = float(loaded.meta.box_threshold)
        self.min_area_fraction = float(loaded.meta.min_area_fraction)
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, device: str | torch.device = "auto", precision: str = "auto") -> Inspector:
        """Load a model file onto the best available device."""
        return cls(load_model(path), device=device, precision=precision)

    @property
    def meta(self) -> ModelMeta:
        return self.loaded.meta

    @property
    def model_id(self) -> str:
        return self.loaded.model_id

    @property
    def path(self) -> Path:
        return self.loaded.path

    @property
    def device_name(self) -> str:
        return describe_device(self.device)

    @property
    def precision_name(self) -> str:
        return "fp32" if self._amp_dtype is None else str(self._amp_dtype).removeprefix("torch.").replace("float", "fp").replace("bfp16", "bf16")

    def _amp(self):
        if self._amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self._amp_dtype)

    def forward(self, batch: torch.Tensor) -> ModelOutput:
        """Probabilities and CAMs for a preprocessed batch (N, 3, S, S)."""
        with self._lock, torch.inference_mode(), self._amp():
            feats = self.model.forward_features(batch.to(self.device, non_blocking=True))
            logits = self.model.forward_head(feats)
            cams = self.model.cam(feats)
            probs = torch.softmax(logits.float(), dim=1)[:, 1]
        return ModelOutput(p_anomaly=probs.cpu().numpy(), cams=cams.float().cpu().numpy())

    def judge(
        self,
        p_anomaly: float,
        cam: np.ndarray,
        shape: tuple[int, int],
        *,
        threshold: float | None = None,
        box_threshold: float | None = None,
        timings: Timings = Timings(),
    ) -> Inspection:
        """Verdict, full-size normalised heatmap and (for anomalies) boxes from one image's raw output."""
        threshold = self.threshold if threshold is None else threshold
        box_threshold = self.box_threshold if box_threshold is None else box_threshold
        heatmap = normalize_heatmap(upsample(cam, shape[0], shape[1]))
        verdict = ANOMALY if p_anomaly >= threshold else GOOD
        boxes = (
            heatmap_to_boxes(heatmap, threshold=box_threshold, min_area_fraction=self.min_area_fraction)
            if verdict == ANOMALY
            else ()
        )
        return Inspection(
            verdict=verdict,
            p_anomaly=float(p_anomaly),
            threshold=float(threshold),
            heatmap=heatmap,
            boxes=boxes,
            timings=timings,
            model_id=self.model_id,
        )

    def rejudge(self, inspection: Inspection, *, threshold: float | None = None, box_threshold: float | None = None) -> Inspection:
        """Re-apply thresholds to an existing inspection without running the model again."""
        threshold = self.threshold if threshold is None else threshold
        box_threshold = self.box_threshold if box_threshold is None else box_threshold
        verdict = ANOMALY if inspection.p_anomaly >= threshold else GOOD
        boxes = (
            heatmap_to_boxes(inspection.heatmap, threshold=box_threshold, min_area_fraction=self.min_area_fraction)
            if verdict == ANOMALY
            else ()
        )
        return replace(inspection, verdict=verdict, threshold=float(threshold), boxes=boxes)

    def _inspect_resized(
        self, resized: np.ndarray, shapes: Sequence[tuple[int, int]], pre_ms: float, threshold, box_threshold
    ) -> list[Inspection]:
        t0 = time.perf_counter()
        out = self.forward(self.preprocess.normalize(torch.from_numpy(resized)))
        t1 = time.perf_counter()
        n = len(shapes)
        results = []
        for i, shape in enumerate(shapes):
            t = time.perf_counter()
            insp = self.judge(out.p_anomaly[i], out.cams[i], shape, threshold=threshold, box_threshold=box_threshold)
            post = (time.perf_counter() - t) * 1000
            results.append(
                replace(insp, timings=Timings(preprocess_ms=pre_ms / n, model_ms=(t1 - t0) * 1000 / n, postprocess_ms=post))
            )
        return results

    def inspect(
        self, images: Sequence[np.ndarray], *, threshold: float | None = None, box_threshold: float | None = None
    ) -> list[Inspection]:
        """Inspect RGB uint8 images (any sizes) in one batch; heatmaps and boxes are in each image's pixels."""
        if len(images) == 0:
            return []
        t0 = time.perf_counter()
        resized = np.stack([self.preprocess.resize(_check_image(im)) for im in images])
        pre_ms = (time.perf_counter() - t0) * 1000
        return self._inspect_resized(resized, [im.shape[:2] for im in images], pre_ms, threshold, box_threshold)

    def inspect_files(
        self,
        paths: Iterable[str | os.PathLike],
        *,
        batch_size: int = 8,
        workers: int = 2,
        keep_images: bool = False,
        stop: threading.Event | None = None,
    ) -> Iterator[FileResult]:
        """Inspect files in order; decoding runs in a thread pool one batch ahead of the model.

        An unreadable file yields a FileResult with its error and the run goes on.
        """
        paths = [str(p) for p in paths]
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1; got {batch_size}")

        def load(path: str):
            try:
                image = read_image(path)
                return image, self.preprocess.resize(image), None
            except VisInspectError as exc:
                return None, None, str(exc)

        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="decode") as pool:
            chunks = [paths[i : i + batch_size] for i in range(0, len(paths), batch_size)]
            pending = [pool.submit(load, p) for p in chunks[0]] if chunks else []
            for ci, chunk in enumerate(chunks):
                if stop is not None and stop.is_set():
                    for f in pending:
                        f.cancel()
                    return
                t0 = time.perf_counter()
                loaded = [f.result() for f in pending]
                pre_ms = (time.perf_counter() - t0) * 1000
                pending = [pool.submit(load, p) for p in chunks[ci + 1]] if ci + 1 < len(chunks) else []
                ok = [i for i, (_, r, _) in enumerate(loaded) if r is not None]
                inspections = {}
                if ok:
                    resized = np.stack([loaded[i][1] for i in ok])
                    shapes = [loaded[i][0].shape[:2] for i in ok]
                    for i, insp in zip(ok, self._inspect_resized(resized, shapes, pre_ms, None, None)):
                        inspections[i] = insp
                for i, path in enumerate(chunk):
                    image, _, error = loaded[i]
                    yield FileResult(
                        path=path,
                        inspection=inspections.get(i),
                        error=error,
                        image=image if keep_images else None,
                    )


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"images must be RGB uint8 arrays of shape (H, W, 3); got {desc}")
    return image
