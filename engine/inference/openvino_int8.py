"""OpenVINO int8: the conv stack quantized post-training by NNCF on the product's images the model file carries.

Like torch's int8 (engine.inference.quantize), activation ranges come from the model file's calibration images,
good parts and defects both, and the result is used only behind the agreement gate
(engine.inference.openvino_backend.openvino_runtime). NNCF's PERFORMANCE preset (symmetric int8 weights per
output channel and activations) is what OpenVINO's CPU plugin runs fastest. Activation ranges are the plain
min/max over the calibration images: NNCF's default (quantiles) clips the defects' strongest activations, and
on hazelnut_toy's 11 held-out images one verdict of 11 flipped (max |dp| 0.17); with min/max none did (0.07).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from collections.abc import Sequence

import numpy as np

from engine.inference.openvino_backend import (
    OpenVinoFeatures,
    OpenVinoUnavailable,
    cached,
    compile_cpu,
    feature_graph,
    first_line,
)
from engine.inference.quantize import MIN_CALIBRATION_IMAGES
from engine.modelfile import LoadedModel


def import_nncf():
    """The nncf package with its logging and progress bars quiet, or OpenVinoUnavailable naming what to install."""
    try:
        import nncf
    except ImportError:
        raise OpenVinoUnavailable("NNCF is not installed: pip install 'visinspect[export]' (or nncf)") from None
    nncf.set_log_level(logging.ERROR)
    return nncf


@contextlib.contextmanager
def _quiet():
    """NNCF draws a progress bar on stdout (no switch turns it off) and loads torch's extension builder, which warns
    that there is no CUDA; neither is for an operator. Quantizing happens once per model and takes seconds."""
    extension_log = logging.getLogger("torch.utils.cpp_extension")
    level = extension_log.level
    extension_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        extension_log.setLevel(level)


def quantize_graph(loaded: LoadedModel, batch: np.ndarray):
    """The OpenVINO conv stack with int8 weights and activations, ranges from batch (N, 3, S, S) normalised images."""
    nncf = import_nncf()
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    if batch.ndim != 4 or len(batch) < MIN_CALIBRATION_IMAGES:
        raise OpenVinoUnavailable(f"int8 needs at least {MIN_CALIBRATION_IMAGES} calibration images; the model file has {len(batch)}")
    dataset = nncf.Dataset([batch[i : i + 1] for i in range(len(batch))])
    try:
        with _quiet():
            return nncf.quantize(feature_graph(loaded), dataset, subset_size=len(batch), target_device=nncf.TargetDevice.CPU,
                                 preset=nncf.QuantizationPreset.PERFORMANCE, advanced_parameters=AdvancedQuantizationParameters(
                                     activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX))  # fmt: skip
    except (RuntimeError, ValueError, nncf.InternalError, nncf.UnsupportedModelError, nncf.ValidationError) as exc:
        raise OpenVinoUnavailable(f"NNCF cannot quantize this model: {first_line(exc)}") from None


def openvino_int8_features(loaded: LoadedModel, calibration: Sequence[np.ndarray]) -> OpenVinoFeatures:
    """The NNCF int8 conv stack for loaded, calibrated on RGB uint8 images (kept per model file and calibration set)."""
    batch = loaded.meta.preprocessing().batch(list(calibration)).numpy()
    digest = hashlib.sha256(batch.tobytes()).hexdigest()
    compiled = cached((loaded.sha256, "int8", digest), lambda: compile_cpu(quantize_graph(loaded, batch), "f32"))
    return OpenVinoFeatures(compiled, "int8")
