"""The int8 CPU path: calibrated on the product's images it gives fp32's verdicts, and auto uses it only where it does."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data.decode import read_image
from engine.inference import Inspector
from engine.inference.quantize import QuantizationError, quantized_engine
from engine.inference.runtime import cpu_has_int8_dot
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
    from dataclasses import replace

    loaded = replace(load_model(model_file), calibration=None)
    with pytest.raises(QuantizationError, match="calibration images"):
        Inspector(loaded, device="cpu", precision="int8")
    with pytest.raises(QuantizationError, match="at least 4"):
        Inspector(loaded, device="cpu", precision="int8", calibration=[np.zeros((64, 64, 3), np.uint8)])


def test_unknown_precision_names_the_allowed_ones(model_file):
    with pytest.raises(ValueError, match="fp32, bf16, fp16, int8"):
        Inspector(load_model(model_file), device="cpu", precision="int4")


def test_model_files_carry_their_calibration_images_and_int8_uses_them(model_file, synthetic_dataset, tmp_path):
    loaded = load_model(model_file)
    cal = loaded.calibration
    size = loaded.meta.input_size
    assert cal is not None and cal.dtype == np.uint8 and cal.shape[1:] == (size, size, 3) and 2 <= len(cal) <= 16
    inspector = Inspector(loaded, device="cpu", precision="int8")  # no images passed: the file's own are used
    parts = [read_image(p) for p in list_images(synthetic_dataset / "test")]
    fp32 = Inspector(loaded, device="cpu", precision="fp32").inspect(parts)
    agree = np.mean([a.verdict == b.verdict for a, b in zip(fp32, inspector.inspect(parts))])
    assert agree >= 0.9, agree

    from engine.modelfile import save_model, update_meta

    update_meta(model_file, product=loaded.meta.product)  # rewriting the metadata keeps the images
    assert np.array_equal(load_model(model_file).calibration, cal)

    old = save_model(tmp_path / "old.safetensors", loaded.model, loaded.meta)  # as models were before
    assert load_model(old).calibration is None
    with pytest.raises(QuantizationError, match="has none"):
        Inspector(load_model(old), device="cpu", precision="int8")


def test_calibration_images_of_the_wrong_shape_are_refused(model_file, tmp_path):
    from engine.errors import ModelFileError
    from engine.modelfile import CALIBRATION_KEY, save_model

    loaded = load_model(model_file)
    with pytest.raises(ValueError, match="calibration images must be uint8"):
        save_model(tmp_path / "x.safetensors", loaded.model, loaded.meta, calibration=np.zeros((2, 7, 7, 3), np.uint8))
    import torch
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in loaded.model.state_dict().items()}
    state[CALIBRATION_KEY] = torch.zeros(2, 3, 3, dtype=torch.float32)
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad), metadata={"visinspect": loaded.meta.to_json()})
    with pytest.raises(ModelFileError, match="calibration images"):
        load_model(bad)


def test_predict_with_int8_from_the_command_line(model_file, synthetic_dataset, tmp_path, capsys):
    from engine import cli

    out = tmp_path / "int8.csv"
    code = cli.main(["predict", str(model_file), str(synthetic_dataset / "test"), "--precision", "int8", "--device", "cpu", "--csv", str(out)])
    assert code == 0, capsys.readouterr().err
    rows = out.read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("path,verdict") and len(rows) == 1 + len(list_images(synthetic_dataset / "test"))


needs_int8_cpu = pytest.mark.skipif(not cpu_has_int8_dot(), reason="auto tries int8 only on CPUs with VNNI or AMX-INT8")


@needs_int8_cpu
def test_auto_runs_int8_when_it_agrees_with_fp32_on_the_models_own_images(model_file, monkeypatch):
    monkeypatch.delenv("VISINSPECT_CPU_INT8", raising=False)
    loaded = load_model(model_file)
    inspector = Inspector(loaded, device="cpu")
    assert inspector.precision_name == "int8"
    assert "held-out images checked at training 100.0% of verdicts agree with fp32" in inspector.precision_note  # the tooltip
    fp32 = Inspector(loaded, device="cpu", precision="fp32")
    images = list(loaded.calibration)
    assert [i.verdict for i in inspector.inspect(images)] == [i.verdict for i in fp32.inspect(images)]


def _at_threshold(loaded, threshold: float):
    from dataclasses import replace

    return replace(loaded, meta=replace(loaded.meta, threshold=float(threshold)))


@needs_int8_cpu
def test_training_stores_the_held_out_int8_check_and_auto_rejects_int8_where_a_held_out_verdict_flips(model_file):
    """Put the threshold between fp32's and int8's score for one held-out image: that verdict would flip on the line."""
    loaded = load_model(model_file)
    record = loaded.meta.training["int8_check"]
    assert record["images"] == len(loaded.meta.dataset["held_out"]) == len(record["p_fp32"]) == len(record["p_int8"])
    p_ref, p_low = np.array(record["p_fp32"]), np.array(record["p_int8"])
    i = int(np.argmax(np.abs(p_ref - p_low)))
    assert abs(p_ref[i] - p_low[i]) > 1e-6, "int8 and fp32 gave identical scores: nothing to split"
    inspector = Inspector(_at_threshold(loaded, (p_ref[i] + p_low[i]) / 2), device="cpu")
    assert inspector.precision_name != "int8"
    assert "int8 rejected, on the held-out images checked at training" in inspector.precision_note


@needs_int8_cpu
def test_auto_rejects_int8_where_a_calibration_verdict_flips_on_this_cpu(model_file):
    """The second check runs at load: int8 scores of the stored calibration images on this CPU."""
    import torch

    from engine.inference.agreement import agreement_from_scores
    from engine.inference.quantize import quantize_features

    loaded = load_model(model_file)
    batch = loaded.meta.preprocessing().batch(list(loaded.calibration))
    quantized = quantize_features(loaded.model, batch)
    with torch.inference_mode():
        p = [torch.softmax(loaded.model.forward_head(f), 1)[:, 1].numpy() for f in (quantized.fp32_features, quantized.features(batch))]
    i = int(np.argmax(np.abs(p[0] - p[1])))
    assert abs(p[0][i] - p[1][i]) > 1e-6, "int8 and fp32 gave identical probabilities: nothing to split"
    threshold = (p[0][i] + p[1][i]) / 2
    inspector = Inspector(_at_threshold(loaded, threshold), device="cpu")
    assert inspector.precision_name != "int8" and "int8 rejected" in inspector.precision_note
    record = loaded.meta.training["int8_check"]
    if agreement_from_scores(record["p_fp32"], record["p_int8"], record["heatmap_correlation"], threshold).agrees:
        assert "calibration images on this CPU" in inspector.precision_note


def test_auto_stays_off_int8_when_told_to_or_without_calibration_images(model_file, monkeypatch):
    from dataclasses import replace

    loaded = load_model(model_file)
    monkeypatch.setenv("VISINSPECT_CPU_INT8", "0")
    assert Inspector(loaded, device="cpu").precision_name != "int8"
    monkeypatch.delenv("VISINSPECT_CPU_INT8")
    without = Inspector(replace(loaded, calibration=None), device="cpu")
    assert without.precision_name != "int8"
    unchecked = {k: v for k, v in loaded.meta.training.items() if k != "int8_check"}  # trained before the check existed
    older = Inspector(replace(loaded, meta=replace(loaded.meta, training=unchecked)), device="cpu")
    assert older.precision_name != "int8"
    damaged = {**loaded.meta.training, "int8_check": {"p_fp32": [0.1, 0.9], "p_int8": [0.1]}}
    foreign = Inspector(replace(loaded, meta=replace(loaded.meta, training=damaged)), device="cpu")
    assert foreign.precision_name != "int8"
    if cpu_has_int8_dot():
        assert "stores no calibration images" in without.precision_note
        assert "not checked on held-out images" in older.precision_note
        assert "int8 check from training is unreadable" in foreign.precision_note



def test_the_int8_stack_runs_as_one_graph_identical_to_the_layer_by_layer_one(model_file, synthetic_dataset, monkeypatch):
    """One graph runs without the GIL between layers; on images it was not checked on, its features are identical."""
    import torch

    from engine.inference import quantize

    loaded = load_model(model_file)
    paths = list_images(synthetic_dataset / "test")
    prep = loaded.meta.preprocessing()
    calibration = prep.batch([read_image(p) for p in paths[:6]])
    graph = quantize.quantize_features(loaded.model, calibration).features
    assert isinstance(graph, torch.jit.ScriptModule)
    monkeypatch.setattr(quantize, "one_graph", lambda features, example: features)
    layer_by_layer = quantize.quantize_features(loaded.model, calibration).features
    assert not isinstance(layer_by_layer, torch.jit.ScriptModule)
    unseen = prep.batch([read_image(p) for p in paths[6:16]])
    with torch.inference_mode():
        for batch in (unseen[:1], unseen, unseen.contiguous(memory_format=torch.channels_last)):
            assert torch.equal(graph(batch), layer_by_layer(batch))
