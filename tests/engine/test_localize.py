"""Heatmap normalisation and defect boxes on crafted heatmaps."""
import numpy as np
import pytest

from engine.inference.localize import heatmap_to_boxes, normalize_heatmap


def test_two_hot_regions_give_two_boxes_in_pixels():
    h = np.zeros((100, 200), np.float32)
    h[10:20, 30:50] = 1.0
    h[60:90, 150:190] = 0.9
    boxes = heatmap_to_boxes(h, threshold=0.8, min_area_fraction=0.0)
    assert [(b.x0, b.y0, b.x1, b.y1) for b in boxes] == [(30, 10, 50, 20), (150, 60, 190, 90)]
    assert boxes[0].score == pytest.approx(1.0) and boxes[1].score == pytest.approx(0.9)


def test_no_hot_region_and_flat_map_give_no_boxes():
    assert heatmap_to_boxes(np.full((50, 50), 0.5, np.float32), threshold=0.8) == ()
    flat = normalize_heatmap(np.full((14, 14), 3.7))
    assert flat.max() == 0.0
    assert heatmap_to_boxes(flat) == ()


def test_region_touching_row_and_column_zero_is_boxed():
    h = np.zeros((64, 64), np.float32)
    h[0:8, 0:5] = 1.0
    (box,) = heatmap_to_boxes(h, min_area_fraction=0.0)
    assert (box.x0, box.y0, box.x1, box.y1) == (0, 0, 5, 8)
    h2 = np.zeros((64, 64), np.float32)
    h2[60:, 58:] = 1.0
    (box2,) = heatmap_to_boxes(h2, min_area_fraction=0.0)
    assert (box2.x1, box2.y1) == (64, 64)


def test_specks_below_minimum_area_are_dropped():
    h = np.zeros((100, 100), np.float32)
    h[5, 5] = 1.0
    h[40:60, 40:60] = 1.0
    boxes = heatmap_to_boxes(h, min_area_fraction=0.01)
    assert len(boxes) == 1 and boxes[0].x0 == 40


def test_normalisation_handles_nan_and_inf():
    cam = np.array([[0.0, np.nan], [np.inf, 2.0]])
    out = normalize_heatmap(cam)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert out.min() == 0.0 and out.max() == 1.0
    assert normalize_heatmap(np.full((3, 3), np.nan)).max() == 0.0


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="within 0..1"):
        heatmap_to_boxes(np.zeros((4, 4)), threshold=2)
    with pytest.raises(ValueError, match="2-D"):
        heatmap_to_boxes(np.zeros((4, 4, 3)))
