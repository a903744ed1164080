"""Tests for the synthetic MVTec-layout dataset generator used by tests and the first-run demo."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.data.synthetic import (
    DEFECT_TYPES,
    MARKER_NAME,
    DefectSample,
    draw_defect,
    generate_dataset,
    make_surface,
)

SMALL = {"n_train_good": 4, "n_test_good": 3, "n_per_defect": 3, "image_size": 64}


def _read(path: Path) -> np.ndarray:
    """Read a PNG exactly as stored (channel count preserved)."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, f"unreadable PNG: {path}"
    return image


def _pngs(folder: Path) -> list[str]:
    """Sorted PNG file names in a folder."""
    return sorted(p.name for p in folder.glob("*.png"))


def test_layout_and_counts_match_summary(tmp_path: Path) -> None:
    """The folders a user opens hold exactly the images the summary reports, in MVTec naming."""
    out = tmp_path / "new" / "dataset"  # parents created as needed
    summary = generate_dataset(out, **SMALL)

    assert summary.root == out
    assert summary.image_size == 64
    assert summary.n_good == 7
    assert summary.defect_counts == {kind: 3 for kind in DEFECT_TYPES}
    assert _pngs(out / "train" / "good") == ["000.png", "001.png", "002.png", "003.png"]
    assert _pngs(out / "test" / "good") == ["000.png", "001.png", "002.png"]
    assert sorted(p.name for p in (out / "test").iterdir()) == sorted(["good", *DEFECT_TYPES])
    for kind in DEFECT_TYPES:
        assert _pngs(out / "test" / kind) == ["000.png", "001.png", "002.png"]
        assert _pngs(out / "ground_truth" / kind) == ["000_mask.png", "001_mask.png", "002_mask.png"]
    assert (out / MARKER_NAME).is_file()


def test_subset_of_defect_types_writes_only_those(tmp_path: Path) -> None:
    """Asking for one defect type produces only that folder and count."""
    summary = generate_dataset(tmp_path / "ds", defect_types=["spot"], **SMALL)
    assert summary.defect_counts == {"spot": 3}
    assert sorted(p.name for p in (tmp_path / "ds" / "test").iterdir()) == ["good", "spot"]
    assert sorted(p.name for p in (tmp_path / "ds" / "ground_truth").iterdir()) == ["spot"]


def test_masks_fit_images_and_mark_a_real_defect(tmp_path: Path) -> None:
    """Each defect image has a same-size 0/255 mask over a small, non-empty area; good images have none."""
    out = tmp_path / "ds"
    generate_dataset(out, **SMALL)
    for kind in DEFECT_TYPES:
        for image_path in sorted((out / "test" / kind).glob("*.png")):
            mask = _read(out / "ground_truth" / kind / f"{image_path.stem}_mask.png")
            image = _read(image_path)
            assert image.shape == (64, 64, 3)
            assert mask.shape == (64, 64) and mask.dtype == np.uint8
            assert set(np.unique(mask).tolist()) == {0, 255}
            pixels = int((mask > 0).sum())
            assert 6 <= pixels < 0.25 * mask.size, f"{kind}/{image_path.name}: defect covers {pixels} px"
    assert not (out / "ground_truth" / "good").exists()


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    """A seed reproduces the dataset byte for byte; a different seed gives a different one."""
    generate_dataset(tmp_path / "a", seed=7, **SMALL)
    generate_dataset(tmp_path / "b", seed=7, **SMALL)
    generate_dataset(tmp_path / "c", seed=8, **SMALL)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.png"))
    assert len(files) == 4 + 3 + 2 * 3 * len(DEFECT_TYPES)
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    differing = [
        rel for rel in files if (tmp_path / "a" / rel).read_bytes() != (tmp_path / "c" / rel).read_bytes()
    ]
    assert len(differing) == len(files)


def test_good_images_vary_but_look_like_one_product(tmp_path: Path) -> None:
    """Good images are not copies of each other, yet their mean colour stays within a few percent."""
    out = tmp_path / "ds"
    generate_dataset(out, n_train_good=8, n_test_good=0, n_per_defect=0, image_size=64)
    images = [_read(p).astype(np.float32) for p in sorted((out / "train" / "good").glob("*.png"))]
    means = np.array([im.reshape(-1, 3).mean(axis=0) for im in images])
    assert np.all(np.abs(means - means.mean(axis=0)) < 0.08 * means.mean(axis=0))
    assert all(np.abs(images[0] - other).mean() > 1.0 for other in images[1:])
    # A real surface has texture and grain, not a flat fill.
    assert all(3.0 < im.std() < 30.0 for im in images)


