"""OpenVINO int8 (NNCF) runs the Inspector with torch fp32's verdicts, or falls back and says why; bench shows both backends."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")

SIZE = 64  # the smallest input that keeps a 4x4 CAM: quantizing takes seconds


def _threshold_between_classes(p: np.ndarray) -> float:
    """The middle of the widest gap between scores in their middle half, as a trained model's threshold sits between classes."""
    s = np.sort(p)
    lo, hi = len(s) // 4, 3 * len(s) // 4
    i = lo + int(np.argmax(np.diff(s[lo : hi + 1])))
    return float((s[i] + s[i + 1]) / 2)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model file, held-out images): a random-init VGG16-CAM (64 px) calibrated on generated parts, good and defective,
    and the test split of a synthetic dataset, which the model file does not carry."""
    import torch

    from engine.bench.inputs import random_init_model
    from engine.data.decode import read_image
    from engine.data.synthetic import generate_dataset
    from engine.export.check import generated_images
    from engine.modelfile import save_model

    root = tmp_path_factory.mktemp("ovint8")
    summary = generate_dataset(root / "set", image_size=SIZE, n_train_good=1, n_test_good=4, n_per_defect=2, seed=3)
    held_out = [read_image(p) for p in sorted((summary.root / "test").rglob("*.png"))]
    loaded = random_init_model(SIZE, "vgg16")
    with torch.no_grad():
        loaded.model.fc.weight.mul_(40)  # random init scores every image ~0.5; spread them so verdicts differ
    pre = loaded.meta.preprocessing()
    calibration = np.stack([pre.resize(im) for im in generated_images(8, SIZE, seed=1)])
    with torch.no_grad():
        p = torch.softmax(loaded.model(pre.batch([*calibration, *held_out])), 1)[:, 1].numpy()
    meta = replace(loaded.meta, product="tiny", threshold=_threshold_between_classes(p))
    return save_model(root / "tiny.safetensors", loaded.model, meta, calibration=calibration), held_out


def test_openvino_int8_gives_torch_fp32_verdicts_on_held_out_images(tiny):
    from engine.inference import Inspector
    from engine.modelfile import load_model
    from engine.types import RuntimeOptions

    path, held_out = tiny
    assert len(held_out) >= 10
    served = Inspector.open(path, RuntimeOptions("cpu", "int8", "openvino"))
    assert served.runtime.backend == "openvino" and served.precision_name == "int8", served.precision_note
    assert served.precision_note.startswith("OpenVINO int8: on the model's check images 100.0% of verdicts agree with fp32")
    assert served.runtime.describe().endswith("· int8 · openvino")
    reference = Inspector(load_model(path), device="cpu", precision="fp32").inspect(held_out)
    quantized = served.inspect(held_out)
    assert len({i.verdict for i in reference}) == 2  # good and anomalous parts both: agreement means something
    assert [i.verdict for i in quantized] == [i.verdict for i in reference]
    corr = [np.corrcoef(a.heatmap.ravel(), b.heatmap.ravel())[0, 1] for a, b in zip(quantized, reference)]
    assert np.mean(corr) > 0.95
    assert max(abs(a.p_anomaly - b.p_anomaly) for a, b in zip(quantized, reference)) > 0  # int8, not fp32 under another name


def test_auto_runs_openvino_int8_only_with_an_agreeing_check_from_training(tiny, monkeypatch):
    from engine.inference import runtime as runtime_module
    from engine.inference.runtime import choose_runtime, with_int8_check
    from engine.modelfile import load_model
    from engine.types import RuntimeOptions

    monkeypatch.setattr(runtime_module, "auto_int8_wanted", lambda device: True)  # as on a CPU with VNNI / AMX
    path, held_out = tiny
    loaded = load_model(path)
    auto = RuntimeOptions("cpu", "auto", "openvino")
    unchecked = choose_runtime(loaded, auto)
    assert unchecked.backend == "openvino" and unchecked.precision == "fp32"
    assert unchecked.note.endswith("; int8 not tried: it was not checked on held-out images when this model was trained")
    checked = with_int8_check(loaded, held_out)  # torch int8 against fp32 on the held-out images, as training stores it
    chosen = choose_runtime(checked, auto)
    assert chosen.backend == "openvino" and chosen.precision == "int8", chosen.note
    assert "on the held-out images checked at training (torch int8) 100.0% of verdicts agree" in chosen.note
    monkeypatch.setattr(runtime_module, "auto_int8_wanted", lambda device: False)  # a CPU without int8 instructions
    assert choose_runtime(checked, auto).precision == "fp32"


def test_int8_that_disagrees_or_cannot_run_falls_back_and_predict_says_why_in_one_line(tiny, tmp_path, capsys, monkeypatch):
    from collections import OrderedDict

    import cv2

    from engine import cli
    from engine.inference import openvino_backend, openvino_int8
    from engine.inference.openvino_backend import OpenVinoUnavailable

    path, held_out = tiny
    image = tmp_path / "part.png"
    cv2.imwrite(str(image), cv2.cvtColor(held_out[0], cv2.COLOR_RGB2BGR))
    args = ["predict", str(path), str(image), "--device", "cpu", "--backend", "openvino", "--precision", "int8",
            "--csv", str(tmp_path / "r.csv")]  # fmt: skip
    real = openvino_int8.openvino_int8_features

    def broken(loaded, calibration):  # NNCF gone wrong: inverted feature maps
        features = real(loaded, calibration)
        return type("Broken", (), {"hint": "int8", "__call__": lambda self, x: -features(x)})()

    monkeypatch.setattr(openvino_int8, "openvino_int8_features", broken)
    assert cli.main(args) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if "OpenVINO" in line]
    assert len(said) == 1 and said[0].startswith("visinspect: OpenVINO f32: on the model's check images 100.0%")
    assert "; OpenVINO int8 rejected, on the model's check images" in said[0]

    def missing():
        raise OpenVinoUnavailable("NNCF is not installed: pip install 'visinspect[export]' (or nncf)")

    monkeypatch.setattr(openvino_int8, "import_nncf", missing)
    monkeypatch.setattr(openvino_int8, "openvino_int8_features", real)
    monkeypatch.setattr(openvino_backend, "_COMPILED", OrderedDict())  # not the int8 stack an earlier test compiled
    assert cli.main(args) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if "OpenVINO" in line]
    assert len(said) == 1 and said[0].endswith("; int8 unavailable (NNCF is not installed: pip install 'visinspect[export]' (or nncf))")


def test_bench_shows_torch_and_openvino_side_by_side():
    from engine import bench

    result = bench.run(quick=True, device="cpu", precision="fp32", check=False, workers=1)
    rows = result.to_dict()["backends"]
    assert [(r["backend"], r["precision"], r["measured"]) for r in rows] == [("torch", "fp32", True), ("openvino", "fp32", True)]
    assert rows[0]["batch_1"] == result.to_dict()["model_only"]["batch_1"]  # torch's row is the model-only run above
    assert rows[1]["batch_1"]["images_per_s"] > 0 and rows[1]["batch_n"]["batch_size"] == result.model_only_n.batch_size
    assert rows[1]["note"].startswith("OpenVINO f32: on the model's check images")
    report = bench.format_report(result)
    assert "model only, torch fp32 " in report and "model only, openvino fp32 " in report


def test_bench_without_openvino_says_how_to_add_it(monkeypatch):
    from engine.bench import backends
    from engine.bench.inputs import random_init_model
    from engine.bench.measure import ModelOnly
    from engine.types import RuntimeOptions

    monkeypatch.setattr(backends, "openvino_installed", lambda: False)
    measured = ModelOnly(batch_size=1, images_per_s=10.0, batch_ms_p50=100.0, iterations=3)
    torch_row = backends.BackendRow("torch", "fp32", "", measured, measured)
    rows = backends.bench_backends(random_init_model(SIZE), RuntimeOptions("cpu", "fp32"), torch_row, calibration=None,
                                   batch_size=1, seconds=0.1, min_iters=1)  # fmt: skip
    assert rows[0] is torch_row and not rows[1].measured
    assert rows[1].describe() == "not measured: OpenVINO is not installed: pip install 'visinspect[export]' adds the openvino row"
