"""The review band (issue 13 item 3): accept / uncertain / reject, stored in the model file, set by calibrate, shown
as REVIEW in predict, the results log and line I/O (code 4), and counted beside accuracy."""
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from engine.data.layouts import load_dataset, split_dataset
from engine.data.preprocess import Preprocess
from engine.data.synthetic import generate_dataset
from engine.errors import ModelFileError
from engine.evaluation.calibrate import CalibrationError, at_threshold, review_band
from engine.inference import Inspector
from engine.jobs.calibrate import CalibrationDone, calibrate_job
from engine.jobs.line import publish_live
from engine.lineio.hub import LineHub, LineVerdict
from engine.lineio.modbus import ErrorCode, Register, render_outputs
from engine.model import build_model
from engine.modelfile import ModelMeta, load_model, read_meta, save_model, update_meta
from engine.results import ResultsLog
from engine.results.filters import ResultFilter
from engine.thresholds import Thresholds
from engine.types import Inspection, RuntimeOptions, Verdict


def _inspection(p: float, thresholds: Thresholds, ood: float | None = None) -> Inspection:
    heat = np.zeros((16, 16), np.float32)
    heat[4:8, 4:8] = 1.0
    return Inspection(p, thresholds, heat, thresholds.regions(heat), ood_score=ood)


def test_the_one_rule_gives_each_verdict_in_its_order():
    t = Thresholds(decision=0.6, accept=0.3, ood_limit=2.0)
    assert [t.verdict(p) for p in (0.0, 0.29, 0.3, 0.59, 0.6, 1.0)] == [
        Verdict.GOOD, Verdict.GOOD, Verdict.REVIEW, Verdict.REVIEW, Verdict.ANOMALY, Verdict.ANOMALY]
    assert t.verdict(0.9, ood_score=2.5) is Verdict.NOT_PRODUCT and t.verdict(0.9, ood_score=2.0) is Verdict.ANOMALY
    assert t.verdict(0.1, ood_score=float("nan")) is Verdict.NOT_PRODUCT  # an unmeasurable frame is not trusted
    no_band = Thresholds(decision=0.6)
    assert no_band.verdict(0.59) is Verdict.GOOD and no_band.verdict(0.1, ood_score=99.0) is Verdict.GOOD  # guard off
    assert t.verdicts([0.1, 0.4, 0.7]).tolist() == [0, 0, 1]  # accuracy stays at the decision threshold


def test_a_review_part_has_no_boxes_and_an_anomaly_keeps_them():
    t = Thresholds(decision=0.6, accept=0.3)
    review, anomaly = _inspection(0.4, t), _inspection(0.8, t)
    assert review.verdict is Verdict.REVIEW and review.boxes == () and review.regions
    assert anomaly.verdict is Verdict.ANOMALY and anomaly.boxes
    assert review.at(Thresholds(decision=0.6)).verdict is Verdict.GOOD  # re-judged without the band


@pytest.mark.parametrize("kwargs, words", [
    (dict(decision=0.5, accept=0.7), "at most the decision threshold"),
    (dict(decision=0.5, accept=-0.1), "accept threshold must be within 0..1"),
    (dict(decision=0.5, ood_limit=0.0), "positive number"),
])
def test_impossible_thresholds_are_refused_in_one_line(kwargs, words):
    with pytest.raises(ValueError, match=words):
        Thresholds(**kwargs)


def test_verdict_parse_takes_the_new_names_and_lists_them_when_wrong():
    assert Verdict.parse("review") is Verdict.REVIEW and Verdict.parse("not product") is Verdict.NOT_PRODUCT
    with pytest.raises(ValueError, match="REVIEW, NOT_PRODUCT"):
        Verdict.parse("maybe")


def _model_file(path: Path, dataset: dict | None = None) -> Path:
    import torch

    torch.manual_seed(0)
    model, _ = build_model(backbone="vgg16_bn", backbone_weights="none")
    meta = ModelMeta(product="widget", backbone="vgg16_bn", backbone_weights={"kind": "none", "detail": "random init"},
                     preprocess=Preprocess(32).to_dict(), dataset=dataset or {})  # fmt: skip
    return save_model(path, model, meta)


