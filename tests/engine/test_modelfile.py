"""The model file: safetensors + JSON metadata, round trip and clear errors for anything else."""
import json
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from engine.errors import ModelFileError
from engine.inference import Inspector
from engine.modelfile import load_model, read_meta, save_model, update_meta


def test_round_trip_gives_identical_outputs(trained, tmp_path):
    result, path = trained
    image = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    a = Inspector(load_model(path), device="cpu", precision="fp32").inspect([image])[0]
    copy = save_model(tmp_path / "copy.safetensors", load_model(path).model, read_meta(path))
    b = Inspector.from_file(copy, device="cpu", precision="fp32").inspect([image])[0]
    assert a.p_anomaly == b.p_anomaly
    assert np.array_equal(a.heatmap, b.heatmap)
    meta = read_meta(path)
    assert meta.backbone == "vgg16_bn" and meta.backbone_weights["kind"] == "none"
    assert meta.preprocess["size"] == 64 and meta.class_names == ("Good", "Anomaly")
    assert meta.metrics["n"] == result.report.n and meta.dataset["held_out"]


def test_updated_threshold_is_used_by_inspector(trained, tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(trained[1].read_bytes())
    update_meta(path, threshold=0.9)
    assert Inspector.from_file(path, device="cpu").threshold == 0.9


def _expect(path, fragment):
    with pytest.raises(ModelFileError, match=fragment) as err:
        load_model(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_corrupt_and_foreign_files_get_clear_errors(trained, tmp_path):
    good = trained[1].read_bytes()
    (tmp_path / "truncated.safetensors").write_bytes(good[: len(good) // 2])
    _expect(tmp_path / "truncated.safetensors", "corrupt|not a safetensors")
    (tmp_path / "text.safetensors").write_text("hello")
    _expect(tmp_path / "text.safetensors", "not a safetensors model file")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    _expect(tmp_path / "plain.safetensors", "not a VisInspect model")
    _expect(tmp_path / "missing.safetensors", "not found")


def test_pickle_payload_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "evil.safetensors").write_bytes(pickle.dumps(Evil()))
    _expect(tmp_path / "evil.safetensors", "not a safetensors model file")
    assert not marker.exists()


def _with_meta(tmp_path, trained, name, **changes):
    loaded = load_model(trained[1])
    meta = json.loads(loaded.meta.to_json())
    meta.update(changes)
    state = {k: v.contiguous() for k, v in loaded.model.state_dict().items()}
    path = tmp_path / name
    save_file(state, str(path), metadata={"visinspect": json.dumps(meta)})
    return path


def test_newer_format_and_other_architecture_are_refused(trained, tmp_path):
    _expect(_with_meta(tmp_path, trained, "new.safetensors", format_version=99), "newer VisInspect")
    _expect(_with_meta(tmp_path, trained, "arch.safetensors", architecture="resnet-cam"), "architecture")
    _expect(_with_meta(tmp_path, trained, "bb.safetensors", backbone="vgg16"), "do not match")


def test_header_that_lies_about_shapes_is_refused(trained, tmp_path):
    data = bytearray(trained[1].read_bytes())
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    key = next(k for k in header if k.endswith("fc.weight"))
    header[key]["shape"] = [4, 512]  # claims twice the bytes it has
    raw = json.dumps(header).encode()
    raw += b" " * (n - len(raw)) if len(raw) <= n else b""
    path = tmp_path / "lying.safetensors"
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(data[8 + n :]))
    _expect(path, "corrupt|not a safetensors|do not match")
