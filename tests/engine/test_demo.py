"""First-run demo: synthetic parts, a small random-init model saved to the weights folder, a looping line folder."""

from __future__ import annotations

import threading

import pytest

from engine.demo import DEMO_MODEL_NAME, DemoProgress, DemoReady, demo_config, existing_demo, prepare_demo
from engine.errors import Cancelled
from engine.modelfile import read_meta
from engine.training import TrainConfig

# Plumbing only: one epoch at the smallest size. The real recipe's accuracy is covered by the shared fixtures.
QUICK = TrainConfig(backbone="vgg16_bn", backbone_weights="none", image_size=32, epochs=1, lr=1e-3)


def test_prepare_demo_generates_trains_saves_and_lays_out_the_line(tmp_path):
    events = list(prepare_demo(stop=threading.Event(), out_dir=tmp_path / "demo", model_dir=tmp_path / "weights", config=QUICK))
    progress = [e for e in events if isinstance(e, DemoProgress)]
    ready = events[-1]
    assert isinstance(ready, DemoReady) and not ready.reused
    fractions = [p.fraction for p in progress]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and all(0.0 <= f <= 1.0 for f in fractions)
    assert any("epoch" in p.message for p in progress)
    assert ready.model_path == tmp_path / "weights" / DEMO_MODEL_NAME
    meta = read_meta(ready.model_path)
    assert meta.product == "demo-synthetic" and meta.backbone == "vgg16_bn"
    assert meta.backbone_weights["kind"] == "none" and not meta.pretrained  # said plainly in the UI
    parts = sorted(ready.line_folder.glob("*.png"))
    assert len(parts) == 46 and parts[0].name == "part-0001.png"
    assert (ready.dataset / "train" / "good").is_dir()

    # A second launch reuses it without training again.
    again = list(prepare_demo(stop=threading.Event(), out_dir=tmp_path / "demo", model_dir=tmp_path / "weights"))
    assert isinstance(again[-1], DemoReady) and again[-1].reused and again[-1].model_path == ready.model_path
    assert existing_demo(tmp_path / "demo", tmp_path / "weights") is not None


def test_cancelling_the_demo_saves_no_model(tmp_path):
    stop = threading.Event()
    gen = prepare_demo(stop=stop, out_dir=tmp_path / "demo", model_dir=tmp_path / "weights", config=QUICK)
    assert next(gen).fraction == 0.0
    stop.set()
    with pytest.raises(Cancelled):
        list(gen)
    assert not (tmp_path / "weights" / DEMO_MODEL_NAME).exists()
    assert existing_demo(tmp_path / "demo", tmp_path / "weights") is None


def test_the_demo_recipe_is_small_random_init_and_offline():
    config = demo_config()
    assert config.backbone == "vgg16_bn" and config.backbone_weights == "none"
    assert 64 <= config.image_size <= 96
