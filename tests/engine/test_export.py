"""Exported models (ONNX, OpenVINO IR) give torch's probabilities, CAMs and verdicts, and carry what a server needs."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

SIZE = 64  # the smallest input that keeps a 4x4 CAM: export and check take seconds


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A random-init VGG16-CAM model file (64 px) whose probabilities spread around its threshold, with check images."""
    import torch

    from engine.bench.inputs import random_init_model
    from engine.export.check import generated_images
    from engine.modelfile import save_model

    loaded = random_init_model(SIZE, "vgg16")
    with torch.no_grad():
        loaded.model.fc.weight.mul_(40)  # random init scores every image ~0.5; spread them so verdicts differ
    pre = loaded.meta.preprocessing()
    calibration = np.stack([pre.resize(im) for im in generated_images(8, SIZE, seed=1)])
    with torch.no_grad():
        p = torch.softmax(loaded.model(pre.batch(list(calibration))), 1)[:, 1].numpy()
    meta = replace(loaded.meta, product="tiny", threshold=float(np.median(p)), box_threshold=0.7,
                   heat_scale={"low": 0.1, "high": 2.0, "good_level": 0.1, "source": "test", "n_good": 3, "n_defective": 3})  # fmt: skip
    return save_model(tmp_path_factory.mktemp("tiny") / "tiny.safetensors", loaded.model, meta, calibration=calibration)


@pytest.fixture(scope="module")
def onnx_file(tiny_model, tmp_path_factory):
    from engine.export.onnx_file import export_onnx
    from engine.modelfile import load_model

    out = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export_onnx(load_model(tiny_model), out)
    return out


def _torch_outputs(model_path, resized):
    from engine.export.check import torch_reference
    from engine.modelfile import load_model

    return torch_reference(load_model(model_path))(resized)


def test_onnx_export_is_one_file_that_onnxruntime_runs_like_torch(tiny_model, onnx_file):
    from engine.export.check import generated_images
    from engine.export.onnx_file import OnnxRunner, has_external_data

    assert sorted(p.name for p in onnx_file.parent.iterdir()) == ["tiny.onnx"]  # no external data file beside it
    assert not has_external_data(onnx_file)
    resized = np.stack(generated_images(5, SIZE, seed=3))[:, :SIZE, :SIZE]  # any batch size runs
    p_ref, cam_ref = _torch_outputs(tiny_model, resized)
    p, cam = OnnxRunner(onnx_file)(resized)
    assert p.shape == (5,) and cam.shape == (5, SIZE // 16, SIZE // 16)
    np.testing.assert_allclose(p, p_ref, atol=1e-4)
    np.testing.assert_allclose(cam, cam_ref, rtol=1e-3, atol=1e-4 * float(np.abs(cam_ref).max()))
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"] and session.get_inputs()[0].type == "tensor(uint8)"
    assert [o.name for o in session.get_outputs()] == ["logits", "p_anomaly", "cam", "conv5_3"]


def test_onnx_metadata_carries_thresholds_preprocessing_and_the_models_hash(tiny_model, onnx_file):
    from engine.export.onnx_file import read_onnx_metadata
    from engine.modelfile import file_sha256, read_meta

    meta, props = read_meta(tiny_model), read_onnx_metadata(onnx_file)
    assert props["product"] == "tiny" and props["model_sha256"] == file_sha256(tiny_model)
    assert float(props["threshold_decision"]) == meta.threshold and float(props["threshold_box"]) == 0.7
    assert int(props["input_size"]) == SIZE and "uint8" in props["input"]
    assert tuple(json.loads(props["mean"])) == meta.preprocessing().mean and tuple(json.loads(props["std"])) == meta.preprocessing().std
    assert json.loads(props["class_names"]) == list(meta.class_names)
    assert json.loads(props["heat_scale"])["high"] == 2.0


def test_the_check_agrees_on_generated_and_dataset_images(tiny_model, onnx_file, tmp_path):
    from engine.data.synthetic import generate_dataset
    from engine.export.check import check_images, compare
    from engine.export.onnx_file import OnnxRunner
    from engine.modelfile import load_model

    loaded = load_model(tiny_model)
    data = generate_dataset(tmp_path / "set", image_size=SIZE, n_train_good=2, n_test_good=2, n_per_defect=1, seed=2).root
    images, how = check_images(loaded, data, 6)
    assert len(images) == 6 and "not the model's training dataset" in how
    agreement = compare(loaded, OnnxRunner(onnx_file), images)
    assert agreement.images == 6 and agreement.verdict_agreement == 1.0
    assert agreement.max_abs_p_diff < 1e-4 and agreement.heatmap_correlation_min > 0.999


def test_export_command_prints_the_check_and_fails_when_the_export_disagrees(tiny_model, tmp_path, capsys, monkeypatch):
    from engine import cli
    from engine.export.onnx_file import OnnxRunner

    out = tmp_path / "served.onnx"
    assert cli.main(["export", str(tiny_model), "--format", "onnx", "--out", str(out), "--check-images", "8"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "onnxruntime CPU vs torch fp32 on 8 generated images" in printed
    assert "verdict agreement" in printed and "100.0%" in printed and "PASS" in printed

    call = OnnxRunner.__call__
    monkeypatch.setattr(OnnxRunner, "__call__", lambda self, x: (lambda p, c: (1.0 - p, -c))(*call(self, x)))
    assert cli.main(["export", str(tiny_model), "--out", str(out), "--check-images", "8"]) == 1
    captured = capsys.readouterr()
    assert "FAIL" in captured.out and "does not agree with torch" in captured.err


def test_bad_format_or_suffix_is_one_line_naming_the_choices(tiny_model, tmp_path, capsys):
    from engine import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["export", str(tiny_model), "--format", "tflite", "--out", str(tmp_path / "m.tflite")])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1
    assert "tflite" in err and "onnx" in err and "openvino" in err  # argparse quotes the choices or not, by Python version
    assert cli.main(["export", str(tiny_model), "--format", "openvino", "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "must end in .xml" in err
    assert not (tmp_path / "m.onnx").exists()
