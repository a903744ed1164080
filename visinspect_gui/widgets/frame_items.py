"""The viewer's two scene items: the picture, and the defect boxes with their labels, each drawn in one paint call.

A live frame is drawn up to 20 times a second on the GUI thread. pyqtgraph's ImageItem and one TextItem per box
did several Python calls per frame and per box; these items keep that to one call each, with no per-box objects.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem

BOX_COLOUR = QColor(255, 64, 64)
BOX_PEN_PX = 2.5
LABEL_PAD_PX = 3.0
LABEL_TEXT = QColor(255, 255, 255)


def _qimage(pixels: np.ndarray) -> tuple[QImage, np.ndarray]:
    """A QImage in the painter's own 32-bit format over these pixels (RGB or grey uint8), and the array it reads.

    Painting an RGB888 image made Qt convert it first, in its own pool threads: 0.5 ms of CPU a draw (0.96 ms
    a Live-tab draw in all); OpenCV's conversion here takes 0.1 ms, and the paint is then a plain scaled copy.
    """
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] != 3):
        raise ValueError(f"a picture must be uint8 grey (H, W) or RGB (H, W, 3), not {pixels.dtype} {pixels.shape}")
    bgra = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGRA if pixels.ndim == 3 else cv2.COLOR_GRAY2BGRA)  # Format_RGB32's bytes
    height, width = bgra.shape[:2]
    return QImage(bgra.data, width, height, bgra.strides[0], QImage.Format.Format_RGB32), bgra


class PictureItem(QGraphicsItem):
    """A picture drawn over a rectangle in frame pixels (the picture may be smaller: it is scaled at paint)."""

    def __init__(self) -> None:
        super().__init__()
        self._image: QImage | None = None
        self._pixels: np.ndarray | None = None  # the buffer the QImage reads
        self._rect = QRectF()

    def set_picture(self, pixels: np.ndarray, rect: QRectF) -> None:
        """Show these pixels (RGB or grey uint8) over rect (converted into a buffer of the item's own)."""
        image, self._pixels = _qimage(pixels)
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = QRectF(rect)
        self._image = image
        self.update()

    def clear(self) -> None:
        """Show nothing."""
        self.prepareGeometryChange()
        self._image = self._pixels = None
        self._rect = QRectF()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        return self._rect

    def paint(self, painter: QPainter, option, widget=None) -> None:
        if self._image is not None:
            painter.drawImage(self._rect, self._image)


class BoxOverlay(QGraphicsItem):
    """Defect boxes in frame pixels, outlined at a fixed screen width, each with its label a fixed screen size.

    A label sits above its box, or just inside it when the box touches the top of the frame; it never passes the
    frame's right edge.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setZValue(10)
        self._rects: list[QRectF] = []
        self._labels: list[str] = []
        self._widths: list[float] = []  # each label's width on screen, padding included (measured once per set)
        self._frame = QRectF()
        self._font = QFont()
        self._font.setPixelSize(12)
        self._metrics = QFontMetricsF(self._font)
        self._pen = QPen(BOX_COLOUR, BOX_PEN_PX)

    @property
    def labels(self) -> list[str]:
        """The labels drawn, in box order."""
        return list(self._labels)

    def set_boxes(self, rects: Sequence[QRectF], labels: Sequence[str], frame: QRectF) -> None:
        """Draw these boxes with these labels over a frame of that rectangle (an empty list removes them)."""
        if len(rects) != len(labels):
            raise ValueError(f"one label per box: {len(rects)} boxes, {len(labels)} labels")
        if not rects and not self._rects:
            return
        self.prepareGeometryChange()
        self._rects, self._labels, self._frame = list(rects), list(labels), QRectF(frame)
        self._widths = [self._metrics.horizontalAdvance(text) + 2 * LABEL_PAD_PX for text in self._labels]
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        if not self._rects:
            return QRectF()
        # Labels and outlines are sized in screen pixels: in frame pixels they are as large as the view is zoomed out.
        margin = (max(self._widths) + self._metrics.height() + BOX_PEN_PX) / self._screen_scale()
        return self._frame.adjusted(-margin, -margin, margin, margin)

    def _screen_scale(self) -> float:
        """Screen pixels per frame pixel in the first view showing this item (1 when none does)."""
        scene = self.scene()
        if scene is None or not scene.views():
            return 1.0
        to_screen = self.deviceTransform(scene.views()[0].viewportTransform())
        return max(abs(to_screen.m11()) + abs(to_screen.m21()), 1e-6)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        if not self._rects:
            return
        to_screen = painter.transform()
        frame = to_screen.mapRect(self._frame)  # normalised: the view may flip y
        screen = [to_screen.mapRect(r) for r in self._rects]
        painter.save()
        painter.resetTransform()
        painter.setPen(self._pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRects(screen)
        painter.setFont(self._font)
        painter.setPen(LABEL_TEXT)
        height = self._metrics.height() + LABEL_PAD_PX
        for box, text, width in zip(screen, self._labels, self._widths):
            y = box.top() - height if box.top() - height >= frame.top() else box.top()
            x = max(frame.left(), min(box.left(), frame.right() - width))  # kept over the frame at its right edge
            label = QRectF(x, y, width, height)
            painter.fillRect(label, BOX_COLOUR)
            painter.drawText(label, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()
