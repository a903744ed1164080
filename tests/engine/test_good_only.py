"""Good-only training: a product with only good images trains, calibrates to a false-reject target and inspects."""
import copy
import csv
import shutil
import threading

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from engine.data.decode import read_image
from engine.data.layouts import load_dataset
from engine.errors import DatasetError, ModelFileError
from engine.evaluation.calibrate import CalibrationError, calibrate
from engine.inference import Inspector
from engine.inference.quantize import QuantizationError
from engine.inference.runtime import choose_runtime
from engine.jobs.calibrate import CalibrationDone, calibrate_job
from engine.jobs.train import ModelSaved, train_job
from engine.model import PaDiM, build_model
from engine.modelfile import ModelMeta, load_model, read_meta, save_model
from engine.training import EpochReport, StepReport, TrainConfig, TrainResult
from engine.training.good_only import ModeChosen, choose_mode
from engine.types import RuntimeOptions, Verdict
from tests.conftest import shared_dataset

FAST_GOOD_ONLY = dict(backbone="vgg16_bn", backbone_weights="none", image_size=64, padim_dims=40, device="cpu")


@pytest.fixture(scope="module")
def good_only_folder(synthetic_dataset, tmp_path_factory):
    """A class-folder product with only good images: the synthetic set's 40 training good images, nothing else."""
    root = tmp_path_factory.mktemp("good_only") / "product"
    shutil.copytree(synthetic_dataset / "train" / "good", root / "good")
    return root


@pytest.fixture(scope="module")
def good_only_model(good_only_folder, tmp_path_factory):
    """Events of `train` on the good-only folder (mode auto) and the model file it saved."""
    out = tmp_path_factory.mktemp("good_only_models") / "product.safetensors"
    index = load_dataset(good_only_folder, min_defective=0)
    events = list(train_job(index, TrainConfig(**FAST_GOOD_ONLY), product="product", out=out, stop=threading.Event()))
    return events, out


def test_auto_mode_trains_good_only_and_reports_progress(good_only_model):
    events, out = good_only_model
    assert isinstance(events[0], ModeChosen) and events[0].mode == "good-only" and "0 defective" in events[0].reason
    assert any(isinstance(e, StepReport) for e in events) and sum(isinstance(e, EpochReport) for e in events) == 1
    result = next(e for e in events if isinstance(e, TrainResult))
    assert result.report.n == 8 and result.report.fp == 0  # the held-out good images pass at the stored threshold
    saved = next(e for e in events if isinstance(e, ModelSaved))
    meta = read_meta(out)
    assert saved.path == str(out) and meta.method == "padim" and meta.training["mode"] == "good-only"
    assert meta.one_class["fitted_on"] == "32 good images"


def test_unseen_good_parts_pass_and_drawn_defects_score_higher(good_only_model, synthetic_dataset):
    inspector = Inspector.from_file(good_only_model[1], device="cpu")
    good = [read_image(p) for p in sorted((synthetic_dataset / "test" / "good").glob("*.png"))]  # never seen by the model
    bad = [read_image(p) for kind in ("spot", "scratch", "crack") for p in sorted((synthetic_dataset / "test" / kind).glob("*.png"))[:6]]
    p_good = [r.p_anomaly for r in inspector.inspect(good)]
    results = inspector.inspect(bad)
    p_bad = [r.p_anomaly for r in results]
    assert np.mean([p < inspector.threshold for p in p_good]) >= 0.9
    assert np.mean(p_bad) > np.mean(p_good)
    assert roc_auc_score([0] * len(p_good) + [1] * len(p_bad), p_good + p_bad) > 0.8
    flagged = [r for r in results if r.verdict is Verdict.ANOMALY]
    assert flagged and all(r.boxes and r.heatmap.shape == (128, 128) for r in flagged)  # the map's hot regions are the boxes


def test_calibrate_to_a_false_reject_target_without_defects(good_only_model, good_only_folder, tmp_path):
    model = tmp_path / "m.safetensors"
    shutil.copy(good_only_model[1], model)
    events = list(calibrate_job(model, good_only_folder, target="max-false-reject:20", stop=threading.Event()))
    done = next(e for e in events if isinstance(e, CalibrationDone))
    assert done.calibration.n_good == 8 and done.calibration.n_anomaly == 0
    assert done.calibration.fp <= 1  # at most 20 % of the 8 held-out good parts
    assert [c.target for c in done.table] == ["max-false-reject:1", "max-false-reject:5"]
    assert read_meta(model).threshold == pytest.approx(done.calibration.threshold)
    with pytest.raises(CalibrationError, match="max-false-reject"):
        list(calibrate_job(model, good_only_folder, target="no-miss", stop=threading.Event()))


def test_good_only_false_reject_threshold_is_the_most_sensitive_within_the_target():
    good = np.linspace(0.01, 0.5, 100)
    one = calibrate([0] * 100, good, "max-false-reject:1")
    assert one.fp == 1 and good[-2] < one.threshold <= good[-1]
    none = calibrate([0] * 100, good, "max-false-reject:0")
    assert none.fp == 0 and none.threshold > good[-1]
    with pytest.raises(CalibrationError, match="defective"):
        calibrate([0] * 100, good, "balanced")
    # once defects exist, the target means what it always did: fewest misses, then fewest rejects
    labels, scores = [0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.8, 0.9]
    assert calibrate(labels, scores, "max-false-reject:1").threshold == pytest.approx(0.8)


