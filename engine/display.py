"""The live view's picture, made beside the model: heatmap coloured and blended once per frame shown, not per frame inspected.

The window shows at most one frame every `interval_s`; `DisplayFeed.offer` (called on the live loop's
inspecting threads) composes exactly those frames, in the style the window asks for, scaled down when
the frame is far larger than a screen. Boxes stay vector outlines drawn by the window, in frame pixels.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from engine.render import blend_heatmap
from engine.types import HeatScale, Inspection

DRAW_INTERVAL_S = 0.05  # at most 20 frames shown a second: every result is counted and logged, only these are drawn
MAX_SIDE = 2048  # a composite's longest side; a bigger frame is scaled down (a screen shows no more)


@dataclass(frozen=True)
class OverlayStyle:
    """How the heatmap is drawn over a frame: on or off, opacity, OpenCV colour map and heat scale."""

    heatmap_on: bool = True
    opacity: float = 0.45
    colormap: int = cv2.COLORMAP_JET
    heat_scale: HeatScale = HeatScale.ABSOLUTE


@dataclass(frozen=True, eq=False)
class Composite:
    """A frame with its heatmap blended in, as the window shows it; size is the frame's own (height, width)."""

    image: np.ndarray  # RGB uint8, possibly smaller than the frame
    style: OverlayStyle
    size: tuple[int, int]


def compose(image: np.ndarray, inspection: Inspection | None, style: OverlayStyle, *, max_side: int | None = None) -> Composite:
    """The frame as the window shows it in style: scaled so its longest side is at most max_side, heatmap blended in."""
    size = image.shape[:2]
    heatmap = inspection.heatmap if inspection is not None else None
    if max_side is not None and max(size) > max_side:
        k = max_side / max(size)
        dsize = (max(1, round(size[1] * k)), max(1, round(size[0] * k)))
        image = cv2.resize(image, dsize, interpolation=cv2.INTER_AREA)
        if heatmap is not None and heatmap.shape == size:
            heatmap = cv2.resize(heatmap, dsize, interpolation=cv2.INTER_LINEAR)
    view = inspection.heat_view(style.heat_scale) if inspection is not None else None
    if view is not None and style.heatmap_on:
        image = blend_heatmap(image, heatmap, opacity=style.opacity, colormap=style.colormap, gain=view.gain, offset=view.offset)
    return Composite(image, style, (int(size[0]), int(size[1])))


class DisplayFeed:
    """Which live results get a composite for the window, and in which style: at most one every interval_s.

    The window sets `style` (any thread; read once per frame offered); the live loop's threads call offer().
    """

    def __init__(self, style: OverlayStyle = OverlayStyle(), *, interval_s: float = DRAW_INTERVAL_S, max_side: int = MAX_SIDE) -> None:
        if not interval_s >= 0:
            raise ValueError(f"display interval must be 0 or more seconds, not {interval_s!r}")
        self.style = style
        self.interval_s = interval_s
        self.max_side = max_side
        self._lock = threading.Lock()
        self._next_due = 0.0

    def offer(self, image: np.ndarray, inspection: Inspection) -> Composite | None:
        """The composite to show for this result when one is due now, else None (the result is only counted)."""
        now = time.monotonic()
        with self._lock:
            if now < self._next_due:
                return None
            on_schedule = now - self._next_due < self.interval_s  # a pick a little late keeps the schedule: the pace holds
            self._next_due = (self._next_due if on_schedule else now) + self.interval_s
        return compose(image, inspection, self.style, max_side=self.max_side)