def test_the_band_is_stored_in_the_model_file_and_the_inspector_judges_by_it(tmp_path):
    path = _model_file(tmp_path / "m.safetensors")
    assert read_meta(path).accept_threshold is None and Inspector.from_file(path, device="cpu").thresholds.accept is None
    image = np.full((40, 40, 3), 128, np.uint8)
    p = Inspector.from_file(path, device="cpu").inspect([image])[0].p_anomaly
    update_meta(path, threshold=min(1.0, p + 0.01), accept_threshold=max(0.0, p - 0.01))
    inspector = Inspector.from_file(path, device="cpu")
    assert inspector.thresholds.accept == pytest.approx(max(0.0, p - 0.01))
    assert inspector.inspect([image])[0].verdict is Verdict.REVIEW
    assert "review band from p" in read_meta(path).describe()


def test_a_band_above_the_threshold_in_a_file_is_a_damaged_file(tmp_path):
    path = _model_file(tmp_path / "m.safetensors")
    loaded = load_model(path)
    from dataclasses import replace

    bad = replace(loaded.meta, threshold=0.4)
    object.__setattr__(bad, "accept_threshold", 0.6)
    save_model(path, loaded.model, bad)
    with pytest.raises(ModelFileError, match="accept threshold must be at most"):
        read_meta(path)


def test_calibration_counts_the_band_beside_accuracy_and_a_target_sets_its_start():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.05, 0.1, 0.2, 0.55, 0.45, 0.7, 0.8, 0.9])
    accept = review_band(labels, scores, 0.6, "no-miss")  # nothing defective passes unseen
    assert accept is not None and accept < 0.45
    cal = at_threshold(labels, scores, 0.6, accept=accept)
    assert (cal.review_good, cal.review_anomaly, cal.review) == (1, 1, 2)
    assert cal.accuracy == pytest.approx(7 / 8) and cal.fn == 1  # at the decision threshold, as without a band
    assert "2 of 8 need review" in str(cal) and "0 defective passed unseen" in str(cal)
    assert review_band(labels, scores, 0.6, "off") is None
    assert review_band(labels, scores, 0.6, 0.7) is None  # not below the threshold: no band
    with pytest.raises(CalibrationError, match="probability 0..1 or off"):
        review_band(labels, scores, 0.6, 1.5)


def _calibration_data(tmp_path: Path):
    root = generate_dataset(tmp_path / "data", n_train_good=8, n_test_good=6, n_per_defect=4, image_size=64).root
    index = load_dataset(root)
    split = split_dataset(index, seed=3)
    held_out = [str(s.path.relative_to(root)) for s in split.test]
    path = _model_file(tmp_path / "m.safetensors", {**index.summary(), "split_seed": 3, "test_fraction": 0.2, "held_out": held_out})
    return root, path


def test_calibrate_job_stores_a_band_from_a_target_and_keeps_it_ended_at_a_new_threshold(tmp_path):
    root, path = _calibration_data(tmp_path)
    runtime = RuntimeOptions("cpu", "fp32")
    events = list(calibrate_job(path, root, threshold=1.0, review_band=0.0, runtime=runtime, stop=threading.Event()))
    done = [e for e in events if isinstance(e, CalibrationDone)][-1]
    assert done.calibration.accept == 0.0 and done.calibration.review == done.calibration.n  # everything is in the band
    assert read_meta(path).accept_threshold == 0.0
    events = list(calibrate_job(path, root, threshold=0.0, runtime=runtime, stop=threading.Event()))
    assert read_meta(path).accept_threshold is None  # a band that would start above the new threshold is gone


def run_cli(*args):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "engine.cli", *map(str, args)], capture_output=True, text=True, env=env, timeout=600)


