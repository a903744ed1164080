"""The out-of-distribution guard (issue 13 item 5): a frame far from the training images is NOT_PRODUCT, while the
product's own good and defective parts keep their verdicts; models without statistics keep the old behaviour."""
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from engine.data.decode import read_image
from engine.data.layouts import load_dataset
from engine.data.synthetic import generate_dataset, make_style, make_surface
from engine.evaluation.evaluate import evaluate
from engine.inference import Inspector
from engine.inference.ood import OodError, OodStats, fit_view
from engine.jobs.train import train_job
from engine.modelfile import load_model, read_meta, save_model
from engine.training import TrainConfig
from engine.types import Verdict
from tests.conftest import shared_dataset

FAST_GOOD_ONLY = dict(backbone="vgg16_bn", backbone_weights="none", image_size=64, padim_dims=40, device="cpu", mode="good-only")


def _surfaces(style_seed: int, stream: int, n: int, size: int = 128) -> list[np.ndarray]:
    """n new parts of the synthetic product drawn with style seed style_seed (0 is the test set's own product)."""
    style = make_style(np.random.default_rng([style_seed, 0]), size)
    rng = np.random.default_rng([style_seed, stream])
    return [make_surface(rng, size, style=style) for _ in range(n)]


def _blank_frames() -> list[np.ndarray]:
    """What a station sees with a lens cap on, the lights off, an overexposed camera, a grey tray."""
    return [np.full((128, 128, 3), v, np.uint8) for v in (0, 20, 128, 255)]


@pytest.fixture(scope="module")
def guarded(trained, tmp_path_factory) -> Path:
    """The shared synthetic model saved with the guard's statistics its training measured."""
    result, _ = trained
    assert result.ood is not None
    return save_model(tmp_path_factory.mktemp("guarded") / "synthetic.safetensors", result.model, result.meta,
                      calibration=result.calibration, ood=result.ood)  # fmt: skip


def _verdicts(inspector: Inspector, images) -> list[Verdict]:
    return [i.verdict for i in inspector.inspect(list(images))]


def test_the_product_keeps_its_verdicts_and_another_product_or_a_blank_frame_is_not_product(guarded, model_file, synthetic_dataset):
    meta = read_meta(guarded)
    assert meta.ood_limit == 1.0 and {v["kind"] for v in meta.ood["views"]} == {"pooled-conv5", "input-quartiles"}
    with_guard = Inspector.from_file(guarded, device="cpu", precision="fp32")
    without = Inspector.from_file(model_file, device="cpu", precision="fp32")
    held_out = [read_image(synthetic_dataset / p) for p in meta.dataset["held_out"]]
    fresh_good = _surfaces(0, 99, 12)  # parts of the same product the model never saw
    own = held_out + fresh_good
    guarded_verdicts = _verdicts(with_guard, own)
    assert Verdict.NOT_PRODUCT not in guarded_verdicts  # false NOT_PRODUCT rate on held-out images: 0
    assert guarded_verdicts == _verdicts(without, own)  # GOOD and ANOMALY exactly as without the guard
    others = with_guard.inspect(_surfaces(7, 1, 6) + _blank_frames())
    assert [i.verdict for i in others] == [Verdict.NOT_PRODUCT] * 10
    assert all(i.boxes == () and i.ood_score > 1.0 for i in others)
    assert all(i.ood_score is None for i in without.inspect(_blank_frames()))  # no statistics: no guard
    assert _verdicts(without, _blank_frames()) != [Verdict.NOT_PRODUCT] * 4


def test_a_model_without_statistics_says_once_that_the_guard_is_off(model_file, guarded):
    assert "out-of-distribution guard off" in read_meta(model_file).describe()
    assert "guard off" not in read_meta(guarded).describe()
    assert load_model(model_file).ood is None
    assert Inspector.from_file(model_file, device="cpu", precision="fp32").thresholds.ood_limit is None


