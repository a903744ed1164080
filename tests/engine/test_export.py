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


def test_openvino_ir_runs_like_torch_with_fp32_weights_and_the_same_metadata(tiny_model, tmp_path, capsys):
    ov = pytest.importorskip("openvino")
    from engine import cli
    from engine.export.check import generated_images
    from engine.export.openvino_file import OpenVinoRunner, read_openvino_metadata

    xml = tmp_path / "ir" / "tiny.xml"
    assert cli.main(["export", str(tiny_model), "--format", "openvino", "--out", str(xml), "--check-images", "6"]) == 0
    printed = capsys.readouterr().out
    assert "OpenVINO f32 vs torch fp32 on 6 generated images" in printed and "PASS" in printed
    assert sorted(p.name for p in xml.parent.iterdir()) == ["tiny.bin", "tiny.xml"]
    assert xml.with_suffix(".bin").stat().st_size > 0.9 * 4 * 14.7e6  # VGG16's conv weights as fp32, not fp16
    runner = OpenVinoRunner(xml)
    assert runner.compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32  # never a silent bf16
    resized = np.stack(generated_images(3, SIZE, seed=4))[:, :SIZE, :SIZE]
    p_ref, cam_ref = _torch_outputs(tiny_model, resized)
    p, cam = runner(resized)
    np.testing.assert_allclose(p, p_ref, atol=1e-4)
    np.testing.assert_allclose(cam, cam_ref, rtol=1e-3, atol=1e-4 * float(np.abs(cam_ref).max()))
    props = read_openvino_metadata(xml)
    assert props["product"] == "tiny" and int(props["input_size"]) == SIZE and json.loads(props["heat_scale"])["high"] == 2.0


def test_inspector_runs_openvino_where_it_agrees_with_fp32_and_says_so(tiny_model):
    pytest.importorskip("openvino")
    from engine.export.check import generated_images
    from engine.inference import Inspector
    from engine.modelfile import load_model
    from engine.types import RuntimeOptions

    loaded = load_model(tiny_model)
    inspector = Inspector.open(tiny_model, RuntimeOptions("cpu", "auto", "openvino"))
    assert inspector.runtime.backend == "openvino" and inspector.precision_name == "fp32"
    assert "OpenVINO f32: on the model's check images 100.0% of verdicts agree with fp32" in inspector.precision_note
    assert inspector.runtime.describe().endswith("· fp32 · openvino")
    parts = generated_images(6, SIZE, seed=5)
    torch_fp32 = Inspector(loaded, device="cpu", precision="fp32").inspect(parts)
    served = inspector.inspect(parts)
    assert [i.verdict for i in served] == [i.verdict for i in torch_fp32]
    for a, b in zip(served, torch_fp32):
        assert abs(a.p_anomaly - b.p_anomaly) < 1e-4 and np.corrcoef(a.heatmap.ravel(), b.heatmap.ravel())[0, 1] > 0.999


def test_openvino_that_disagrees_or_cannot_be_checked_leaves_the_inspector_on_torch_fp32(tiny_model, monkeypatch):
    pytest.importorskip("openvino")
    from engine.inference import Inspector, openvino_backend
    from engine.modelfile import load_model
    from engine.types import RuntimeOptions

    loaded = load_model(tiny_model)
    from engine.inference.runtime import choose_runtime

    options = RuntimeOptions("cpu", "auto", "openvino")
    none = choose_runtime(replace(loaded, calibration=None), options)
    assert none.backend == "torch" and none.precision == "fp32" and "stores no images to check it on" in none.note

    real = openvino_backend.openvino_features

    def broken(loaded, precision="fp32"):  # OpenVINO gone wrong: inverted feature maps
        features = real(loaded, precision)
        return type("Broken", (), {"hint": features.hint, "__call__": lambda self, x: -features(x)})()

    monkeypatch.setattr(openvino_backend, "openvino_features", broken)
    inspector = Inspector.open(tiny_model, options)
    assert inspector.runtime.backend == "torch" and inspector.precision_name == "fp32"
    assert inspector.precision_note.startswith("fp32 (torch): OpenVINO f32 rejected, on the model's check images")
    assert len(inspector.precision_note.splitlines()) == 1


def test_predict_says_in_one_line_when_it_runs_torch_instead_of_openvino(tiny_model, tmp_path, capsys, monkeypatch):
    pytest.importorskip("openvino")
    import cv2

    from engine import cli
    from engine.export.check import generated_images
    from engine.inference import openvino_backend

    image = tmp_path / "part.png"
    cv2.imwrite(str(image), generated_images(1, SIZE)[0])
    args = ["predict", str(tiny_model), str(image), "--device", "cpu", "--backend", "openvino", "--csv", str(tmp_path / "r.csv")]
    assert cli.main(args) == 0
    assert "OpenVINO" not in capsys.readouterr().err  # used: nothing to say
    real = openvino_backend.openvino_features
    monkeypatch.setattr(openvino_backend, "openvino_features", lambda loaded, precision="fp32": type(
        "Broken", (), {"hint": "f32", "__call__": lambda self, x: -real(loaded, precision)(x)})())  # fmt: skip
    assert cli.main(args) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if "OpenVINO" in line]
    assert len(said) == 1 and "OpenVINO f32 rejected" in said[0] and "fp32 (torch)" in said[0]


def test_openvino_backend_refuses_what_it_cannot_run(tiny_model):
    from engine.inference.runtime import choose_runtime
    from engine.modelfile import load_model
    from engine.types import RuntimeOptions

    with pytest.raises(ValueError, match="torch, openvino"):
        RuntimeOptions("cpu", "auto", "tensorrt")
    with pytest.raises(ValueError, match="auto, fp32, bf16, int8"):
        choose_runtime(load_model(tiny_model), RuntimeOptions("cpu", "fp16", "openvino"))


def test_a_missing_runtime_is_one_line_naming_what_to_install(tiny_model, tmp_path, capsys, monkeypatch):
    import importlib.util

    from engine import cli

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else find_spec(name, *a))
    assert cli.main(["export", str(tiny_model), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "onnxruntime" in err and "visinspect[export]" in err
    assert not (tmp_path / "m.onnx").exists()
