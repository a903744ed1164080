"""The OpenVINO backend for CPUs: OpenVINO computes the conv stack, torch the head and CAM, behind the agreement gate.

`--backend openvino` (RuntimeOptions.backend) runs the model's conv5_3 features in OpenVINO only where they
agree with torch fp32 on the check images the model file carries (the gate of engine.inference.agreement,
judged at the threshold in force); otherwise the Inspector runs torch fp32 and Runtime.note says why in one
line. OpenVINO runs bf16 by itself on CPUs with AVX512-BF16/AMX unless told otherwise, so the precision hint
is always set: f32, or bf16 when precision bf16 is asked for. int8 is NNCF's post-training quantization
(engine.inference.openvino_int8), asked for, or under auto where torch's auto would try int8; behind the same gate.
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
_COMPILED: OrderedDict = OrderedDict()  # (model sha256, hint[, calibration]) -> compiled conv stack; converting takes seconds
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


def feature_graph(loaded: LoadedModel):
    """The model's conv stack as an OpenVINO model (dynamic batch, fp32 weights), not yet compiled."""
    import copy

    from engine.inference.trace_gate import GATE

    ov = import_openvino()
    size = loaded.meta.input_size
    features = FeatureStack(copy.deepcopy(loaded.model).float().cpu().eval()).eval()
    graph = io.BytesIO()  # through ONNX in memory: seconds faster than OpenVINO's own torch tracing, and the same graph
    with GATE.tracing(), torch.no_grad(), warnings.catch_warnings():  # tracing: no model may run meanwhile
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice (engine.export.onnx_file says why)
        torch.onnx.export(features, (torch.zeros(1, 3, size, size),), graph, dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["conv5_3"], dynamic_axes={"x": {0: "batch"}, "conv5_3": {0: "batch"}})  # fmt: skip
    graph.seek(0)
    try:
        return ov.convert_model(graph)
    except ov_failures() as exc:
        raise OpenVinoUnavailable(f"OpenVINO cannot run this model here: {first_line(exc)}") from None


def compile_cpu(model, hint: str):
    """model compiled for the CPU with the precision hint set (cpu_config), or OpenVinoUnavailable saying why not."""
    try:
        return import_openvino().Core().compile_model(model, "CPU", cpu_config(hint))
    except ov_failures() as exc:
        raise OpenVinoUnavailable(f"OpenVINO cannot run this model here: {first_line(exc)}") from None


def first_line(exc: BaseException) -> str:
    """An exception as one short line for a note."""
    return str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__


def cached(key, make):
    """make() kept under key (a model file's hash and what was built from it); a model only in memory (no hash) is not kept."""
    if key[0]:
        with _LOCK:
            if key in _COMPILED:
                _COMPILED.move_to_end(key)
                return _COMPILED[key]
    compiled = make()
    if key[0]:
        with _LOCK:
            _COMPILED[key] = compiled
            while len(_COMPILED) > _COMPILED_SIZE:
                _COMPILED.popitem(last=False)
    return compiled


def _compile(loaded: LoadedModel, hint: str):
    """The model's conv stack converted to OpenVINO and compiled for the CPU (kept per model file and hint)."""
    return cached((loaded.sha256, hint), lambda: compile_cpu(feature_graph(loaded), hint))


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
    """The OpenVINO conv stack for loaded at precision auto/fp32 (hint f32) or bf16 (int8: openvino_int8_features)."""
    if precision not in HINTS:
        raise ValueError(f"OpenVINO float precision must be one of {', '.join(HINTS)}; got {precision!r}")
    hint = HINTS[precision]
    return OpenVinoFeatures(_compile(loaded, hint), hint)


class _Check:
    """The model's check images, normalised, and torch fp32's conv5_3 for them (computed once), to judge any conv stack."""

    def __init__(self, loaded: LoadedModel, calibration, threshold: float) -> None:
        self.loaded, self.threshold = loaded, threshold
        self.batch = loaded.meta.preprocessing().batch(list(calibration))
        self._fp32: torch.Tensor | None = None

    def agreement(self, features):
        from engine.inference.agreement import agreement_from_scores
        from engine.inference.runtime import int8_scores
        from engine.inference.trace_gate import GATE

        model = self.loaded.model
        if self._fp32 is None:
            with torch.inference_mode(), GATE.model_call():
                self._fp32 = model.forward_features(self.batch.to(next(model.parameters()).device)).float().cpu()
        p_ref, p_low, corrs = int8_scores(model, SimpleNamespace(features=features), [(self.batch, self._fp32)])
        return agreement_from_scores(p_ref, p_low, corrs, self.threshold)