def test_defects_stand_out_from_the_texture(tmp_path: Path) -> None:
    """Inside the mask the pixels differ strongly from the product's normal look; outside they do not."""
    out = tmp_path / "ds"
    generate_dataset(out, n_train_good=3, n_test_good=0, n_per_defect=6, image_size=96, seed=3)
    good_grey = [
        cv2.cvtColor(_read(p), cv2.COLOR_BGR2GRAY).astype(np.float32)
        for p in sorted((out / "train" / "good").glob("*.png"))
    ]
    typical = float(np.median(np.stack(good_grey)))
    good_spread = float(np.mean([np.abs(g - typical).mean() for g in good_grey]))
    assert good_spread < 12.0
    for kind in DEFECT_TYPES:
        for image_path in sorted((out / "test" / kind).glob("*.png")):
            grey = cv2.cvtColor(_read(image_path), cv2.COLOR_BGR2GRAY).astype(np.float32)
            mask = _read(out / "ground_truth" / kind / f"{image_path.stem}_mask.png") > 0
            inside = float(np.abs(grey[mask] - typical).mean())
            halo = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
            outside = float(np.abs(grey[~halo] - typical).mean())
            assert inside > 40.0, f"{kind}/{image_path.name}: defect only {inside:.0f} grey levels off"
            assert inside > 3.0 * outside


def test_grey_writes_single_channel_images(tmp_path: Path) -> None:
    """grey=True stores one-channel PNGs for good and defect images alike."""
    out = tmp_path / "ds"
    generate_dataset(out, grey=True, **SMALL)
    for path in [*(out / "train" / "good").glob("*.png"), *(out / "test").rglob("*.png")]:
        assert _read(path).shape == (64, 64), path


def test_refuses_a_foreign_non_empty_folder(tmp_path: Path) -> None:
    """A folder holding the user's own files is never written into or deleted from."""
    precious = tmp_path / "photos" / "holiday.jpg"
    precious.parent.mkdir()
    precious.write_bytes(b"not ours")
    with pytest.raises(ValueError, match="not a VisInspect synthetic dataset"):
        generate_dataset(precious.parent, **SMALL)
    assert [p.name for p in precious.parent.iterdir()] == ["holiday.jpg"]
    assert precious.read_bytes() == b"not ours"
    with pytest.raises(ValueError, match="not a folder"):
        generate_dataset(precious, **SMALL)


def test_regenerating_replaces_a_previous_set_without_leftovers(tmp_path: Path) -> None:
    """Re-running into a generated folder overwrites it, and smaller counts leave no stale images."""
    out = tmp_path / "ds"
    generate_dataset(out, **SMALL)
    summary = generate_dataset(out, n_train_good=2, n_test_good=1, n_per_defect=1, image_size=64)
    assert summary.n_good == 3
    assert _pngs(out / "train" / "good") == ["000.png", "001.png"]
    for kind in DEFECT_TYPES:
        assert _pngs(out / "test" / kind) == ["000.png"]
        assert _pngs(out / "ground_truth" / kind) == ["000_mask.png"]


def test_empty_existing_folder_is_accepted(tmp_path: Path) -> None:
    """An empty folder the user created for the demo is a fine target."""
    out = tmp_path / "empty"
    out.mkdir()
    assert generate_dataset(out, **SMALL).n_good == 7


@pytest.mark.parametrize(
    "bad",
    [{"n_train_good": -1}, {"image_size": 8}, {"defect_types": ["dent"]}, {"defect_types": ["spot", "spot"]}],
)
def test_bad_options_are_refused_before_writing(tmp_path: Path, bad: dict) -> None:
    """Nonsense options fail with a ValueError and leave no half-written folder behind."""
    with pytest.raises(ValueError):
        generate_dataset(tmp_path / "ds", **{**SMALL, **bad})
    assert not (tmp_path / "ds").exists()


def test_unknown_defect_kind_names_the_allowed_ones() -> None:
    """A typo in the defect kind tells the user which kinds exist."""
    surface = make_surface(np.random.default_rng(0), 64)
    with pytest.raises(ValueError, match="scratch, spot, crack"):
        draw_defect(surface, "dent", np.random.default_rng(0))


@pytest.mark.parametrize("kind", DEFECT_TYPES)
def test_draw_defect_leaves_input_alone_and_changes_only_near_the_mask(kind: str) -> None:
    """draw_defect returns a new image whose changes sit on the mask, for RGB and grey input."""
    rng = np.random.default_rng(11)
    surface = make_surface(rng, 80)
    before = surface.copy()
    sample = draw_defect(surface, kind, rng)
    assert isinstance(sample, DefectSample)
    assert np.array_equal(surface, before)
    assert sample.image.shape == surface.shape and sample.image.dtype == np.uint8
    assert sample.mask.shape == (80, 80) and sample.mask.dtype == bool and sample.mask.any()
    changed = np.abs(sample.image.astype(int) - surface.astype(int)).max(axis=2) > 20
    near_mask = cv2.dilate(sample.mask.astype(np.uint8), np.ones((5, 5))) > 0
    assert not np.any(changed & ~near_mask)

    grey = cv2.cvtColor(surface, cv2.COLOR_RGB2GRAY)
    grey_sample = draw_defect(grey, kind, np.random.default_rng(11))
    assert grey_sample.image.shape == (80, 80) and grey_sample.mask.any()
