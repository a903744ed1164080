"""Inspector: a loaded product model, run as its Runtime says, that turns images into typed inspections."""
from __future__ import annotations

import contextlib
import copy
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from engine.data.decode import read_image
from engine.errors import VisInspectError
from engine.inference.device import decode_workers, share_cpu_with_torch
from engine.inference.localize import CamScale, full_heatmap_and_range
from engine.inference.ood import OodGuard
from engine.inference.prefetch import decode_ahead
from engine.inference.runtime import Runtime, choose_runtime
from engine.inference.tiles import inspect_files_tiled, inspect_tiled
from engine.inference.trace_gate import GATE
from engine.modelfile import LoadedModel, ModelMeta, load_model
from engine.thresholds import Thresholds
from engine.types import Inspection, ModelRef, RuntimeOptions, Timings

BF16_WEIGHT_COPY = True  # CPU bf16: run a bf16 copy of the weights instead of autocast
_AMP_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": None}


@dataclass(frozen=True)
class ModelOutput:
    """Raw network output for a batch: anomaly probabilities and low-resolution CAMs."""

    p_anomaly: np.ndarray  # (N,) float32
    cams: np.ndarray  # (N, h, w) float32, raw (not normalised)
    ood_scores: np.ndarray | None = None  # (N,) out-of-distribution scores (1.0 = the limit); None: guard off


@dataclass(frozen=True, eq=False)
class FileResult:
    """One file of a batch run: an inspection, or the one-line reason it could not be inspected."""

    path: str
    inspection: Inspection | None
    error: str | None = None
    image: np.ndarray | None = None  # the decoded RGB image, when asked to keep it


