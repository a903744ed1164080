"""The recent anomaly scores against the threshold, painted directly: a few hundred points cost well under a millisecond.

A pyqtgraph plot re-made its axes and grid on every redraw (about 5 ms of the GUI thread each time, measured),
time the inspecting threads then waited for; this widget caches its frame and draws only the points on top.
The dots are copies of one pre-drawn dot per verdict, stamped in one call: a paint of 300 points took 0.72 ms
with each dot stroked as an antialiased round point, 0.24 ms stamped (measured offscreen).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pyqtgraph.functions as fn
import shiboken6
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

AXIS_RGB = (70, 75, 84)
TEXT_RGB = (150, 156, 166)
LINE_RGB = (120, 128, 140)
LEFT_PX = 34  # room for the 0 / 0.5 / 1 labels
PAD_PX = 9
DOT_PX = 6


class ScoreTimeline(QWidget):
    """p(anomaly) of the last `capacity` parts, newest at the right, coloured by verdict, with the threshold dashed."""

    def __init__(self, capacity: int, *, colours: Mapping[Hashable, tuple[int, int, int]], threshold_rgb,
                 parent: QWidget | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.setObjectName("ScorePlot")
        self.setMinimumHeight(150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip("p(anomaly) of the most recent parts, newest at the right; the dashed line is the threshold")
        self.capacity = capacity
        self.threshold = 0.5
        self._scores: tuple[float, ...] = ()
        self._kinds: tuple[Hashable, ...] = ()
        self._threshold_pen = QPen(QColor(*threshold_rgb), 1.5, Qt.PenStyle.DashLine)
        self._frame: QPixmap | None = None  # axes and labels, made again only on a resize
        self._colours = {kind: QColor(*rgb) for kind, rgb in colours.items()}
        self._dots: _DotSprites | None = None  # one dot per verdict colour, made again when the pixel ratio changes

    def set_scores(self, scores: Sequence[float], verdicts: Sequence[Hashable]) -> None:
        """Show these scores with their verdicts (oldest first; at most capacity are kept) and repaint."""
        if len(scores) != len(verdicts):
            raise ValueError(f"one verdict per score: {len(scores)} scores, {len(verdicts)} verdicts")
        unknown = set(verdicts) - self._colours.keys()
        if unknown:
            raise ValueError(f"no colour for {', '.join(map(str, unknown))}; colours exist for {', '.join(map(str, self._colours))}")
        keep = max(0, len(scores) - self.capacity)
        self._scores = tuple(float(s) for s in list(scores)[keep:])
        self._kinds = tuple(list(verdicts)[keep:])
        self.update()

    def set_threshold(self, value: float) -> None:
        """Move the dashed threshold line."""
        self.threshold = float(value)
        self.update()

    @property
    def scores(self) -> tuple[float, ...]:
        """The scores drawn now, oldest first."""
        return self._scores

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._frame = None
        super().resizeEvent(event)

    def _plot_rect(self) -> QRectF:
        return QRectF(LEFT_PX, PAD_PX, max(1, self.width() - LEFT_PX - PAD_PX), max(1, self.height() - 2 * PAD_PX))

    def _y(self, rect: QRectF, p: float) -> float:
        return rect.bottom() - min(1.0, max(0.0, p)) * rect.height()

    def _make_frame(self) -> QPixmap:
        """The static part: axis lines, 0 / 0.5 / 1 labels and faint gridlines."""
        ratio = self.devicePixelRatioF()
        frame = QPixmap(round(self.width() * ratio), round(self.height() * ratio))
        frame.setDevicePixelRatio(ratio)
        frame.fill(Qt.GlobalColor.transparent)
        rect = self._plot_rect()
        with _painter(frame) as p:
            grid = QColor(*TEXT_RGB)
            grid.setAlpha(40)
            p.setPen(QPen(QColor(*TEXT_RGB)))
            for value, text in ((0.0, "0"), (0.5, "0.5"), (1.0, "1")):
                y = self._y(rect, value)
                p.drawText(QRectF(0, y - 8, LEFT_PX - 6, 16), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)
            p.drawText(QRectF(rect.left() + 4, rect.top(), rect.width() - 8, 16), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                       f"p(anomaly), last {self.capacity} parts")  # fmt: skip
            p.setPen(QPen(grid, 1))
            for value in (0.25, 0.5, 0.75, 1.0):
                y = self._y(rect, value)
                p.drawLine(QPointF(rect.left(), y), QPointF(rect.right(), y))
            p.setPen(QPen(QColor(*AXIS_RGB), 1))
            p.drawLine(rect.bottomLeft(), rect.bottomRight())
            p.drawLine(rect.bottomLeft(), rect.topLeft())
        return frame

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._frame is None:
            self._frame = self._make_frame()
        p = QPainter(self)
        try:
            p.drawPixmap(0, 0, self._frame)
            rect = self._plot_rect()
            p.setPen(self._threshold_pen)
            y = self._y(rect, self.threshold)
            p.drawLine(QPointF(rect.left(), y), QPointF(rect.right(), y))
            n = len(self._scores)
            if not n:
                return
            step = rect.width() / max(1, self.capacity - 1)
            xs = rect.right() - (n - 1 - np.arange(n)) * step  # the newest part at the right edge
            ys = rect.bottom() - np.clip(np.asarray(self._scores), 0.0, 1.0) * rect.height()
            p.setPen(QPen(QColor(*LINE_RGB), 1))
            p.drawPolyline(_polygon(xs, ys))  # thin and dense: antialiasing would cost more than it shows
            ratio = self.devicePixelRatioF()
            if self._dots is None or self._dots.ratio != ratio:
                self._dots = _DotSprites(self._colours, ratio)
            self._dots.draw(p, xs, ys, self._kinds)
        finally:
            p.end()


def _polygon(xs: np.ndarray, ys: np.ndarray) -> QPolygonF:
    """A QPolygonF filled from arrays in one copy (no QPointF per point: a few hundred cost a millisecond of Python)."""
    polygon = fn.create_qpolygonf(len(xs))
    points = fn.ndarray_from_qpolygonf(polygon)
    points[:, 0] = xs
    points[:, 1] = ys
    return polygon


class _DotSprites:
    """Round antialiased dots DOT_PX wide, one per colour side by side in one pixmap, stamped centred on points."""

    def __init__(self, colours: Mapping[Hashable, QColor], ratio: float) -> None:
        self.ratio = ratio
        cell = int(np.ceil((DOT_PX + 2) * ratio))  # device pixels, a pixel's margin for the antialiased edge
        self._cell = cell
        self._column = {kind: k for k, kind in enumerate(colours)}
        self.pixmap = QPixmap(cell * len(colours), cell)
        self.pixmap.fill(Qt.GlobalColor.transparent)
        with _painter(self.pixmap) as p:
            p.setPen(Qt.PenStyle.NoPen)
            for kind, colour in colours.items():
                p.setBrush(colour)
                p.drawEllipse(QPointF((self._column[kind] + 0.5) * cell, cell / 2), DOT_PX * ratio / 2, DOT_PX * ratio / 2)

    def draw(self, painter: QPainter, xs: np.ndarray, ys: np.ndarray, kinds: Sequence[Hashable]) -> None:
        """One dot per point, in its kind's colour, in one call (QPainter.drawPixmapFragments)."""
        fragments = np.empty((len(xs), 10), dtype=np.float64)  # QPainter::PixmapFragment's ten doubles, in order
        fragments[:, 0] = xs  # x, y: the centre of the dot drawn
        fragments[:, 1] = ys
        fragments[:, 2] = [self._column[kind] * self._cell for kind in kinds]  # sourceLeft
        fragments[:, 3:10] = (0.0, self._cell, self._cell, 1 / self.ratio, 1 / self.ratio, 0.0, 1.0)
        first = shiboken6.wrapInstance(fragments.ctypes.data, QPainter.PixmapFragment)
        painter.drawPixmapFragments(first, len(fragments), self.pixmap)


class _painter:
    """QPainter on a pixmap as a context manager (ended even when drawing fails)."""

    def __init__(self, device) -> None:
        self._painter = QPainter(device)

    def __enter__(self) -> QPainter:
        self._painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        return self._painter

    def __exit__(self, *exc) -> None:
        self._painter.end()