def _held_out_int8(loaded: LoadedModel, threshold: float):
    """(Agreement, '') from the int8 check stored at training (torch int8 on held-out images), or (None, why not)."""
    from engine.inference.agreement import agreement_from_scores
    from engine.inference.runtime import INT8_CHECK_KEY

    record = loaded.meta.training.get(INT8_CHECK_KEY)
    if not record:
        return None, "int8 not tried: it was not checked on held-out images when this model was trained"
    try:
        held_out = agreement_from_scores(record["p_fp32"], record["p_int8"], record["heatmap_correlation"], threshold)
    except (KeyError, TypeError, ValueError):  # a damaged or foreign record: as if there were none
        return None, "int8 not tried: the model file's int8 check from training is unreadable"
    if not held_out.agrees:
        return None, f"int8 not tried: rejected on the held-out images checked at training ({held_out.describe()})"
    return held_out, ""


def _try_int8(loaded: LoadedModel, device: torch.device, calibration, check: _Check, *, explicit: bool):
    """(OpenVINO int8 Runtime, '') where NNCF's int8 conv stack passes the gate, else (None, why not in a few words).

    auto also needs the int8 check stored at training to agree, as torch int8 does under auto."""
    from engine.inference.openvino_int8 import openvino_int8_features
    from engine.inference.runtime import Runtime

    held_out = None
    if not explicit:
        held_out, why = _held_out_int8(loaded, check.threshold)
        if held_out is None:
            return None, why
    try:
        features = openvino_int8_features(loaded, calibration)
    except OpenVinoUnavailable as exc:
        return None, f"int8 unavailable ({first_line(exc)})"
    here = check.agreement(features)
    if not here.agrees:
        return None, f"OpenVINO int8 rejected, on the model's check images {here.describe()}"
    note = f"OpenVINO int8: on the model's check images {here.describe()}"
    if held_out is not None:
        note += f"; on the held-out images checked at training (torch int8) {held_out.describe()}"
    return Runtime(device, "int8", note, features, backend="openvino"), ""


def openvino_runtime(loaded: LoadedModel, device: torch.device, precision: str, *, threshold: float, calibration=None):
    """A Runtime with OpenVINO's conv stack where it agrees with fp32 on the model's check images, else torch fp32 and why.

    int8 (NNCF) runs where asked, or under auto on CPUs where torch's auto would try int8; where it does not pass,
    OpenVINO f32 is tried next and the note ends with why int8 was not used.
    """
    from engine.inference.runtime import Runtime, auto_int8_wanted

    if device.type != "cpu":
        raise ValueError(f"backend openvino runs on the CPU, not on {device.type}; use device cpu or backend torch")
    if precision not in (*HINTS, "int8"):
        raise ValueError(f"backend openvino runs precision {', '.join((*HINTS, 'int8'))}; got {precision!r} (fp16 is torch's, on CUDA)")
    if calibration is None or len(calibration) == 0:
        return Runtime(device, "fp32", "fp32 (torch): OpenVINO not used, the model file stores no images to check it on")
    check = _Check(loaded, calibration, threshold)
    why_not_int8 = ""
    if precision == "int8" or (precision == "auto" and auto_int8_wanted(device)):
        runtime, why_not_int8 = _try_int8(loaded, device, calibration, check, explicit=precision == "int8")
        if runtime is not None:
            return runtime
    tail = f"; {why_not_int8}" if why_not_int8 else ""
    try:
        features = openvino_features(loaded, "fp32" if precision == "int8" else precision)
    except OpenVinoUnavailable as exc:  # missing package or a model OpenVINO refuses
        return Runtime(device, "fp32", f"fp32 (torch): OpenVINO unavailable ({first_line(exc)}){tail}")
    here = check.agreement(features)
    if not here.agrees:
        return Runtime(device, "fp32", f"fp32 (torch): OpenVINO {features.hint} rejected, on the model's check images {here.describe()}{tail}")
    used = "bf16" if features.hint == "bf16" else "fp32"
    return Runtime(device, used, f"OpenVINO {features.hint}: on the model's check images {here.describe()}{tail}", features, backend="openvino")
