"""Property-based tests: normalize_heatmap and heatmap_to_boxes over arbitrary float arrays never crash.

They return finite [0, 1] heatmaps of the input's shape and valid boxes
(0 <= x0 < x1 <= W, 0 <= y0 < y1 <= H, 0 <= score <= 1), or the documented ValueError.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from engine.inference.localize import heatmap_to_boxes, normalize_heatmap, upsample
from engine.types import Box

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Every float there is: NaN, +-inf, subnormals, +-1e308, plus float32 and float16 arrays.
ANY_FLOAT64 = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True)
SHAPES = array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=64)


def _maps(dtype=np.float64, elements=ANY_FLOAT64):
    return arrays(dtype=dtype, shape=SHAPES, elements=elements)


ODD_MAPS = st.one_of(
    _maps(),
    _maps(np.float32, st.floats(width=32, allow_nan=True, allow_infinity=True)),
    _maps(np.float16, st.floats(width=16, allow_nan=True, allow_infinity=True)),
    # mostly one value with a few others, so flat maps, single hot pixels and ties come up often
    arrays(np.float64, SHAPES, elements=st.sampled_from([0.0, 1.0, -1.0, 0.8, np.nan, np.inf, -np.inf, 1e308, -1e308, 5e-324]), fill=st.just(0.0)),
    st.builds(lambda shape, v: np.full(shape, v), st.tuples(st.integers(1, 64), st.integers(1, 64)), ANY_FLOAT64),
)
UNIT_MAPS = _maps(np.float32, st.floats(0.0, 1.0, width=32))


def _check_boxes(boxes, shape):
    h, w = shape
    assert isinstance(boxes, tuple)
    for b in boxes:
        assert isinstance(b, Box)
        assert all(isinstance(v, int) for v in (b.x0, b.y0, b.x1, b.y1)), b
        assert 0 <= b.x0 < b.x1 <= w and 0 <= b.y0 < b.y1 <= h, (b, shape)
        assert np.isfinite(b.score) and 0.0 <= b.score <= 1.0, b
    scores = [b.score for b in boxes]
    assert scores == sorted(scores, reverse=True)


@SETTINGS
@given(cam=ODD_MAPS)
@example(cam=np.array([[-1e308, 1e308]]))  # the span overflows float64
@example(cam=np.array([[5e-324, 0.0]]))  # the smallest span there is
@example(cam=np.full((1, 1), np.nan))
def test_normalize_gives_finite_unit_values_of_the_same_shape(cam):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow / invalid-value RuntimeWarning either
        out = normalize_heatmap(cam)
    assert out.shape == cam.shape and out.dtype == np.float32
    assert np.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0
    finite = cam[np.isfinite(cam)]
    if finite.size and finite.max() > finite.min():
        assert out.max() == 1.0 and out.min() == 0.0  # a map with any spread uses the whole range


@SETTINGS
@given(cam=ODD_MAPS, threshold=st.floats(0.0, 1.0), min_area=st.floats(0.0, 1.0))
def test_boxes_of_any_map_are_valid(cam, threshold, min_area):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        boxes = heatmap_to_boxes(cam, threshold=threshold, min_area_fraction=min_area)
        _check_boxes(boxes, cam.shape)
        normalised = heatmap_to_boxes(normalize_heatmap(cam), threshold=threshold, min_area_fraction=min_area)
    _check_boxes(normalised, cam.shape)


@SETTINGS
@given(heatmap=UNIT_MAPS, threshold=st.floats(0.05, 1.0))
def test_boxes_cover_exactly_the_hot_pixels(heatmap, threshold):
    """Without an area filter, every pixel at or above threshold is inside some box, and each box has one."""
    boxes = heatmap_to_boxes(heatmap, threshold=threshold, min_area_fraction=0.0)
    _check_boxes(boxes, heatmap.shape)
    hot = heatmap >= np.float32(threshold)
    covered = np.zeros_like(hot)
    for b in boxes:
        covered[b.y0 : b.y1, b.x0 : b.x1] = True
        assert hot[b.y0 : b.y1, b.x0 : b.x1].any()
        assert b.score == pytest.approx(float(heatmap[b.y0 : b.y1, b.x0 : b.x1][hot[b.y0 : b.y1, b.x0 : b.x1]].max()))
    assert not (hot & ~covered).any()


@SETTINGS
@given(
    cam=_maps(np.float32, st.floats(-1e6, 1e6, width=32)),
    size=st.tuples(st.integers(1, 300), st.integers(1, 300)),
)
def test_upsampled_normalised_map_gives_boxes_in_image_pixels(cam, size):
    """The Inspector's own chain: upsample a small CAM to any image size, normalise, box."""
    h, w = size
    heatmap = normalize_heatmap(upsample(cam, h, w))
    assert heatmap.shape == (h, w)
    _check_boxes(heatmap_to_boxes(heatmap), (h, w))


