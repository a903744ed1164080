"""The live view's picture made beside the model: the style asked for, frame pixels kept, at most one per interval."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from engine.display import DisplayFeed, OverlayStyle, compose
from engine.inference.live import LiveResult, live_inspect
from engine.thresholds import Thresholds
from engine.types import Frame, Inspection


def _inspection(h: int, w: int) -> Inspection:
    heat = np.zeros((h, w), np.float32)
    heat[: h // 2] = 1.0  # the top half is hot
    return Inspection(0.9, Thresholds(0.5), heat, ())


def test_the_heatmap_is_blended_in_the_style_asked_and_off_means_the_plain_frame():
    image = np.full((40, 60, 3), 100, np.uint8)
    hot = compose(image, _inspection(40, 60), OverlayStyle(opacity=0.5, colormap=cv2.COLORMAP_JET))
    assert hot.size == (40, 60) and hot.image.shape == image.shape
    assert not np.array_equal(hot.image[:20], hot.image[20:])  # hot and cold halves differ in colour
    plain = compose(image, _inspection(40, 60), OverlayStyle(heatmap_on=False))
    assert np.array_equal(plain.image, image)


def test_heat_is_coloured_with_the_colour_maps_own_colours_on_its_scale_and_bad_values_stay_in_range():
    from engine.render import colorize

    heat = np.array([[0.0, 0.25, 0.5, 1.0, 1.7, -0.4, np.nan, np.inf]], np.float32)
    levels = np.array([[0, 64, 128, 255, 255, 0, 0, 255]], np.uint8)  # rounded, saturated; NaN as 0
    jet = cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    assert np.array_equal(colorize(heat, cv2.COLORMAP_JET), jet)
    inferno = cv2.cvtColor(cv2.applyColorMap(levels[:, :4], cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
    assert np.array_equal(colorize(heat[:, :4], cv2.COLORMAP_INFERNO), inferno)
    on_scale = colorize(np.array([[0.5, 0.75]], np.float32), cv2.COLORMAP_JET, gain=2.0, offset=-1.0)  # 0.5 -> 0, 0.75 -> 0.5
    assert np.array_equal(on_scale, jet[:, [0, 2]])


def test_a_frame_larger_than_a_screen_is_composed_smaller_but_keeps_its_own_size():
    image = np.zeros((3000, 4000, 3), np.uint8)
    composite = compose(image, _inspection(3000, 4000), OverlayStyle(), max_side=1000)
    assert composite.image.shape == (750, 1000, 3)
    assert composite.size == (3000, 4000)  # boxes stay in frame pixels


def test_the_feed_composes_at_most_one_result_per_interval():
    image = np.zeros((8, 8, 3), np.uint8)
    slow, every = DisplayFeed(interval_s=3600), DisplayFeed(interval_s=0)
    assert slow.offer(image, _inspection(8, 8)) is not None
    assert slow.offer(image, _inspection(8, 8)) is None
    assert all(every.offer(image, _inspection(8, 8)) is not None for _ in range(3))


class _Model:
    thresholds = Thresholds(0.5)

    def inspect(self, images):
        return [_inspection(*im.shape[:2]) for im in images]


class _Frames:
    is_live, description = False, "frames"

    def __init__(self, n: int) -> None:
        self.frames = [Frame(np.zeros((8, 8, 3), np.uint8), i, 0.0, "t") for i in range(n)]

    def open(self):
        self.i = 0

    def read(self):
        self.i += 1
        return self.frames[self.i - 1] if self.i <= len(self.frames) else None

    def close(self):
        pass


def test_the_live_loop_counts_every_frame_and_composes_only_those_the_window_will_draw():
    feed = DisplayFeed(OverlayStyle(opacity=0.3), interval_s=3600)
    results = [o for o in live_inspect(_Frames(6), _Model(), stop=threading.Event(), display=feed) if isinstance(o, LiveResult)]
    assert [r.inspected_total for r in results] == [1, 2, 3, 4, 5, 6]
    drawn = [r for r in results if r.display is not None]
    assert len(drawn) == 1 and drawn[0].display.style == OverlayStyle(opacity=0.3)