class Inspector:
    """Runs a product model on batches of RGB uint8 images under torch.inference_mode().

    `thresholds` (a frozen value) may be replaced while a live run goes on: each frame is judged at the
    thresholds in force when it is inspected.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        runtime: Runtime | None = None,
        *,
        device: str | torch.device = "auto",
        precision: str = "auto",
        compile: bool = False,
        calibration: Sequence[np.ndarray] | None = None,
    ) -> None:
        """runtime: as choose_runtime() gave it; without one it is chosen here from device and precision."""
        if runtime is None:
            device = str(device) if isinstance(device, torch.device) else device
            runtime = choose_runtime(loaded, RuntimeOptions(device, precision), calibration=calibration)
        self.runtime = runtime
        self.device = runtime.device
        share_cpu_with_torch(self.device)
        self.loaded = loaded
        self.model = loaded.model.to(self.device).eval()
        if self.device.type in ("cpu", "cuda"):
            self.model = self.model.to(memory_format=torch.channels_last)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick its fastest kernels once
        self.preprocess = loaded.meta.preprocessing()
        self.thresholds = Thresholds.of(loaded.meta)
        self.scale: CamScale | None = loaded.meta.cam_scale  # the absolute heat scale, when the file has one
        self.ref: ModelRef = loaded.ref
        self._ood = OodGuard(loaded.ood, self.device) if loaded.ood is not None else None
        self._amp_dtype = _AMP_DTYPES[runtime.precision]
        self._net = self.model  # the module forward() runs
        if self.device.type == "cpu" and self._amp_dtype is torch.bfloat16 and BF16_WEIGHT_COPY:
            # CPU autocast re-casts every weight to bf16 on every call; a bf16 copy made once gives
            # bit-identical outputs without that cost. The fp32 model stays as it is.
            self._net = copy.deepcopy(self.model).to(torch.bfloat16)
        self._features = runtime.int8_features if runtime.int8_features is not None else self._net.forward_features
        if compile:  # optional: worth it on CUDA stations that run long batches; the first call compiles
            self._features = torch.compile(self._features, dynamic=False)
        # Calls run concurrently (the live loop keeps two frames in flight); only a compiled graph is called one at a time.
        self._lock = threading.Lock() if compile else contextlib.nullcontext()

    @classmethod
    def open(cls, path: str | os.PathLike, options: RuntimeOptions, *, compile: bool = False) -> Inspector:
        """Load a model file and run it under a station's or command's runtime options."""
        loaded = load_model(path)
        return cls(loaded, choose_runtime(loaded, options), compile=compile)

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, device: str = "auto", precision: str = "auto", compile: bool = False) -> Inspector:
        """Inspector.open with the device and precision named one by one."""
        return cls.open(path, RuntimeOptions(device, precision), compile=compile)

    @property
    def meta(self) -> ModelMeta:
        return self.loaded.meta

    @property
    def model_id(self) -> str:
        return self.ref.id

    @property
    def path(self) -> Path:
        return self.loaded.path

    @property
    def threshold(self) -> float:
        """The decision threshold in force."""
        return self.thresholds.decision

    @property
    def device_name(self) -> str:
        return self.runtime.device_name

    @property
    def precision_name(self) -> str:
        return self.runtime.precision

    @property
    def precision_note(self) -> str:
        return self.runtime.note

    def _amp(self):
        if self._amp_dtype is None or self._net is not self.model:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self._amp_dtype)

    def forward(self, batch: torch.Tensor) -> ModelOutput:
        """Probabilities and CAMs for a preprocessed batch (N, 3, S, S)."""
        with self._lock, torch.inference_mode(), self._amp():
            x = batch.to(self.device, non_blocking=True)
            if self._net is not self.model:
                x = x.to(self._amp_dtype)
            feats = self._features(x)
            logits = self._net.forward_head(feats)
            cams = self._net.cam(feats)
            probs = torch.softmax(logits.float(), dim=1)[:, 1]
            ood = self._ood.scores(x, feats).cpu().numpy() if self._ood is not None else None
        return ModelOutput(p_anomaly=probs.cpu().numpy(), cams=cams.float().cpu().numpy(), ood_scores=ood)

    def judge(
        self, p_anomaly: float, cam: np.ndarray, shape: tuple[int, int], *, thresholds: Thresholds | None = None,
        timings: Timings = Timings(), ood_score: float | None = None,
    ) -> Inspection:
        """One image's raw output -> full-size normalised heatmap, its regions, and the verdict at thresholds
        (NOT_PRODUCT when ood_score passes their limit)."""
        thresholds = self.thresholds if thresholds is None else thresholds
        heatmap, cam_range = full_heatmap_and_range(cam, shape[0], shape[1])
        return Inspection(
            p_anomaly=float(p_anomaly),
            thresholds=thresholds,
            heatmap=heatmap,
            regions=thresholds.regions(heatmap),
            model=self.ref,
            timings=timings,
            cam_range=cam_range,
            scale=self.scale,
            ood_score=None if ood_score is None else float(ood_score),
        )

    def _run_model(self, resized: np.ndarray) -> tuple[ModelOutput, float]:
        """Normalise and run a resized uint8 batch; the output and the milliseconds it took."""
        t0 = time.perf_counter()
        with GATE.model_call():
            out = self.forward(self.preprocess.normalize(self._to_device(resized)))
        return out, (time.perf_counter() - t0) * 1000

    def _judge_batch(
        self, out: ModelOutput, model_ms: float, shapes: Sequence[tuple[int, int]], pre_ms: float, thresholds: Thresholds
    ) -> list[Inspection]:
        n = len(shapes)
        results = []
        for i, shape in enumerate(shapes):
            t = time.perf_counter()
            ood = None if out.ood_scores is None else out.ood_scores[i]
            insp = self.judge(out.p_anomaly[i], out.cams[i], shape, thresholds=thresholds, ood_score=ood)
            post = (time.perf_counter() - t) * 1000
            results.append(replace(insp, timings=Timings(preprocess_ms=pre_ms / n, model_ms=model_ms / n, postprocess_ms=post)))
        return results

    def _to_device(self, resized: np.ndarray) -> torch.Tensor:
        """The uint8 batch on the model's device; on CUDA through pinned memory, normalised there (4x less to copy)."""
        batch = torch.from_numpy(resized)
        if self.device.type == "cuda":
            return batch.pin_memory().to(self.device, non_blocking=True)
        return batch

    def inspect(self, images: Sequence[np.ndarray], *, thresholds: Thresholds | None = None) -> list[Inspection]:
        """Inspect RGB uint8 images (any sizes) in one batch; heatmaps and boxes are in each image's pixels."""
        if len(images) == 0:
            return []
        thresholds = self.thresholds if thresholds is None else thresholds
        if self.meta.tile:  # a tiled model: one Inspection per image, its tiles stitched back (tiles.py)
            return inspect_tiled(self, [_check_image(im) for im in images], thresholds=thresholds)
        t0 = time.perf_counter()
        resized = np.stack([self.preprocess.resize(_check_image(im)) for im in images])
        pre_ms = (time.perf_counter() - t0) * 1000
        out, model_ms = self._run_model(resized)
        return self._judge_batch(out, model_ms, [im.shape[:2] for im in images], pre_ms, thresholds)

    def inspect_resized(
        self, resized: np.ndarray, shapes: Sequence[tuple[int, int]], *, thresholds: Thresholds | None = None
    ) -> list[Inspection]:
        """Inspect a batch already resized by self.preprocess, judged in its images' own (H, W): inspect_files'
        model step for callers that decode elsewhere (the archive review's Ray workers)."""
        if self.meta.tile:
            raise ValueError(f"{self.meta.product}: a tiled model inspects whole images, not resized ones")
        out, model_ms = self._run_model(resized)
        return self._judge_batch(out, model_ms, shapes, 0.0, self.thresholds if thresholds is None else thresholds)

    def inspect_files(
        self,
        paths: Iterable[str | os.PathLike],
        *,
        batch_size: int = 8,
        workers: int | None = None,
        keep_images: bool = False,
        stop: threading.Event | None = None,
        overlap: bool | None = None,
        thresholds: Thresholds | None = None,
    ) -> Iterator[FileResult]:
        """Inspect files in order; decoding runs in a thread pool one batch ahead of the model.

        With `overlap` (default: on CUDA) the model runs in its own thread, one batch ahead of the
        heatmap and box post-processing, so the GPU is not idle while the CPU post-processes; on a
        CPU both would compete for the same cores. Results and their order are the same either way.
        An unreadable file yields a FileResult with its error and the run goes on. Every file is judged at
        the thresholds in force when the run starts (or those given).
        """
        paths = [str(p) for p in paths]
        thresholds = self.thresholds if thresholds is None else thresholds  # one rule for the whole run
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1; got {batch_size}")
        overlap = self.device.type == "cuda" if overlap is None else bool(overlap)
        workers = decode_workers(self.device) if workers is None else workers
        if self.meta.tile:
            yield from inspect_files_tiled(self, paths, batch_size=batch_size, workers=workers, keep_images=keep_images,
                                           stop=stop, thresholds=thresholds)  # fmt: skip
            return

        def load(path: str):
            try:
                image = read_image(path)
                return image, self.preprocess.resize(image), None
            except VisInspectError as exc:
                return None, None, str(exc)

        def finish(chunk, loaded, job, pre_ms) -> Iterator[FileResult]:
            inspections = {}
            if job is not None:
                ok, shapes, run = job
                out, model_ms = run.result() if isinstance(run, Future) else run
                for i, insp in zip(ok, self._judge_batch(out, model_ms, shapes, pre_ms, thresholds)):
                    inspections[i] = insp
            for i, path in enumerate(chunk):
                image, _, error = loaded[i]
                yield FileResult(path=path, inspection=inspections.get(i), error=error, image=image if keep_images else None)

        model_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model") if overlap else None
        try:
            chunks = 0
            waiting = None  # the previous batch, its model run still in flight (overlap only)
            for chunk, loaded, pre_ms in decode_ahead(paths, load, batch_size=batch_size, workers=workers, stop=stop):
                chunks += 1
                ok = [i for i, (_, r, _) in enumerate(loaded) if r is not None]
                job = None
                if ok:
                    resized = np.stack([loaded[i][1] for i in ok])
                    shapes = [loaded[i][0].shape[:2] for i in ok]
                    run = model_pool.submit(self._run_model, resized) if model_pool else self._run_model(resized)
                    job = (ok, shapes, run)
                if waiting is not None:
                    yield from finish(*waiting)
                    waiting = None
                if model_pool is not None:
                    waiting = (chunk, loaded, job, pre_ms)
                else:
                    yield from finish(chunk, loaded, job, pre_ms)
            if waiting is not None and chunks * batch_size >= len(paths):  # stopped early: the batch in flight is dropped
                yield from finish(*waiting)
        finally:
            if model_pool is not None:
                model_pool.shutdown(wait=True)


class RecordingInspector(Inspector):
    """An Inspector that keeps every raw CAM it computes, in order: an evaluation's maps, to measure a heat scale from."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cams: list[np.ndarray] = []

    def forward(self, batch: torch.Tensor) -> ModelOutput:
        out = super().forward(batch)
        self.cams.extend(out.cams)
        return out


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"images must be RGB uint8 arrays of shape (H, W, 3); got {desc}")
    return image