@SETTINGS
@given(
    cam=st.one_of(
        arrays(np.float64, array_shapes(min_dims=0, max_dims=1, max_side=8), elements=ANY_FLOAT64),
        arrays(np.float64, array_shapes(min_dims=3, max_dims=4, max_side=4), elements=ANY_FLOAT64),
    )
)
def test_other_dimensions_are_a_value_error(cam):
    with pytest.raises(ValueError, match="2-D"):
        normalize_heatmap(cam)
    with pytest.raises(ValueError, match="2-D"):
        heatmap_to_boxes(cam)


@SETTINGS
@given(
    bad=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).filter(lambda v: not 0.0 <= v <= 1.0),
    ),
    which=st.sampled_from(["threshold", "min_area_fraction"]),
)
def test_out_of_range_options_are_a_value_error(bad, which):
    with pytest.raises(ValueError, match="within 0..1"):
        heatmap_to_boxes(np.ones((4, 4), np.float32), **{which: bad})


def test_empty_maps_give_empty_results():
    assert normalize_heatmap(np.zeros((0, 5))).shape == (0, 5)
    assert heatmap_to_boxes(np.zeros((0, 5), np.float32)) == ()
    assert heatmap_to_boxes(np.zeros((3, 0), np.float32)) == ()


def _boxes_full_frame(heatmap, threshold, min_area_fraction):
    """The plain algorithm: label the whole frame, one box per region at or above min area, biggest peak first."""
    import cv2

    if heatmap.max() <= 0:
        return ()  # an all-zero map has no hot region, even at threshold 0
    hot = (heatmap >= np.float32(threshold)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(hot, connectivity=8)
    min_area = max(1, int(round(min_area_fraction * heatmap.size)))
    boxes = [
        Box(int(x), int(y), int(x + w), int(y + h), float(heatmap[labels == k].max()))
        for k, (x, y, w, h, area) in enumerate(stats)
        if k and area >= min_area
    ]
    return tuple(sorted(boxes, key=lambda b: (-b.score, b.y0, b.x0)))


def _two_equal_peaks() -> np.ndarray:
    """Two one-pixel regions of equal peak whose labels come in another order once the frame is cropped."""
    heatmap = np.zeros((7, 7), np.float32)
    heatmap[5, 2] = heatmap[6, 0] = 1.0
    return heatmap


@SETTINGS
@given(heatmap=UNIT_MAPS, threshold=st.floats(0.0, 1.0), min_area=st.floats(0.0, 0.05))
@example(heatmap=_two_equal_peaks(), threshold=1.0, min_area=0.0)  # found by CI: equal peaks came in label order
def test_labelling_only_around_the_hot_pixels_gives_the_same_boxes_as_the_whole_frame(heatmap, threshold, min_area):
    assert heatmap_to_boxes(heatmap, threshold=threshold, min_area_fraction=min_area) == _boxes_full_frame(heatmap, threshold, min_area)
