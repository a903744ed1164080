"""The one precision policy: which device and numeric precision a model runs in, chosen once, with the reason.

`choose_runtime` is called for every Inspector (the station, each tab, each command), so the same
model file, options and threshold always run the same way. precision="auto" runs fp16 on CUDA; on
CPUs with int8 dot-product instructions it runs int8 where int8 agrees with fp32 (the gate in
engine.inference.agreement) on the held-out images checked when the model was trained, judged at the
threshold in force, and on the calibration images the file carries; else bf16 where the CPU has it
natively, else fp32. The reason is kept in Runtime.note for the operator.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from engine.inference.device import describe_device, resolve_device
from engine.inference.localize import full_heatmap
from engine.modelfile import LoadedModel
from engine.types import PRECISIONS, RuntimeOptions

INT8_CHECK_KEY = "int8_check"  # in ModelMeta.training: int8_check()'s record from the held-out split
# Quantizing takes seconds; a model file loaded again in the same process (the station and the
# Evaluate tab, a reload) reuses its int8 conv stack: (file sha256, calibration digest) -> Quantized.
_INT8_CACHE: OrderedDict = OrderedDict()
_INT8_CACHE_SIZE = 2
_INT8_CACHE_LOCK = threading.Lock()
# A model only in memory (just trained, the benchmark's) has no file hash: its int8 stack is kept with
# the model object itself, so the training's int8 check and choosing its runtime quantize it once.
_IN_MEMORY_INT8: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass(frozen=True, eq=False)
class Runtime:
    """A resolved device and precision for one model, why that precision, and the int8 conv stack when int8 runs."""

    device: torch.device
    precision: str  # fp32, bf16, fp16 or int8
    note: str = ""  # why auto chose this precision (empty for an explicit choice)
    int8_features: nn.Module | None = None  # the conv stack that replaces torch's: int8, or OpenVINO's (backend openvino)
    backend: str = "torch"

    @property
    def device_name(self) -> str:
        return describe_device(self.device)

    def describe(self) -> str:
        """'CPU: x86_64, 2 threads · int8' for status bars and reports."""
        return f"{self.device_name} · {self.precision}" + ("" if self.backend == "torch" else f" · {self.backend}")


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
    """Whether precision='auto' tries int8: on CPUs with VNNI/AMX-INT8, unless VISINSPECT_CPU_INT8=0."""
    return device.type == "cpu" and os.environ.get("VISINSPECT_CPU_INT8", "1") != "0" and cpu_has_int8_dot()


def choose_runtime(
    loaded: LoadedModel,
    options: RuntimeOptions = RuntimeOptions(),
    *,
    threshold: float | None = None,
    calibration: Sequence[np.ndarray] | None = None,
) -> Runtime:
    """The device and precision `loaded` runs in under options; int8 is judged at threshold (default: the model's).

    calibration: RGB uint8 images of the product for int8 (default: those the model file carries).
    An explicit precision="int8" that cannot run raises QuantizationError; auto falls back and says why.
    """
    if options.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {options.precision!r}")
    device = resolve_device(options.device)
    calibration = loaded.calibration if calibration is None else calibration
    threshold = float(loaded.meta.threshold if threshold is None else threshold)
    if loaded.meta.method != "cam":
        return _one_class_runtime(device, options.precision)
    if options.backend == "openvino":
        from engine.inference.openvino_backend import openvino_runtime

        return openvino_runtime(loaded, device, options.precision, threshold=threshold, calibration=calibration)
    if options.precision == "int8":
        return Runtime(device, "int8", "", _quantize(loaded, device, calibration).features)
    if options.precision != "auto":
        return Runtime(device, options.precision)
    if auto_int8_wanted(device):
        features, note = _try_int8(loaded, device, calibration, threshold)
        if features is not None:
            return Runtime(device, "int8", note, features)
        return Runtime(device, auto_precision(device), note)
    return Runtime(device, auto_precision(device))


def _one_class_runtime(device: torch.device, precision: str) -> Runtime:
    """A one-class (PaDiM) model's runtime: int8 does not apply (its distances need fp32 inputs); auto says so."""
    from engine.inference.quantize import QuantizationError

    if precision == "int8":
        raise QuantizationError("precision int8 does not apply to one-class (PaDiM) models; use auto, fp32 or bf16")
    if precision != "auto":
        return Runtime(device, precision)
    fallback = auto_precision(device)
    return Runtime(device, fallback, f"{fallback}: int8 does not apply to one-class (PaDiM) models" if auto_int8_wanted(device) else "")


def _quantize(loaded: LoadedModel, device: torch.device, calibration: Sequence[np.ndarray] | None):
    """The int8 conv stack calibrated on the product's images, or a QuantizationError saying why not."""
    from engine.inference.quantize import QuantizationError, quantize_features

    if device.type != "cpu":
        raise QuantizationError(f"precision int8 runs on the CPU only, not on {device.type}; use fp16 on CUDA")
    if calibration is None or len(calibration) == 0:
        raise QuantizationError(
            "precision int8 needs calibration images of the product: this model file has none (models trained "
            "before they were stored with the model); retrain it, or use precision auto, fp32 or bf16"
        )
    batch = loaded.meta.preprocessing().batch(list(calibration))
    model = loaded.model
    digest = hashlib.sha256(batch.numpy().tobytes()).hexdigest()
    if not loaded.sha256:
        with _INT8_CACHE_LOCK:
            kept = _IN_MEMORY_INT8.setdefault(model, {})
            if digest in kept:
                return kept[digest]
        quantized = kept[digest] = quantize_features(model, batch)
        return quantized
    key = (loaded.sha256, digest)
    with _INT8_CACHE_LOCK:
        if key in _INT8_CACHE:
            _INT8_CACHE.move_to_end(key)
            return _INT8_CACHE[key]
    quantized = quantize_features(model, batch)
    with _INT8_CACHE_LOCK:
        _INT8_CACHE[key] = quantized
        while len(_INT8_CACHE) > _INT8_CACHE_SIZE:
            _INT8_CACHE.popitem(last=False)
    return quantized


def _try_int8(loaded: LoadedModel, device: torch.device, calibration, threshold: float):
    """For precision auto: (int8 conv stack, note) where int8 agrees with fp32, else (None, why not).

    Two checks, both by the gate of engine.inference.agreement: the held-out images checked when the
    model was trained (stored scores, judged at threshold), then the calibration images again here.
    """
    from engine.inference.agreement import agreement_from_scores
    from engine.inference.quantize import QuantizationError

    fallback = auto_precision(device)
    record = loaded.meta.training.get(INT8_CHECK_KEY)
    if not record:
        return None, f"{fallback}: int8 was not checked on held-out images when this model was trained"
    try:
        held_out = agreement_from_scores(record["p_fp32"], record["p_int8"], record["heatmap_correlation"], threshold)
    except (KeyError, TypeError, ValueError):  # a damaged or foreign record: as if there were none
        return None, f"{fallback}: the model file's int8 check from training is unreadable"
    if not held_out.agrees:
        return None, f"{fallback}: int8 rejected, on the held-out images checked at training {held_out.describe()}"
    if calibration is None or len(calibration) == 0:
        return None, f"{fallback}: the model file stores no calibration images for int8"
    try:
        quantized = _quantize(loaded, device, calibration)
    except (QuantizationError, ImportError, RuntimeError) as exc:  # torch.ao missing or failing: stay on fallback
        return None, f"{fallback}: int8 is unavailable here ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    p_ref, p_low, corrs = int8_scores(loaded.model, quantized, [(quantized.inputs, quantized.fp32_features)])
    here = agreement_from_scores(p_ref, p_low, corrs, threshold)
    if not here.agrees:
        return None, f"{fallback}: int8 rejected, on its calibration images on this CPU {here.describe()}"
    return quantized.features, f"int8: on the held-out images checked at training {held_out.describe()}; its calibration images agree on this CPU too"


def int8_scores(model: nn.Module, quantized, chunks: Iterable[tuple[torch.Tensor, torch.Tensor | None]]):
    """fp32 and int8 anomaly probabilities and per-image heatmap correlations, over (batch, fp32 features or None) chunks."""
    from engine.inference.agreement import correlation
    from engine.inference.trace_gate import GATE

    p_ref, p_low, corrs = [], [], []
    with torch.inference_mode(), GATE.model_call():
        for batch, fp32 in chunks:
            size = batch.shape[-1]
            outs = []
            for feats in (model.forward_features(batch) if fp32 is None else fp32, quantized.features(batch)):
                p = torch.softmax(model.forward_head(feats).float(), dim=1)[:, 1].numpy()
                outs.append((p, [full_heatmap(c, size, size) for c in model.cam(feats).float().numpy()]))
            (pr, hr), (pl, hl) = outs
            p_ref += pr.tolist()
            p_low += pl.tolist()
            corrs += [correlation(a, b) for a, b in zip(hr, hl)]
    return p_ref, p_low, corrs


def int8_check(loaded: LoadedModel, images: Sequence[np.ndarray]) -> dict | None:
    """fp32 vs int8 scores on held-out images (RGB uint8), stored with a model so auto can judge int8 at any threshold.

    None where this torch has no quantized CPU engine or the model has too few calibration images.
    """
    from engine.inference.quantize import MIN_CALIBRATION_IMAGES, quantized_engine

    if loaded.meta.method != "cam" or quantized_engine() is None or loaded.calibration is None or len(loaded.calibration) < MIN_CALIBRATION_IMAGES:
        return None
    weights = next(loaded.model.parameters())
    on_cpu = weights.device.type == "cpu" and weights.dtype == torch.float32
    # On the CPU in fp32 the model itself is checked, so choosing its runtime later reuses the int8 stack made here.
    cpu = replace(loaded, model=loaded.model.eval() if on_cpu else copy.deepcopy(loaded.model).cpu().float().eval(), sha256="")
    preprocess = loaded.meta.preprocessing()
    chunks = ((preprocess.batch(list(images[i : i + 8])), None) for i in range(0, len(images), 8))
    p_ref, p_low, corrs = int8_scores(cpu.model, _quantize(cpu, torch.device("cpu"), loaded.calibration), chunks)
    return {
        "images": len(p_ref),
        "p_fp32": [round(p, 6) for p in p_ref],
        "p_int8": [round(p, 6) for p in p_low],
        "heatmap_correlation": [round(c, 5) for c in corrs],
        "cpu_int8_dot": cpu_has_int8_dot(),
        "torch": torch.__version__,
    }


def with_int8_check(loaded: LoadedModel, images: Sequence[np.ndarray]) -> LoadedModel:
    """loaded with int8_check() on images recorded in its metadata (unchanged where int8 cannot be checked)."""
    check = int8_check(loaded, images)
    if check is None:
        return loaded
    return replace(loaded, meta=replace(loaded.meta, training={**loaded.meta.training, INT8_CHECK_KEY: check}))