def test_cli_calibrate_with_a_review_band_then_predict_says_review(tmp_path):
    root, path = _calibration_data(tmp_path)
    r = run_cli("calibrate", path, root, "--threshold", "1.0", "--review-band", "0", "--device", "cpu", "--precision", "fp32")
    assert r.returncode == 0, r.stderr
    assert "review band       p 0.0000 to 1.0000" in r.stdout and "and review band from 0.0000" in r.stdout
    r = run_cli("predict", path, root / "test" / "good", "--device", "cpu", "--precision", "fp32")
    assert r.returncode == 0, r.stderr
    rows = [line.split(",") for line in r.stdout.strip().splitlines()[1:]]
    assert rows and {row[1] for row in rows} == {"REVIEW"}
    assert f"{len(rows)} REVIEW" in r.stderr
    r = run_cli("predict", path, root / "test" / "good", "--accept", "off", "--device", "cpu", "--precision", "fp32")
    assert r.returncode == 0 and {line.split(",")[1] for line in r.stdout.strip().splitlines()[1:]} == {"GOOD"}
    r = run_cli("predict", path, root / "test" / "good", "--accept", "maybe", "--device", "cpu")
    assert r.returncode != 0 and "--accept must be a probability" in r.stderr and "Traceback" not in r.stderr


def test_a_review_part_is_logged_as_review_and_history_can_filter_it(tmp_path):
    t = Thresholds(decision=0.6, accept=0.3)
    image = np.zeros((16, 16, 3), np.uint8)
    with ResultsLog(tmp_path / "results.db") as log:
        for i, p in enumerate((0.1, 0.4, 0.45, 0.9)):
            log.log_inspection(run_id="r", source="test", item=i, inspection=_inspection(p, t), image=image)
        log.flush()
        review = log.query(ResultFilter(Verdict.REVIEW))
        assert [r.verdict for r in review] == [Verdict.REVIEW, Verdict.REVIEW] and log.count(ResultFilter("review")) == 2
        assert all(r.frame_path for r in review)  # a person will look at it: the frame is kept, as for an anomaly


def test_line_io_reports_review_as_code_4_and_not_product_as_5_on_every_endpoint():
    from engine.inference.live import LiveResult
    from engine.types import Frame

    hub = LineHub(station="s1")
    t = Thresholds(decision=0.6, accept=0.3, ood_limit=1.0)
    frame = Frame(np.zeros((16, 16, 3), np.uint8), 0, 0.0, "test")
    for p, ood, code in ((0.4, 0.5, 4), (0.9, 3.0, 5), (0.1, 0.5, 1), (0.9, 0.5, 2)):
        result = publish_live(hub, LiveResult(frame, _inspection(p, t, ood), 0, 0.0, 1.0, 1))
        assert int(result.verdict) == code
        assert render_outputs(hub.state(), ErrorCode.NONE)[Register.VERDICT] == code  # Modbus register 0
        assert result.as_json_dict()["verdict_code"] == code  # MQTT
    assert LineVerdict(4).name.lower() == "review" and LineVerdict(5).name.lower() == "not_product"
    from engine.lineio.opcua_nodes import state_values

    assert state_values(hub.state())["Verdict"] == 2  # OPC UA mirrors the same code


def test_a_recipe_sets_the_band_for_serve_and_a_band_above_its_threshold_is_refused(tmp_path):
    from engine.errors import RecipeError
    from engine.recipes import Recipe, load_recipe, save_recipe
    from engine.serve import _Serving

    path = _model_file(tmp_path / "m.safetensors")
    save_recipe(Recipe(name="bolt", model=str(path), decision_threshold=0.6, accept_threshold=0.2), tmp_path)
    serving = _Serving(None, None, None, None, RuntimeOptions("cpu", "fp32"), threading.Event())
    inspector = serving.inspector_for(load_recipe("bolt", tmp_path))
    assert (inspector.thresholds.accept, inspector.thresholds.decision) == (0.2, 0.6)
    with pytest.raises(RecipeError, match="accept_threshold 0.7 is above the decision threshold 0.6"):
        serving.inspector_for(Recipe(name="cap", model=str(path), decision_threshold=0.6, accept_threshold=0.7))
    with pytest.raises(RecipeError, match="accept_threshold must be a number within 0..1"):
        Recipe(name="cap", model=str(path), accept_threshold=1.5)
