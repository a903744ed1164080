"""The `visinspect` command line, run as a user runs it: a real subprocess."""
import csv
import io
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import shared_dataset


def run(*args, cwd=None):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )


def test_synth_train_eval_predict_end_to_end(tmp_path):
    data = tmp_path / "data"
    assert run("synth", data, "--image-size", 96, "--per-defect", 8, "--train-good", 24).returncode == 0
    model = tmp_path / "weights" / "demo.safetensors"
    r = run("train", data, "--out", model, "--backbone", "vgg16_bn", "--backbone-weights", "none",
            "--image-size", 64, "--epochs", 2, "--lr", 1e-3, "--json", tmp_path / "train.json")
    assert r.returncode == 0, r.stderr
    assert model.is_file() and "held-out report" in r.stdout and "balanced accuracy" in r.stdout
    assert json.loads((tmp_path / "train.json").read_text())["n"] > 0
    r = run("eval", model, data, "--json", tmp_path / "eval.json")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["tp"] + report["fn"] + report["fp"] + report["tn"] == report["n"] == len(report["scores"])
    r = run("info", model)
    assert r.returncode == 0 and "random init" in r.stdout


def test_predict_reports_corrupt_files_as_error_rows_and_goes_on(model_file, synthetic_dataset, tmp_path):
    folder = tmp_path / "mixed dir ü"
    folder.mkdir()
    for i, src in enumerate(sorted((synthetic_dataset / "test" / "spot").glob("*.png"))[:3]):
        (folder / f"part{i}.png").write_bytes(src.read_bytes())
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (folder / "empty.jpg").write_bytes(b"")
    out = tmp_path / "out.csv"
    r = run("predict", model_file, folder, tmp_path / "missing.png", "--csv", out, "--save-overlays", tmp_path / "ov")
    assert r.returncode == 1, r.stderr  # some inputs failed
    assert "Traceback" not in r.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 6
    errors = {os.path.basename(x["path"]): x["error"] for x in rows if x["verdict"] == "ERROR"}
    assert set(errors) == {"corrupt.png", "empty.jpg", "missing.png"}
    assert all(errors.values())
    ok = [x for x in rows if x["verdict"] in ("GOOD", "ANOMALY")]
    assert len(ok) == 3 and all(0.0 <= float(x["p_anomaly"]) <= 1.0 for x in ok)
    assert len(list((tmp_path / "ov").glob("*.jpg"))) == 3


def test_predict_prints_csv_and_exits_0_when_all_inspected(model_file, synthetic_dataset):
    r = run("predict", model_file, synthetic_dataset / "test" / "good" / "000.png")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 1 and rows[0]["verdict"] in ("GOOD", "ANOMALY")


@pytest.mark.parametrize(
    "args, message",
    [
        (("predict", "{tmp}/nope.safetensors", "x.png"), "model file not found"),
        (("predict",), "required"),
        (("train", "{tmp}", "--out", "{tmp}/m.safetensors", "--frobnicate"), "unrecognized arguments"),
        (("train", "{tmp}/nodata", "--out", "{tmp}/m.safetensors"), "dataset folder not found"),
        (("predict", "{tmp}/fake.safetensors", "x.png"), "not a safetensors model file"),
    ],
)
def test_unrunnable_commands_exit_2_with_one_line(tmp_path, args, message):
    (tmp_path / "fake.safetensors").write_text("junk")
    r = run(*(a.format(tmp=tmp_path) for a in args))
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], r.stderr


@pytest.mark.shared
@pytest.mark.slow
def test_train_eval_predict_on_hazelnut_toy(tmp_path):
    data = shared_dataset("hazelnut_toy")
    model = tmp_path / "hazelnut.safetensors"
    r = run("train", data, "--out", model, "--backbone", "vgg16_bn", "--backbone-weights", "none",
            "--image-size", 64, "--epochs", 3, "--lr", 1e-3)
    assert r.returncode == 0, r.stderr
    assert "split: 40 train / 11 held-out" in r.stdout
    r = run("eval", model, data)
    assert r.returncode == 0 and "the model's 11 held-out images" in r.stdout
    r = run("predict", model, data / "test" / "colour", "--csv", tmp_path / "p.csv")
    assert r.returncode == 0, r.stderr
    assert len(list(csv.DictReader((tmp_path / "p.csv").open()))) == 17
