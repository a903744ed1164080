"""The OpenVINO backend for CPUs: OpenVINO computes the conv stack, torch the head and CAM, behind the agreement gate.

`--backend openvino` (RuntimeOptions.backend) runs the model's conv5_3 features in OpenVINO only where they
agree with torch fp32 on the check images the model file carries (the gate of engine.inference.agreement,
judged at the threshold in force); otherwise the Inspector runs torch fp32 and Runtime.note says why in one
line. OpenVINO runs bf16 by itself on CPUs with AVX512-BF16/AMX unless told otherwise, so the precision hint
is always set: f32, or bf16 when precision bf16 is asked for.
"""
from __future__ import annotations

import io
import threading
import warnings
from collections import OrderedDict
from types import SimpleNamespace

import numpy as np
import torch

from engine.errors import VisInspectError
from engine.inference.quantize import FeatureStack
from engine.modelfile import LoadedModel

HINTS = {"auto": "f32", "fp32": "f32", "bf16": "bf16"}
_COMPILED: OrderedDict = OrderedDict()  # (model sha256, hint) -> compiled conv stack; converting takes seconds
_COMPILED_SIZE = 2
_LOCK = threading.Lock()


class OpenVinoUnavailable(VisInspectError):
    """OpenVINO is not installed or cannot run the model here."""


def cpu_config(hint: str, threads: int | None = None) -> dict[str, str]:
    """The compile options: the precision hint always set, so a bf16-capable CPU does not silently run bf16;
    as many threads as torch is given (the engine's one CPU budget, see engine.inference.device)."""
    if hint not in ("f32", "bf16"):
        raise ValueError(f"OpenVINO precision hint must be f32 or bf16; got {hint!r}")
    threads = threads or torch.get_num_threads()
    return {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": str(threads)}


def import_openvino():
    """The openvino package, or OpenVinoUnavailable naming what to install."""
    try:
        import openvino

        return openvino
    except ImportError:
        raise OpenVinoUnavailable("OpenVINO is not installed: pip install 'visinspect[export]' (or openvino)") from None


def ov_failures() -> tuple[type[Exception], ...]:
    """What OpenVINO raises when it cannot convert or compile a model (its frontend errors are not RuntimeErrors)."""
    from openvino import frontend

    names = ("GeneralFailure", "OpConversionFailure", "OpValidationFailure", "InitializationFailure", "NotImplementedFailure")
    return (RuntimeError, *(getattr(frontend, n) for n in names if hasattr(frontend, n)))


def _compile(loaded: LoadedModel, hint: str):
    """The model's conv stack converted to OpenVINO (dynamic batch, fp32 weights) and compiled for the CPU."""
    import copy

    from engine.inference.trace_gate import GATE

    ov = import_openvino()
    key = (loaded.sha256, hint)
    with _LOCK:
        if loaded.sha256 and key in _COMPILED:
            _COMPILED.move_to_end(key)
            return _COMPILED[key]
    size = loaded.meta.input_size
    features = FeatureStack(copy.deepcopy(loaded.model).float().cpu().eval()).eval()
    graph = io.BytesIO()  # through ONNX in memory: seconds faster than OpenVINO's own torch tracing, and the same graph
    with GATE.tracing(), torch.no_grad(), warnings.catch_warnings():  # tracing: no model may run meanwhile
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice (engine.export.onnx_file says why)
        torch.onnx.export(features, (torch.zeros(1, 3, size, size),), graph, dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["conv5_3"], dynamic_axes={"x": {0: "batch"}, "conv5_3": {0: "batch"}})  # fmt: skip
    graph.seek(0)
    try:
        compiled = ov.Core().compile_model(ov.convert_model(graph), "CPU", cpu_config(hint))
    except ov_failures() as exc:
        raise OpenVinoUnavailable(f"OpenVINO cannot run this model here: {str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}") from None
    if loaded.sha256:
        with _LOCK:
            _COMPILED[key] = compiled
            while len(_COMPILED) > _COMPILED_SIZE:
                _COMPILED.popitem(last=False)
    return compiled


class OpenVinoFeatures:
    """conv5_3 features from OpenVINO for a normalised batch (N, 3, S, S); returned in the input's dtype."""

    def __init__(self, compiled, hint: str) -> None:
        self.hint = hint
        self._request = compiled.create_infer_request()
        self._lock = threading.Lock()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        arr = np.ascontiguousarray(x.detach().float().cpu().numpy())
        with self._lock:
            out = self._request.infer({0: arr})[0]
        return torch.from_numpy(np.array(out, dtype=np.float32)).to(x.dtype)


def openvino_features(loaded: LoadedModel, precision: str = "fp32") -> OpenVinoFeatures:
    """The OpenVINO conv stack for loaded at precision auto/fp32 (hint f32) or bf16."""
    if precision not in HINTS:
        raise ValueError(f"backend openvino runs precision {', '.join(HINTS)}; got {precision!r} (int8 and fp16 are torch's)")
    hint = HINTS[precision]
    return OpenVinoFeatures(_compile(loaded, hint), hint)


def openvino_runtime(loaded: LoadedModel, device: torch.device, precision: str, *, threshold: float, calibration=None):
    """A Runtime with OpenVINO's conv stack where it agrees with fp32 on the model's check images, else torch fp32 and why."""
    from engine.inference.agreement import agreement_from_scores
    from engine.inference.runtime import Runtime, int8_scores

    if device.type != "cpu":
        raise ValueError(f"backend openvino runs on the CPU, not on {device.type}; use device cpu or backend torch")
    if precision not in HINTS:
        raise ValueError(f"backend openvino runs precision {', '.join(HINTS)}; got {precision!r} (int8 and fp16 are torch's)")
    if calibration is None or len(calibration) == 0:
        return Runtime(device, "fp32", "fp32 (torch): OpenVINO not used, the model file stores no images to check it on")
    try:
        features = openvino_features(loaded, precision)
    except OpenVinoUnavailable as exc:  # missing package or a model OpenVINO refuses
        return Runtime(device, "fp32", f"fp32 (torch): OpenVINO unavailable ({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__})")
    batch = loaded.meta.preprocessing().batch(list(calibration))
    p_ref, p_ov, corrs = int8_scores(loaded.model, SimpleNamespace(features=features), [(batch, None)])
    here = agreement_from_scores(p_ref, p_ov, corrs, threshold)
    if not here.agrees:
        return Runtime(device, "fp32", f"fp32 (torch): OpenVINO {features.hint} rejected, on the model's check images {here.describe()}")
    used = "bf16" if features.hint == "bf16" else "fp32"
    return Runtime(device, used, f"OpenVINO {features.hint}: on the model's check images {here.describe()}", features, backend="openvino")