def test_predict_cli_on_a_good_only_model(good_only_model, synthetic_dataset, tmp_path):
    from engine.cli import main

    out = tmp_path / "results.csv"
    folder = synthetic_dataset / "test" / "spot"
    assert main(["predict", str(good_only_model[1]), str(folder), "--csv", str(out), "--device", "cpu"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 12 and {r["verdict"] for r in rows} <= {"GOOD", "ANOMALY"}
    assert sum(r["verdict"] == "ANOMALY" for r in rows) >= 9


def test_model_file_round_trips_its_method(good_only_model, tmp_path):
    loaded = load_model(good_only_model[1])
    assert isinstance(loaded.model, PaDiM) and loaded.meta.method == "padim"
    copy = save_model(tmp_path / "copy.safetensors", loaded.model, loaded.meta)
    again = load_model(copy)
    assert again.meta.one_class == loaded.meta.one_class
    assert torch.equal(again.model.gaussian.precision, loaded.model.gaussian.precision)
    cam, _ = build_model(backbone="vgg16_bn", backbone_weights="none")
    meta = ModelMeta(product="p", backbone="vgg16_bn", backbone_weights={"kind": "none"}, preprocess=loaded.meta.preprocess)
    cam_file = save_model(tmp_path / "cam.safetensors", cam, meta)
    assert load_model(cam_file).meta.method == "cam" and not isinstance(load_model(cam_file).model, PaDiM)
    with pytest.raises(ModelFileError, match="method 'patchcore' is not one of cam, padim"):
        ModelMeta.from_json(meta.to_json().replace('"method": "cam"', '"method": "patchcore"'), name="x")


def test_int8_does_not_apply_and_bf16_agrees_with_fp32(good_only_model, synthetic_dataset):
    loaded = load_model(good_only_model[1])
    with pytest.raises(QuantizationError, match="does not apply"):
        choose_runtime(loaded, RuntimeOptions("cpu", "int8"))
    assert choose_runtime(loaded, RuntimeOptions("cpu", "auto")).precision in ("fp32", "bf16")
    images = [read_image(p) for p in sorted((synthetic_dataset / "test" / "crack").glob("*.png"))[:4]]
    images += [read_image(p) for p in sorted((synthetic_dataset / "test" / "good").glob("*.png"))[:4]]
    fp32 = Inspector(loaded, choose_runtime(loaded, RuntimeOptions("cpu", "fp32"))).inspect(images)
    bf16 = Inspector(loaded, choose_runtime(loaded, RuntimeOptions("cpu", "bf16"))).inspect(images)
    assert [r.verdict for r in fp32] == [r.verdict for r in bf16]
    bf16_copy = copy.deepcopy(loaded.model).to(torch.bfloat16)  # what the Inspector runs for bf16 on a CPU
    assert bf16_copy.stem[0].weight.dtype == torch.bfloat16 and bf16_copy.gaussian.precision.dtype == torch.float32
    assert torch.equal(bf16_copy.gaussian.precision, loaded.model.gaussian.precision)  # distances keep fp32 statistics


def test_supervised_stays_the_default_when_defects_exist(synthetic_dataset, good_only_folder):
    with_defects = load_dataset(synthetic_dataset)
    assert choose_mode("auto", with_defects).mode == "supervised"
    assert choose_mode("good-only", with_defects).mode == "good-only"
    with pytest.raises(DatasetError, match="at least 2 defective"):
        choose_mode("supervised", load_dataset(good_only_folder, min_defective=0))
    with pytest.raises(DatasetError, match="at least 2 of each"):
        load_dataset(good_only_folder)  # commands that need defects still say so


def test_good_only_on_real_hazelnuts():
    from engine.training.good_only import train_good_only

    index = load_dataset(shared_dataset("hazelnut_toy"))
    result = next(e for e in train_good_only(index, TrainConfig(**FAST_GOOD_ONLY), product="hazelnut") if isinstance(e, TrainResult))
    assert sum(s.label for s in result.report.scores) == 17  # every defect image is held out, none fitted on
    assert result.report.image_auroc > 0.6


def test_batched_ledoit_wolf_is_sklearns_estimator():
    from sklearn.covariance import ledoit_wolf

    from engine.model.padim import ledoit_wolf_batched

    rng = np.random.default_rng(0)
    samples = rng.standard_normal((3, 12, 20)) * rng.uniform(0.1, 3.0, (1, 1, 20))  # fewer samples than dimensions
    ours = ledoit_wolf_batched(torch.from_numpy(samples)).numpy()
    for position in range(3):
        np.testing.assert_allclose(ours[position], ledoit_wolf(samples[position])[0], rtol=1e-10, atol=1e-12)


def test_train_and_calibrate_commands_on_good_images_only(good_only_folder, tmp_path, capsys):
    from engine.cli import main

    model = tmp_path / "cli.safetensors"
    flags = ["--backbone", "vgg16_bn", "--backbone-weights", "none", "--image-size", "32", "--padim-dims", "16"]
    assert main(["train", str(good_only_folder), "--out", str(model), *flags]) == 0
    said = capsys.readouterr().out
    assert "mode: good-only (the dataset has 0 defective images" in said and f"saved {model}" in said
    assert read_meta(model).training["mode"] == "good-only"
    assert main(["calibrate", str(model), str(good_only_folder), "--target", "max-false-reject:1"]) == 0
    assert "false rejects     0 of 8 good" in capsys.readouterr().out
    assert main(["calibrate", str(model), str(good_only_folder)]) == 2  # no-miss, the default, needs defects
    assert "use max-false-reject:N" in capsys.readouterr().err
    assert main(["train", str(good_only_folder), "--out", str(model), "--mode", "supervised", *flags]) == 2
    assert "at least 2 defective" in capsys.readouterr().err
