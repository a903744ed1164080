"""OpenVINO IR (.xml + .bin, fp32 weights) converted from the exported ONNX, and an OpenVINO runner for it."""
from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import numpy as np

from engine.errors import ModelFileError
from engine.export.graph import INPUT_NAME, export_metadata
from engine.export.onnx_file import export_onnx
from engine.inference.openvino_backend import OpenVinoUnavailable, cpu_config, import_openvino, ov_failures
from engine.modelfile import LoadedModel

RT_INFO_ROOT = "visinspect"


def export_openvino(loaded: LoadedModel, out: str | os.PathLike) -> Path:
    """Write out (.xml) and its .bin beside it: the ONNX graph converted by OpenVINO, weights kept fp32, metadata in rt_info.

    ov.save_model compresses weights to fp16 by default; the check against torch is in fp32, so that is turned off.
    """
    ov = import_openvino()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out.parent) as tmp:
        try:
            model = ov.convert_model(str(export_onnx(loaded, Path(tmp) / "model.onnx")))
        except ov_failures() as exc:
            raise OpenVinoUnavailable(f"OpenVINO cannot convert this model: {str(exc).splitlines()[0][:160]}") from None
        for key, value in export_metadata(loaded).items():
            model.set_rt_info(value, [RT_INFO_ROOT, key])
        staged = Path(tmp) / out.name
        ov.save_model(model, str(staged), compress_to_fp16=False)
        os.replace(staged.with_suffix(".bin"), out.with_suffix(".bin"))  # weights first: the .xml names them
        os.replace(staged, out)
    return out


def read_openvino_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The rt_info an export wrote into an .xml (keys as in the ONNX metadata_props)."""
    ov = import_openvino()
    try:
        model = ov.Core().read_model(str(path))
    except RuntimeError as exc:
        raise ModelFileError(f"{path}: not an OpenVINO IR ({str(exc).splitlines()[0][:120]})") from None
    info = model.get_rt_info()
    node = info[RT_INFO_ROOT] if RT_INFO_ROOT in list(info.keys()) else {}
    return {str(k): v.astype(str) for k, v in node.items()}


class OpenVinoRunner:
    """An exported IR compiled for the CPU (precision hint f32 unless bf16 is asked): resized uint8 in, (p, CAMs) out."""

    def __init__(self, path: str | os.PathLike, *, hint: str = "f32", threads: int | None = None) -> None:
        ov = import_openvino()
        self.name = f"OpenVINO {hint}"
        self.compiled = ov.Core().compile_model(str(path), "CPU", cpu_config(hint, threads))
        self._request = self.compiled.create_infer_request()
        self._lock = threading.Lock()

    def __call__(self, resized: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            out = self._request.infer({INPUT_NAME: np.ascontiguousarray(resized, np.uint8)})
            return np.array(out[self.compiled.output("p_anomaly")]), np.array(out[self.compiled.output("cam")])
