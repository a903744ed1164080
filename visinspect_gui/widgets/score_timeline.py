"""The recent anomaly scores against the threshold, painted directly: a few hundred points cost well under a millisecond.

A pyqtgraph plot re-made its axes and grid on every redraw (about 5 ms of the GUI thread each time, measured),
time the inspecting threads then waited for; this widget caches its frame and draws only the points on top.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pyqtgraph.functions as fn
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
        self._dot_pens = {kind: _dot_pen(QColor(*rgb)) for kind, rgb in colours.items()}

    def set_scores(self, scores: Sequence[float], verdicts: Sequence[Hashable]) -> None:
        """Show these scores with their verdicts (oldest first; at most capacity are kept) and repaint."""
        if len(scores) != len(verdicts):
            raise ValueError(f"one verdict per score: {len(scores)} scores, {len(verdicts)} verdicts")
        unknown = set(verdicts) - self._dot_pens.keys()
        if unknown:
            raise ValueError(f"no colour for {', '.join(map(str, unknown))}; colours exist for {', '.join(map(str, self._dot_pens))}")
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
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            kinds = np.asarray(self._kinds, dtype=object)
            for kind, pen in self._dot_pens.items():  # one call per verdict, not one per point
                mine = kinds == kind
                if mine.any():
                    p.setPen(pen)
                    p.drawPoints(_polygon(xs[mine], ys[mine]))
        finally:
            p.end()


def _polygon(xs: np.ndarray, ys: np.ndarray) -> QPolygonF:
    """A QPolygonF filled from arrays in one copy (no QPointF per point: a few hundred cost a millisecond of Python)."""
    polygon = fn.create_qpolygonf(len(xs))
    points = fn.ndarray_from_qpolygonf(polygon)
    points[:, 0] = xs
    points[:, 1] = ys
    return polygon


def _dot_pen(colour: QColor) -> QPen:
    """A pen that draws each point as a round dot DOT_PX wide."""
    pen = QPen(colour, DOT_PX)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    return pen


class _painter:
    """QPainter on a pixmap as a context manager (ended even when drawing fails)."""

    def __init__(self, device) -> None:
        self._painter = QPainter(device)

    def __enter__(self) -> QPainter:
        self._painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        return self._painter

    def __exit__(self, *exc) -> None:
        self._painter.end()
