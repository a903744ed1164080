"""`visinspect serve`: headless live job that logs every result with its recipe, stops cleanly on SIGTERM,
and switches recipe when the PLC asks (a recipe that fails keeps the old one and says why)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.data.preprocess import Preprocess
from engine.inference import Inspector
from engine.jobs.live import InspectorSlot
from engine.lineio.hub import LineHub
from engine.model import build_model
from engine.modelfile import ModelMeta, save_model
from engine.recipes import Recipe, save_recipe
from engine.results import ResultsLog
from engine.serve import _Serving, _Setup, add_serve_arguments
from engine.types import RuntimeOptions
from tests.conftest import committed_rows


@pytest.fixture(scope="module")
def line(tmp_path_factory) -> Path:
    """A folder with a tiny random-init model, a folder of three parts and a recipe using both (model path relative)."""
    import torch

    root = tmp_path_factory.mktemp("line")
    torch.manual_seed(1)
    model, _ = build_model(backbone="vgg16_bn", backbone_weights="none")
    meta = ModelMeta(product="serve", backbone="vgg16_bn", backbone_weights={"kind": "none", "detail": "random init"},
                     preprocess=Preprocess(32).to_dict())  # fmt: skip
    save_model(root / "tiny.safetensors", model, meta)
    (root / "parts").mkdir()
    for i in range(3):
        cv2.imwrite(str(root / "parts" / f"p{i}.png"), np.full((40, 48, 3), 60 * i + 20, np.uint8))
    (root / "recipes").mkdir()
    recipe = {"name": "bolt-a", "model": "../tiny.safetensors", "source": str(root / "parts"), "roi": [4, 4, 32, 24],
              "decision_threshold": 0.3}  # fmt: skip
    (root / "recipes" / "bolt-a.json").write_text(json.dumps(recipe))
    return root


def test_serve_logs_results_with_its_recipe_and_stops_cleanly_on_sigterm(line, tmp_path):
    db = tmp_path / "results.sqlite3"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "engine.cli", "serve", "--recipe", "bolt-a", "--recipes-dir", str(line / "recipes"),
               "--loop", "--log", str(db), "--station", "st-7"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 240
        while len(committed_rows(db)) < 4:
            assert proc.poll() is None, f"serve ended early: {proc.stderr.read()}"
            assert time.monotonic() < deadline, "serve wrote no results"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    lines = err.strip().splitlines()
    assert lines[0].startswith("visinspect serve: started: station st-7, model tiny.safetensors") and "free run" in lines[0]
    assert lines[-2:] == ["visinspect serve: stopping (SIGTERM)", lines[-1]] and lines[-1].startswith("visinspect serve: stopped after")
    with ResultsLog(db) as log:
        rows = log.query(limit=None)
    assert len(rows) >= 4 and {r.recipe for r in rows} == {"bolt-a"} and {r.threshold for r in rows} == {0.3}


def test_a_plc_recipe_write_switches_model_thresholds_and_roi_and_a_bad_one_keeps_the_old(line, tmp_path, capsys):
    folder = tmp_path / "recipes"
    save_recipe(Recipe(name="cap", model=str(line / "tiny.safetensors"), decision_threshold=0.7, roi=(0, 0, 20, 20)), folder)
    save_recipe(Recipe(name="gone", model=str(tmp_path / "missing.safetensors")), folder)
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    args = parser.parse_args(["--model", "m", "--source", str(line / "parts"), "--recipes-dir", str(folder)])
    hub = LineHub(station="s")
    with ResultsLog(tmp_path / "r.sqlite3") as log:
        serving = _Serving(args, None, hub, log, RuntimeOptions("cpu"), threading.Event())
        first = Inspector.open(line / "tiny.safetensors", RuntimeOptions("cpu"))
        serving.slot = InspectorSlot(first, "run-1")
        serving.setup = _Setup(None, str(line / "parts"), None, False)
        hub.set_recipe_handler(serving.switch_recipe)
        hub.request_recipe("cap")
        assert serving.slot.current is not first and serving.slot.current.thresholds.decision == 0.7
        assert (serving.roi(), serving.recipe(), hub.state().recipe) == ((0, 0, 20, 20), "cap", "cap")
        assert not serving.job_stop.is_set()  # same source: no restart
        in_use = serving.slot.current
        hub.request_recipe("gone")
        assert serving.slot.current is in_use and hub.state().recipe == "cap" and serving.roi() == (0, 0, 20, 20)
        assert "recipe 'gone'" in hub.state().last_error and "missing.safetensors" in hub.state().last_error
        hub.request_recipe("nope")
        assert "'nope' not found" in hub.state().last_error
        assert [(c.old, c.new) for c in log.changes()] == [("", "cap")]
    said = capsys.readouterr().err.splitlines()
    assert said[0].startswith("visinspect serve: recipe cap: model tiny.safetensors") and "ROI [0, 0, 20, 20]" in said[0]
    assert said[1].startswith("visinspect serve: recipe 'gone' refused, still on cap: ") and len(said) == 3
