"""The opt-in int8 CPU path: calibrated on the product's images, it gives the same verdicts as fp32."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data.decode import read_image
from engine.inference import Inspector
from engine.inference.quantize import QuantizationError, quantized_engine
from engine.modelfile import load_model
from engine.sources import list_images

pytestmark = pytest.mark.skipif(quantized_engine() is None, reason="this torch build has no quantized CPU engine")


def test_int8_agrees_with_fp32_on_held_out_parts(model_file, synthetic_dataset):
    loaded = load_model(model_file)
    test = list_images(synthetic_dataset / "test")
    # Good parts and defects both: ranges taken from good parts alone clip the defects' activations.
    calibration = [read_image(p) for p in list_images(synthetic_dataset / "train")[:8] + test[::3]]
    held_out = [read_image(p) for i, p in enumerate(test) if i % 3]
    fp32 = Inspector(loaded, device="cpu", precision="fp32").inspect(held_out)
    int8_inspector = Inspector(loaded, device="cpu", precision="int8", calibration=calibration)
    assert int8_inspector.precision_name == "int8"
    int8 = int8_inspector.inspect(held_out)
    agree = np.mean([a.verdict == b.verdict for a, b in zip(fp32, int8)])
    corr = [np.corrcoef(a.heatmap.ravel(), b.heatmap.ravel())[0, 1] for a, b in zip(fp32, int8)]
    assert agree >= 0.95, agree
    assert np.median(corr) >= 0.95, sorted(corr)[:5]
    assert np.median([abs(a.p_anomaly - b.p_anomaly) for a, b in zip(fp32, int8)]) < 0.05


def test_int8_without_calibration_images_says_what_it_needs(model_file):
    loaded = load_model(model_file)
    with pytest.raises(QuantizationError, match="calibration images"):
        Inspector(loaded, device="cpu", precision="int8")
    with pytest.raises(QuantizationError, match="at least 4"):
        Inspector(loaded, device="cpu", precision="int8", calibration=[np.zeros((64, 64, 3), np.uint8)])


def test_unknown_precision_names_the_allowed_ones(model_file):
    with pytest.raises(ValueError, match="fp32, bf16, fp16, int8"):
        Inspector(load_model(model_file), device="cpu", precision="int4")
