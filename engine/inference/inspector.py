"""Inspector: a loaded product model that turns images into typed GOOD/ANOMALY inspections."""
from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from engine.data.decode import read_image
from engine.errors import VisInspectError
from engine.inference.device import decode_workers, describe_device, resolve_device, share_cpu_with_torch
from engine.inference.localize import heatmap_to_boxes, normalize_heatmap, upsample
from engine.modelfile import LoadedModel, ModelMeta, load_model
from engine.types import ANOMALY, GOOD, PRECISIONS, Inspection, Timings

BF16_WEIGHT_COPY = True  # CPU bf16: run a bf16 copy of the weights instead of autocast
INT8_CHECK_KEY = "int8_check"  # in ModelMeta.training: int8_check()'s record from the held-out split
# Quantizing takes seconds; a model file loaded again in the same process (the station and the
# Evaluate tab, a reload) reuses its int8 conv stack: (file sha256, calibration digest) -> Quantized.
_INT8_CACHE: OrderedDict = OrderedDict()
_INT8_CACHE_SIZE = 2
_INT8_CACHE_LOCK = threading.Lock()


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


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    """The CPU feature flags Linux reports (empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bf16 natively (AVX512-BF16 or AMX-BF16) and oneDNN can use it."""
    if not _cpu_flags() & {"avx512_bf16", "amx_bf16"}:
        return False
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_has_int8_dot() -> bool:
    """True where the CPU has int8 dot-product instructions (VNNI or AMX-INT8), which make int8 pay off."""
    return bool(_cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


def auto_precision(device: torch.device) -> str:
    """What precision='auto' runs when int8 is not chosen: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32.

    The reduced precisions are the default because `visinspect bench` measured them to agree with
    fp32 (verdicts >= 99.5%, heatmap correlation >= 0.99 on real sets; docs/benchmark.md).
    VISINSPECT_CPU_BF16=0 keeps CPUs on fp32.
    """
    if device.type == "cuda":
        return "fp16"
    if device.type == "cpu" and os.environ.get("VISINSPECT_CPU_BF16", "1") != "0" and cpu_has_native_bf16():
        return "bf16"
    return "fp32"


def auto_int8_wanted(device: torch.device) -> bool:
    """Whether precision='auto' tries int8: on CPUs with VNNI/AMX-INT8, unless VISINSPECT_CPU_INT8=0.

    Trying is not using: the Inspector keeps int8 only if it passes the fp32 agreement gate on the
    model's held-out check from training and on its calibration images here (Inspector._try_int8).
    """
    return device.type == "cpu" and os.environ.get("VISINSPECT_CPU_INT8", "1") != "0" and cpu_has_int8_dot()


def _autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "auto":
        precision = auto_precision(device)
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": None}[precision]


class Inspector:
    """Runs a product model on batches of RGB uint8 images under torch.inference_mode()."""

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        device: str | torch.device = "auto",
        precision: str = "auto",
        compile: bool = False,
        calibration: Sequence[np.ndarray] | None = None,
    ) -> None:
        """calibration: RGB uint8 images of the product, good and defective, for the int8 CPU path (default: the model file's)."""
        self.device = resolve_device(device)
        share_cpu_with_torch(self.device)
        self.loaded = loaded
        self.model = loaded.model.to(self.device).eval()
        if self.device.type in ("cpu", "cuda"):
            self.model = self.model.to(memory_format=torch.channels_last)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick its fastest kernels once
        self.precision = precision
        self.preprocess = loaded.meta.preprocessing()
        self.threshold = float(loaded.meta.threshold)
        if calibration is None:
            calibration = loaded.calibration
        self.precision_note = ""  # why this precision runs, shown to the operator
        int8_features = None
        if precision == "int8":
            int8_features = self._quantize(calibration).features
        elif precision == "auto" and auto_int8_wanted(self.device):
            int8_features, self.precision_note = self._try_int8(calibration)
        self._int8 = int8_features is not None
        self._amp_dtype = None if self._int8 else _autocast_dtype(self.device, precision)
        self._net = self.model  # the module forward() runs
        if self.device.type == "cpu" and self._amp_dtype is torch.bfloat16 and BF16_WEIGHT_COPY:
            # CPU autocast re-casts every weight to bf16 on every call; a bf16 copy made once gives
            # bit-identical outputs without that cost. The fp32 model stays as it is.
            self._net = copy.deepcopy(self.model).to(torch.bfloat16)
        self._features = int8_features if self._int8 else self._net.forward_features
        if compile:  # optional: worth it on CUDA stations that run long batches; the first call compiles
            self._features = torch.compile(self._features, dynamic=False)
        self.box_threshold = float(loaded.meta.box_threshold)
        self.min_area_fraction = float(loaded.meta.min_area_fraction)
        self._lock = threading.Lock()

    @classmethod
    def from_file(
        cls, path: str | os.PathLike, *, device: str | torch.device = "auto", precision: str = "auto", compile: bool = False
    ) -> Inspector:
        """Load a model file onto the best available device."""
        return cls(load_model(path), device=device, precision=precision, compile=compile)

    def _quantize(self, calibration: Sequence[np.ndarray] | None):
        """The int8 conv stack calibrated on the product's images, or a QuantizationError saying why not."""
        from engine.inference.quantize import QuantizationError, quantize_features

        if self.device.type != "cpu":
            raise QuantizationError(f"precision int8 runs on the CPU only, not on {self.device.type}; use fp16 on CUDA")
        if calibration is None or len(calibration) == 0:
            raise QuantizationError(
                "precision int8 needs calibration images of the product: this model file has none (models trained "
                "before they were stored with the model); retrain it, or use precision auto, fp32 or bf16"
            )
        batch = self.preprocess.batch(list(calibration))
        if not self.loaded.sha256:  # a model in memory (training): nothing identifies it for the cache
            return quantize_features(self.model, batch)
        key = (self.loaded.sha256, hashlib.sha256(batch.numpy().tobytes()).hexdigest())
        with _INT8_CACHE_LOCK:
            if key in _INT8_CACHE:
                _INT8_CACHE.move_to_end(key)
                return _INT8_CACHE[key]
        quantized = quantize_features(self.model, batch)
        with _INT8_CACHE_LOCK:
            _INT8_CACHE[key] = quantized
            while len(_INT8_CACHE) > _INT8_CACHE_SIZE:
                _INT8_CACHE.popitem(last=False)
        return quantized

    def _try_int8(self, calibration: Sequence[np.ndarray] | None):
        """For precision auto: (int8 conv stack, note) where int8 agrees with fp32, else (None, why not).

        Two checks, both by the gate of engine.inference.agreement: the held-out images checked when
        the model was trained (stored scores, judged at the current threshold), then the model's
        calibration images again on this CPU.
        """
        from engine.inference.agreement import agreement_from_scores
        from engine.inference.quantize import QuantizationError

        fallback = auto_precision(self.device)
        record = self.loaded.meta.training.get(INT8_CHECK_KEY)
        if not record:
            return None, f"{fallback}: int8 was not checked on held-out images when this model was trained"
        try:
            held_out = agreement_from_scores(record["p_fp32"], record["p_int8"], record["heatmap_correlation"], self.threshold)
        except (KeyError, TypeError, ValueError):  # a damaged or foreign record: as if there were none
            return None, f"{fallback}: the model file's int8 check from training is unreadable"
        if not held_out.agrees:
            return None, f"{fallback}: int8 rejected, on the held-out images checked at training {held_out.describe()}"
        if calibration is None or len(calibration) == 0:
            return None, f"{fallback}: the model file stores no calibration images for int8"
        try:
            quantized = self._quantize(calibration)
        except (QuantizationError, ImportError, RuntimeError) as exc:  # torch.ao missing or failing: stay on fallback
            return None, f"{fallback}: int8 is unavailable here ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        p_ref, p_low, corrs = self._int8_scores(quantized, [(quantized.inputs, quantized.fp32_features)])
        here = agreement_from_scores(p_ref, p_low, corrs, self.threshold)
        if not here.agrees:
            return None, f"{fallback}: int8 rejected, on its calibration images on this CPU {here.describe()}"
        return quantized.features, f"int8: on the held-out images checked at training {held_out.describe()}; its calibration images agree on this CPU too"

    def _int8_scores(self, quantized, chunks: Iterable[tuple[torch.Tensor, torch.Tensor | None]]):
        """fp32 and int8 anomaly probabilities and per-image heatmap correlations, over (batch, fp32 features or None) chunks."""
        from engine.inference.agreement import correlation

        p_ref, p_low, corrs = [], [], []
        with torch.inference_mode():
            for batch, fp32 in chunks:
                size = batch.shape[-1]
                outs = []
                for feats in (self.model.forward_features(batch) if fp32 is None else fp32, quantized.features(batch)):
                    p = torch.softmax(self.model.forward_head(feats).float(), dim=1)[:, 1].numpy()
                    outs.append((p, [_full_heatmap(c, size, size) for c in self.model.cam(feats).float().numpy()]))
                (pr, hr), (pl, hl) = outs
                p_ref += pr.tolist()
                p_low += pl.tolist()
                corrs += [correlation(a, b) for a, b in zip(hr, hl)]
        return p_ref, p_low, corrs

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
        if self._int8:
            return "int8"
        return "fp32" if self._amp_dtype is None else str(self._amp_dtype).removeprefix("torch.").replace("float", "fp").replace("bfp16", "bf16")

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
        heatmap = _full_heatmap(cam, shape[0], shape[1])
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

    def _run_model(self, resized: np.ndarray) -> tuple[ModelOutput, float]:
        """Normalise and run a resized uint8 batch; the output and the milliseconds it took."""
        t0 = time.perf_counter()
        out = self.forward(self.preprocess.normalize(self._to_device(resized)))
        return out, (time.perf_counter() - t0) * 1000

    def _judge_batch(
        self, out: ModelOutput, model_ms: float, shapes: Sequence[tuple[int, int]], pre_ms: float, threshold, box_threshold
    ) -> list[Inspection]:
        n = len(shapes)
        results = []
        for i, shape in enumerate(shapes):
            t = time.perf_counter()
            insp = self.judge(out.p_anomaly[i], out.cams[i], shape, threshold=threshold, box_threshold=box_threshold)
            post = (time.perf_counter() - t) * 1000
            results.append(
                replace(insp, timings=Timings(preprocess_ms=pre_ms / n, model_ms=model_ms / n, postprocess_ms=post))
            )
        return results

    def _inspect_resized(
        self, resized: np.ndarray, shapes: Sequence[tuple[int, int]], pre_ms: float, threshold, box_threshold
    ) -> list[Inspection]:
        out, model_ms = self._run_model(resized)
        return self._judge_batch(out, model_ms, shapes, pre_ms, threshold, box_threshold)

    def _to_device(self, resized: np.ndarray) -> torch.Tensor:
        """The uint8 batch on the model's device; on CUDA through pinned memory, normalised there (4x less to copy)."""
        batch = torch.from_numpy(resized)
        if self.device.type == "cuda":
            return batch.pin_memory().to(self.device, non_blocking=True)
        return batch

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
        workers: int | None = None,
        keep_images: bool = False,
        stop: threading.Event | None = None,
        overlap: bool | None = None,
    ) -> Iterator[FileResult]:
        """Inspect files in order; decoding runs in a thread pool one batch ahead of the model.

        With `overlap` (default: on CUDA) the model runs in its own thread, one batch ahead of the
        heatmap and box post-processing, so the GPU is not idle while the CPU post-processes; on a
        CPU both would compete for the same cores. Results and their order are the same either way.
        An unreadable file yields a FileResult with its error and the run goes on.
        """
        paths = [str(p) for p in paths]
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1; got {batch_size}")
        overlap = self.device.type == "cuda" if overlap is None else bool(overlap)
        workers = decode_workers(self.device) if workers is None else workers

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
                for i, insp in zip(ok, self._judge_batch(out, model_ms, shapes, pre_ms, None, None)):
                    inspections[i] = insp
            for i, path in enumerate(chunk):
                image, _, error = loaded[i]
                yield FileResult(path=path, inspection=inspections.get(i), error=error, image=image if keep_images else None)

        model_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model") if overlap else None
        try:
            with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="decode") as pool:
                chunks = [paths[i : i + batch_size] for i in range(0, len(paths), batch_size)]
                pending = [pool.submit(load, p) for p in chunks[0]] if chunks else []
                waiting = None  # the previous batch, its model run still in flight (overlap only)
                for ci, chunk in enumerate(chunks):
                    if stop is not None and stop.is_set():
                        for f in pending:
                            f.cancel()
                        return  # a batch still in the model thread is dropped, as if never started
                    t0 = time.perf_counter()
                    loaded = [f.result() for f in pending]
                    pre_ms = (time.perf_counter() - t0) * 1000
                    pending = [pool.submit(load, p) for p in chunks[ci + 1]] if ci + 1 < len(chunks) else []
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
                if waiting is not None:
                    yield from finish(*waiting)
        finally:
            if model_pool is not None:
                model_pool.shutdown(wait=True)


