"""Tiled inspection: the grid, stitching, and a tiled good-only model finding a tiny defect on a large image."""
import csv
import io
import json
import threading
from dataclasses import replace

import cv2
import numpy as np
import pytest

from engine.cli import main
from engine.data.decode import read_image, read_mask
from engine.data.images import load_samples
from engine.data.layouts import load_dataset
from engine.data.preprocess import Preprocess
from engine.data.small_defects import generate_small_defects
from engine.errors import DatasetError, ModelFileError
from engine.evaluation.evaluate import evaluate_loaded
from engine.inference import Inspector
from engine.inference.inspector import RecordingInspector
from engine.inference.localize import full_heatmap
from engine.inference.tiles import cut_tiles, stitch
from engine.jobs.train import train_job
from engine.modelfile import load_model, read_meta, save_model
from engine.tiling import tile_grid
from engine.training import TrainConfig
from engine.training.recipe import train

FAST = dict(backbone="vgg16_bn", backbone_weights="none", image_size=32, padim_dims=40, device="cpu", mode="good-only")
SIZE, TILE = 128, 32  # a 4 px defect on a 128 px image: 1 px once resized to the 32 px input, 4 px in a native tile


def test_grid_covers_the_image_with_the_overlap():
    grid = tile_grid(100, 150, 40, 8)
    covered = np.zeros((100, 150), int)
    for t in grid:
        assert t.height == t.width == 40 and 0 <= t.y <= 60 and 0 <= t.x <= 110
        covered[t.y : t.y + t.height, t.x : t.x + t.width] += 1
    assert covered.min() >= 1  # every pixel, the last row and column of tiles flush with the edges
    ys, xs = sorted({t.y for t in grid}), sorted({t.x for t in grid})
    assert ys[-1] == 60 and xs[-1] == 110
    assert all(b - a <= 32 for a, b in zip(ys, ys[1:])) and all(b - a <= 32 for a, b in zip(xs, xs[1:]))  # >= 8 px shared
    assert tile_grid(20, 30, 40, 8) == tile_grid(20, 30, 64, 8)[:1]  # smaller than a tile: one tile, the whole image
    with pytest.raises(ValueError, match="overlap must be within 0..20"):
        tile_grid(100, 100, 40, 21)


@pytest.mark.parametrize("mode", ["max", "mean"])
def test_stitching_puts_a_tiles_hot_spot_at_its_image_coordinates(mode):
    grid = tile_grid(128, 160, 64, 16)
    maps = np.zeros((len(grid), 8, 8), np.float32)  # 8 px per map cell
    hot = next(i for i, t in enumerate(grid) if (t.y, t.x) == (48, 96))
    maps[hot, 2, 5] = 1.0  # image pixel y 48 + 2.5 * 8 = 68, x 96 + 5.5 * 8 = 140
    heat = full_heatmap(stitch(maps, grid, (128, 160), mode=mode), 128, 160)
    y, x = np.unravel_index(np.argmax(heat), heat.shape)
    assert abs(y - 68) <= 4 and abs(x - 140) <= 4


def test_cut_tiles_are_native_pixels_at_the_input_size():
    image = np.random.default_rng(0).integers(0, 255, (64, 96, 3), np.uint8)
    grid = tile_grid(64, 96, 32, 0)
    tiles = cut_tiles(image, grid, Preprocess(32))
    assert tiles.shape == (6, 32, 32, 3) and np.array_equal(tiles[4], image[32:64, 32:64])