def test_evaluate_counts_not_product_beside_accuracy(guarded, tmp_path):
    folder = tmp_path / "other" / "good"
    folder.mkdir(parents=True)
    for i, image in enumerate(_surfaces(7, 2, 5)):
        cv2.imwrite(str(folder / f"{i}.png"), image[:, :, ::-1])
    inspector = Inspector.from_file(guarded, device="cpu", precision="fp32")
    report, _ = evaluate(inspector, load_dataset(tmp_path / "other", min_defective=0).samples)
    assert report.not_product == 5 and report.not_product_rate == 1.0 and report.ood_limit == 1.0
    assert "not product" in report.table() and report.n == 5  # accuracy is still over every image, at the threshold


def test_statistics_that_do_not_fit_their_description_are_a_damaged_file(guarded, tmp_path):
    rng = np.random.default_rng(0)
    view = fit_view(rng.normal(size=(20, 4)), "input-quartiles")
    tensors = OodStats((view,)).tensors()
    with pytest.raises(OodError, match="say 5 dimensions"):
        OodStats.from_file({"views": [{"kind": "input-quartiles", "dims": 5, "limit": 1.0}]}, dict(tensors))
    loaded = load_model(guarded)
    save_model(tmp_path / "cut.safetensors", loaded.model, loaded.meta)  # the description without its tensors
    meta = read_meta(tmp_path / "cut.safetensors")
    assert meta.ood == {} and meta.ood_limit is None  # saved without statistics: the file claims no guard
    with pytest.raises(OodError, match="at least 3"):
        fit_view(rng.normal(size=(2, 4)), "input-quartiles")


def test_the_guard_measured_on_a_frame_costs_no_second_forward_pass(guarded):
    inspector = Inspector.from_file(guarded, device="cpu", precision="fp32")
    calls = []
    original = inspector._features
    inspector._features = lambda x: calls.append(1) or original(x)
    insp = inspector.inspect(_blank_frames())
    assert len(calls) == 1 and all(i.verdict is Verdict.NOT_PRODUCT for i in insp)


def _good_only(root: Path, out: Path, product: str) -> Path:
    index = load_dataset(root, min_defective=0)
    list(train_job(index, TrainConfig(**FAST_GOOD_ONLY), product=product, out=out, stop=threading.Event()))
    return out


def test_a_good_only_model_guards_too(tmp_path):
    root = generate_dataset(tmp_path / "small", n_train_good=16, n_test_good=4, n_per_defect=3, image_size=64, seed=0).root
    path = _good_only(root, tmp_path / "padim.safetensors", "synthetic")
    meta = read_meta(path)
    assert meta.method == "padim" and {v["kind"] for v in meta.ood["views"]} == {"input-quartiles"}
    inspector = Inspector.from_file(path, device="cpu", precision="fp32")
    own = [read_image(root / p) for p in meta.dataset["held_out"]] + _surfaces(0, 98, 8)
    verdicts = _verdicts(inspector, own)
    assert Verdict.NOT_PRODUCT not in verdicts
    plain = load_model(path)
    plain = type(plain)(plain.model, plain.meta, plain.path, plain.sha256, plain.calibration, None)
    from dataclasses import replace

    plain = replace(plain, meta=replace(plain.meta, ood={}, ood_limit=None))
    assert verdicts == _verdicts(Inspector(plain, device="cpu", precision="fp32"), own)
    assert _verdicts(inspector, _surfaces(7, 3, 4) + _blank_frames()) == [Verdict.NOT_PRODUCT] * 8


def test_a_hazelnut_model_shown_magnetic_tiles_says_not_hazelnut(tmp_path):
    hazelnut, tiles = shared_dataset("hazelnut_toy"), shared_dataset("magnetic_tile")
    torch.manual_seed(0)
    path = _good_only(hazelnut, tmp_path / "hazelnut.safetensors", "hazelnut")
    meta = read_meta(path)
    inspector = Inspector.from_file(path, device="cpu", precision="fp32")
    own = [read_image(hazelnut / p) for p in meta.dataset["held_out"]]  # held-out good and defective hazelnuts
    verdicts = _verdicts(inspector, own)
    assert Verdict.NOT_PRODUCT not in verdicts
    tile_files = sorted((tiles / "MT_Free" / "Imgs").glob("*.jpg"))[:10] + sorted((tiles / "MT_Crack" / "Imgs").glob("*.jpg"))[:5]
    assert _verdicts(inspector, [read_image(p) for p in tile_files]) == [Verdict.NOT_PRODUCT] * len(tile_files)
