"""Image decoding, dataset layouts and the stratified split, on generated and real (../shared) data."""
import math
from collections import Counter

import cv2
import numpy as np
import pytest

from engine.data.decode import read_image
from engine.data.layouts import load_dataset, split_dataset
from engine.errors import DatasetError, ImageReadError
from tests.conftest import shared_dataset


def test_any_image_kind_decodes_to_rgb8(tmp_path):
    grey = np.tile(np.arange(40, dtype=np.uint8), (30, 1))
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    cv2.imwrite(str(tmp_path / "deep.png"), (grey.astype(np.uint16) * 256))
    rgba = np.zeros((30, 40, 4), np.uint8)
    rgba[..., 2] = 200  # red in BGRA
    rgba[..., 3] = 10
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    cv2.imwrite(str(tmp_path / "img.bmp"), cv2.merge([grey, grey, grey]))
    cv2.imwrite(str(tmp_path / "img.tif"), cv2.merge([grey, grey, grey]))
    for name in ("grey.png", "deep.png", "rgba.png", "img.bmp", "img.tif"):
        image = read_image(tmp_path / name)
        assert image.shape == (30, 40, 3) and image.dtype == np.uint8, name
    assert read_image(tmp_path / "deep.png")[0, 39, 0] == 39  # 16-bit scaled, not clipped
    assert tuple(read_image(tmp_path / "rgba.png")[0, 0]) == (200, 0, 0)


def test_unreadable_files_raise_one_clear_error(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    for name, reason in (("empty.jpg", "empty file"), ("text.png", "not a readable image"), ("missing.png", "not found")):
        with pytest.raises(ImageReadError, match=reason) as err:
            read_image(tmp_path / name)
        assert name in str(err.value) and "\n" not in str(err.value)


def test_synthetic_mvtec_layout_loads_and_split_keeps_proportions(synthetic_dataset):
    index = load_dataset(synthetic_dataset)
    assert index.layout == "mvtec"
    assert index.counts() == {"good": 50, "crack": 12, "scratch": 12, "spot": 12}
    assert index.n_masks == 36
    split = split_dataset(index, seed=0)
    assert len(split.test) == math.ceil(0.2 * len(index.samples))
    test_counts = Counter(s.defect_type for s in split.test)
    for kind, n in index.counts().items():
        assert abs(test_counts[kind] - 0.2 * n) <= 1, kind
    assert not {s.path for s in split.train} & {s.path for s in split.test}
    assert split_dataset(index, seed=0) == split  # a fixed seed repeats
    assert split_dataset(index, seed=1).test != split.test


def test_folder_layout_with_masks_beside_images(tmp_path):
    for kind, n in (("ok", 4), ("dent", 3)):
        for i in range(n):
            folder = tmp_path / kind / "Imgs"
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{i}.jpg"), np.full((20, 20, 3), 100, np.uint8))
            cv2.imwrite(str(folder / f"{i}.png"), np.zeros((20, 20), np.uint8))
    with pytest.raises(DatasetError, match="no good-image folder 'good'; folders found: dent, ok"):
        load_dataset(tmp_path)
    index = load_dataset(tmp_path, good_dir="ok")
    assert index.layout == "folders" and index.counts() == {"good": 4, "dent": 3}
    assert all(s.mask_path is not None and s.mask_path.suffix == ".png" for s in index.samples if s.label)


def test_too_few_images_is_a_dataset_error(tmp_path):
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    with pytest.raises(DatasetError, match="at least 2 of each"):
        load_dataset(tmp_path)


@pytest.mark.shared
def test_hazelnut_toy_loads_with_masks():
    index = load_dataset(shared_dataset("hazelnut_toy"))
    assert index.layout == "mvtec"
    assert index.counts() == {"good": 34, "colour": 17}
    assert index.n_masks == 17  # masks share the image stem (07.png), not 07_mask.png
    sample = next(s for s in index.samples if s.label)
    assert read_image(sample.mask_path).shape[:2] == read_image(sample.path).shape[:2]


@pytest.mark.shared
def test_magnetic_tile_loads_as_class_folders():
    index = load_dataset(shared_dataset("magnetic_tile"), good_dir="MT_Free")
    assert index.layout == "folders"
    assert index.counts() == {
        "good": 952, "MT_Blowhole": 115, "MT_Break": 85, "MT_Crack": 57, "MT_Fray": 32, "MT_Uneven": 103,
    }
    assert index.n_masks == 392
    assert all(s.path.suffix == ".jpg" for s in index.samples)  # the .png beside each image is its mask
    split = split_dataset(index, seed=0)
    fray = sum(1 for s in split.test if s.defect_type == "MT_Fray")
    assert fray in (6, 7)