@pytest.fixture(scope="module")
def small_defects(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiles") / "small"
    generate_small_defects(root, n_train_good=6, n_test_good=2, n_per_defect=2, image_size=SIZE, defect_width=4)
    return root


@pytest.fixture(scope="module")
def models(small_defects, tmp_path_factory):
    """A good-only model of the small-defect set trained resized and one trained on 32 px tiles, saved."""
    folder = tmp_path_factory.mktemp("tile_models")
    index = load_dataset(small_defects)
    out = {}
    for tile in (0, TILE):
        path = folder / f"tile{tile}.safetensors"
        list(train_job(index, TrainConfig(**FAST, tile=tile, tile_overlap=0), product="p", out=path, stop=threading.Event()))
        out[tile] = path
    return out


def _defect_images(root):
    for kind in ("speck", "nick"):
        for i in range(2):
            yield read_image(root / "test" / kind / f"{i:03d}.png"), read_mask(root / "ground_truth" / kind / f"{i:03d}_mask.png")


def _heat_on_defect(heatmap, mask, slack=4):
    """The hottest heatmap value on the defect or within slack pixels of it (1: the image's own peak)."""
    near = cv2.dilate(mask.astype(np.uint8), np.ones((2 * slack + 1, 2 * slack + 1), np.uint8)) > 0
    return float(heatmap[near].max())


def test_tiled_model_boxes_the_tiny_defects_the_resized_one_misses(models, small_defects):
    tiled, resized = Inspector.from_file(models[TILE], device="cpu"), Inspector.from_file(models[0], device="cpu")
    cases = list(_defect_images(small_defects))
    box = tiled.thresholds.box  # a region is boxed where the heatmap reaches this
    heat_tiled = [_heat_on_defect(i.heatmap, m) for i, (_, m) in zip(tiled.inspect([im for im, _ in cases]), cases)]
    heat_resized = [_heat_on_defect(i.heatmap, m) for i, (_, m) in zip(resized.inspect([im for im, _ in cases]), cases)]
    assert all(h >= box for h in heat_tiled), heat_tiled
    assert sum(h >= box for h in heat_resized) <= 2, heat_resized


def test_tiled_model_file_round_trips_its_tiles(models, tmp_path):
    meta = read_meta(models[TILE])
    assert (meta.tile, meta.tile_overlap) == (TILE, 0) and "tiles of 32 px" in meta.describe()
    assert meta.one_class["fitted_on"].endswith("good tiles")
    assert read_meta(models[0]).tile is None
    loaded = load_model(models[TILE])
    overlapping = save_model(tmp_path / "overlap.safetensors", loaded.model, replace(meta, tile=64, tile_overlap=8))
    assert (read_meta(overlapping).tile, read_meta(overlapping).tile_overlap) == (64, 8)
    broken = save_model(tmp_path / "broken.safetensors", loaded.model, replace(meta, tile=8))
    with pytest.raises(ModelFileError, match="tile side must be at least 32"):
        read_meta(broken)


def test_tiled_inspection_is_one_result_per_image_in_its_pixels(models, small_defects):
    inspector = Inspector.from_file(models[TILE], device="cpu")
    image, mask = next(_defect_images(small_defects))
    wide = np.concatenate([image, image[:, :40]], axis=1)  # 128 x 168: not a multiple of the tile
    [insp] = inspector.inspect([wide])
    assert insp.heatmap.shape == (128, 168)
    [again] = inspector.inspect([image])
    assert again.regions and all(0 <= b.x0 < b.x1 <= 128 and 0 <= b.y0 < b.y1 <= 128 for b in again.regions)
    ys, xs = np.nonzero(mask)
    top = again.regions[0]
    assert top.x0 - 4 <= xs.mean() <= top.x1 + 4 and top.y0 - 4 <= ys.mean() <= top.y1 + 4


def test_predict_on_a_tiled_model_boxes_the_defect_in_the_images_pixels(models, small_defects, capsys):
    path = small_defects / "test" / "speck" / "000.png"
    mask = read_mask(small_defects / "ground_truth" / "speck" / "000_mask.png")
    assert main(["predict", str(models[TILE]), str(path), "--threshold", "0.0"]) == 0
    [row] = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    boxes = json.loads(row["boxes"])
    assert boxes, row
    x0, y0, x1, y1 = boxes[0][:4]
    ys, xs = np.nonzero(mask)
    assert x0 - 4 <= xs.mean() <= x1 + 4 and y0 - 4 <= ys.mean() <= y1 + 4 and x1 <= SIZE and y1 <= SIZE


def test_tiled_evaluation_scores_whole_images(models, small_defects):
    result_meta = read_meta(models[TILE])
    assert result_meta.metrics["n"] == len(result_meta.dataset["held_out"])  # whole images, not tiles
    assert result_meta.metrics["pixel_auroc"] > 0.8


def test_supervised_tiles_need_masks(tmp_path):
    root = tmp_path / "folders"
    for kind, n in (("good", 6), ("scratch", 4)):
        (root / kind).mkdir(parents=True)
        for i in range(n):
            (root / kind / f"{i}.jpg").write_bytes(b"")  # never read: refused before any image is decoded
    index = load_dataset(root)
    with pytest.raises(DatasetError, match="labels each tile by the defect's mask; 4 defective images have none"):
        list(train(index, TrainConfig(**{**FAST, "mode": "supervised"}, tile=TILE), product="p"))


def test_tile_options_are_checked():
    with pytest.raises(ValueError, match="at least 32"):
        TrainConfig(tile=16)
    with pytest.raises(ValueError, match="within 0..32"):
        TrainConfig(tile=64, tile_overlap=40)
    assert TrainConfig().tile == 0


def test_train_refuses_a_bad_tile_in_one_line(small_defects, tmp_path, capsys):
    assert main(["train", str(small_defects), "--out", str(tmp_path / "m.safetensors"), "--tile", "16"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "visinspect: error: tile side must be at least 32 px; got 16" and not (tmp_path / "m.safetensors").exists()


def test_evaluating_a_tiled_model_scores_and_records_one_map_per_image(models, small_defects):
    inspector = RecordingInspector(load_model(models[TILE]), device="cpu")
    samples = [s for s in load_dataset(small_defects).samples if s.defect_type in ("good", "speck")][-4:]
    report = evaluate_loaded(inspector, load_samples(samples, inspector.preprocess, with_masks=True))
    assert report.n == 4 and [s.path for s in report.scores] == [str(s.path) for s in samples]
    assert len(inspector.cams) == 4 and inspector.cams[0].shape == (16, 16)  # 128 px at 8 px a cell: the heat scale's input


def test_supervised_tiled_training_labels_tiles_by_masks_and_reports_whole_images(small_defects):
    full = load_dataset(small_defects)
    index = replace(full, samples=tuple(s for s in full.samples if s.label == 1 or s.path.parent.parent.name == "test"))
    config = TrainConfig(**{**FAST, "mode": "supervised"}, tile=TILE, tile_overlap=0, epochs=1, test_fraction=0.4)
    events = list(train(index, config, product="p"))
    ready, result = events[0], events[-1]
    held = result.meta.dataset["held_out"]
    assert ready.n_test == len(held) == len(set(held)) == result.report.n  # images, each once, not tiles
    assert ready.n_train > 16 * (len(index.samples) - len(held))  # every image's 16 tiles, defect tiles repeated
    assert result.meta.tile == TILE and result.meta.method == "cam"
    assert result.calibration.shape[1:] == (32, 32, 3)  # tiles at the input size, for the int8 check
