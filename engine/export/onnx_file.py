"""One self-contained .onnx file (graph, weights and metadata together) and an onnxruntime runner for it."""
from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from engine.errors import ModelFileError
from engine.export.graph import INPUT_NAME, OUTPUT_NAMES, export_metadata, serving_copy
from engine.modelfile import LoadedModel

OPSET = 17


def export_onnx(loaded: LoadedModel, out: str | os.PathLike) -> Path:
    """Write loaded as one .onnx file with its metadata, atomically; any dynamic batch size runs it.

    torch 2.14's default (dynamo) exporter needs onnxscript and writes big weights as external data;
    the TorchScript exporter (dynamo=False) needs neither and writes everything into the one file.
    """
    import onnx

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    net = serving_copy(loaded)
    size = loaded.meta.input_size
    example = torch.zeros(1, size, size, 3, dtype=torch.uint8)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out.parent) as tmp:
        raw = Path(tmp) / "graph.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice: see the docstring
            torch.onnx.export(
                net, (example,), str(raw), dynamo=False, opset_version=OPSET, input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES), dynamic_axes={name: {0: "batch"} for name in (INPUT_NAME, *OUTPUT_NAMES)},
            )  # fmt: skip
        proto = onnx.load(str(raw))
        del proto.metadata_props[:]
        for key, value in export_metadata(loaded).items():
            proto.metadata_props.add(key=key, value=value)
        proto.producer_name = "visinspect"
        proto.doc_string = f"VisInspect {loaded.meta.product}: VGG16-CAM anomaly model with its CAM outputs"
        staged = Path(tmp) / "model.onnx"
        onnx.save_model(proto, str(staged), save_as_external_data=False)
        os.replace(staged, out)
    return out


def read_onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata_props of an exported file (a ModelFileError for a file that is not ONNX)."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except (OSError, ValueError, DecodeError) as exc:
        raise ModelFileError(f"{path}: not an ONNX file ({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__})") from None
    return {p.key: p.value for p in proto.metadata_props}


def has_external_data(path: str | os.PathLike) -> bool:
    """True where any tensor of the file lives in another file (the file is then not self-contained)."""
    import onnx
    from onnx.external_data_helper import uses_external_data

    proto = onnx.load(str(path), load_external_data=False)
    return any(uses_external_data(t) for t in proto.graph.initializer)


class OnnxRunner:
    """An exported file in onnxruntime on the CPU: resized uint8 batches in, (p_anomaly, raw CAMs) out."""

    name = "onnxruntime"

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, resized: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p, cam = self.session.run(["p_anomaly", "cam"], {INPUT_NAME: np.ascontiguousarray(resized, np.uint8)})
        return p, cam