def int8_check(loaded: LoadedModel, images: Sequence[np.ndarray]) -> dict | None:
    """fp32 vs int8 scores on held-out images (RGB uint8), stored with a model so auto can judge int8 at any threshold.

    None where this torch has no quantized CPU engine or the model has too few calibration images.
    """
    from engine.inference.quantize import MIN_CALIBRATION_IMAGES, quantized_engine

    if quantized_engine() is None or loaded.calibration is None or len(loaded.calibration) < MIN_CALIBRATION_IMAGES:
        return None
    cpu = Inspector(replace(loaded, model=copy.deepcopy(loaded.model).cpu(), sha256=""), device="cpu", precision="fp32")
    chunks = ((cpu.preprocess.batch(list(images[i : i + 8])), None) for i in range(0, len(images), 8))
    p_ref, p_low, corrs = cpu._int8_scores(cpu._quantize(loaded.calibration), chunks)
    return {
        "images": len(p_ref),
        "p_fp32": [round(p, 6) for p in p_ref],
        "p_int8": [round(p, 6) for p in p_low],
        "heatmap_correlation": [round(c, 5) for c in corrs],
        "cpu_int8_dot": cpu_has_int8_dot(),
        "torch": torch.__version__,
    }


def _full_heatmap(cam: np.ndarray, height: int, width: int) -> np.ndarray:
    """normalize_heatmap(upsample(cam, height, width)), computed in float32 in place.

    Equal to the float64 reference within a few float32 ulps (< 1e-6) and about 10x cheaper on a
    full-size map; maps with NaN/inf or a (near-)flat range take the reference path.
    """
    cam = np.asarray(cam, dtype=np.float32)
    if cam.ndim != 2 or cam.size == 0 or not np.isfinite(cam).all():
        return normalize_heatmap(upsample(cam, height, width) if cam.ndim == 2 and cam.size else cam)
    up = upsample(cam, height, width)
    lo, hi, _, _ = cv2.minMaxLoc(up)
    span = hi - lo
    if not (span > 1e-20 and np.isfinite(span)):
        return normalize_heatmap(up)
    np.subtract(up, np.float32(lo), out=up)
    np.multiply(up, np.float32(1.0 / span), out=up)
    np.clip(up, 0.0, 1.0, out=up)
    return up


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"images must be RGB uint8 arrays of shape (H, W, 3); got {desc}")
    return image
