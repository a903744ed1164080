"""The region of interest on the live viewer: drawn by dragging (engineer mode), shown dashed, kept in the station settings."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QHBoxLayout, QToolButton, QWidget

ROI_COLOUR = QColor(255, 214, 10)
Roi = tuple[int, int, int, int]  # x, y, width, height in frame pixels
MIN_SIZE = 2  # a click without a drag draws nothing
_HANDLED = (QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress, QEvent.Type.MouseMove, QEvent.Type.MouseButtonRelease)


def clip_roi(a: QPointF, b: QPointF, width: int, height: int) -> Roi | None:
    """The whole-pixel rectangle spanned by two image points, inside a width x height frame; None when too small."""
    x0, x1 = sorted((a.x(), b.x()))
    y0, y1 = sorted((a.y(), b.y()))
    x0, y0 = max(0, round(x0)), max(0, round(y0))
    x1, y1 = min(width, round(x1)), min(height, round(y1))
    if x1 - x0 < MIN_SIZE or y1 - y0 < MIN_SIZE:
        return None
    return x0, y0, x1 - x0, y1 - y0


class RoiTool(QObject):
    """Hooks an ImageViewer: in draw mode a left drag draws the ROI (Esc or Clear ROI removes it); emits roi_changed."""

    roi_changed = Signal(object)  # Roi | None

    def __init__(self, viewer, settings=None, station=None, parent: QObject | None = None) -> None:
        super().__init__(parent or viewer)
        self.viewer = viewer
        self.settings = settings
        self.station = station
        self.roi: Roi | None = None
        self.view_roi: Roi | None = None  # the ROI the frame on the viewer is cut to: a live run with an ROI shows only it
        self._start: QPointF | None = None
        self._enabled = True
        pen = QPen(ROI_COLOUR, 2.0, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.item = QGraphicsRectItem()
        self.item.setPen(pen)
        self.item.setZValue(20)
        self.item.hide()
        viewer.view.addItem(self.item)
        self.bar = QWidget(viewer)
        self.bar.setObjectName("RoiBar")
        row = QHBoxLayout(self.bar)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        self.draw_button = QToolButton()
        self.draw_button.setText("Draw ROI")
        self.draw_button.setCheckable(True)
        self.draw_button.setToolTip("Drag on the image to mark the part: only that region is inspected (from the next Start)")
        self.clear_button = QToolButton()
        self.clear_button.setText("Clear ROI")
        self.clear_button.setToolTip("Inspect the whole frame again (Esc)")
        self.draw_button.toggled.connect(self._on_draw_toggled)
        self.clear_button.clicked.connect(self.clear)
        row.addWidget(self.draw_button)
        row.addWidget(self.clear_button)
        self.bar.adjustSize()
        self.bar.move(6, 6)
        if viewer.focusPolicy() == Qt.FocusPolicy.NoFocus:
            viewer.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # Esc reaches the viewer once it was clicked
        self._port = viewer.viewport()
        self._port.installEventFilter(self)
        viewer.installEventFilter(self)
        if station is not None:
            station.run_started.connect(self._on_run_started)
        if settings is not None:
            self.set_roi(settings.roi(), save=False)
        self._update_buttons()

    @property
    def drawing(self) -> bool:
        """True while a drag on the image draws the ROI instead of panning."""
        return self.draw_button.isChecked()

    def set_enabled(self, enabled: bool) -> None:
        """Engineer mode may draw and clear; operator mode only sees the ROI."""
        self._enabled = enabled
        if not enabled:
            self.draw_button.setChecked(False)
        self.bar.setVisible(enabled)

    def set_roi(self, roi: Roi | None, *, save: bool = True) -> None:
        """Use roi (x, y, width, height in frame pixels, None for the whole frame): shown, stored, handed to the station."""
        self.roi = tuple(int(v) for v in roi) if roi else None
        self._place()
        if self.station is not None:
            self.station.roi = self.roi
        if save and self.settings is not None:
            self.settings.save_roi(self.roi)
        self._update_buttons()
        self.roi_changed.emit(self.roi)

    def clear(self) -> None:
        """Inspect the whole frame again."""
        self.draw_button.setChecked(False)
        if self.roi is not None:
            self.set_roi(None)

    def _offset(self) -> tuple[int, int]:
        """Where the frame on the viewer sits in the camera frame (not at 0, 0 when a run shows only its ROI)."""
        return (self.view_roi[0], self.view_roi[1]) if self.view_roi is not None else (0, 0)

    def _place(self) -> None:
        """Draw the ROI over the frame shown, in that frame's pixels."""
        self.item.setVisible(self.roi is not None)
        if self.roi is not None:
            ox, oy = self._offset()
            self.item.setRect(QRectF(self.roi[0] - ox, self.roi[1] - oy, self.roi[2], self.roi[3]))

    def _on_run_started(self, _description: str) -> None:
        """The live frames from now on are cut to the run's ROI (or whole)."""
        self.view_roi = self.station.run_roi
        self._place()

    def _update_buttons(self) -> None:
        self.clear_button.setEnabled(self.roi is not None)
        self.bar.adjustSize()

    def _on_draw_toggled(self, on: bool) -> None:
        self._start = None
        self.viewer.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)
        self.viewer.view.setMouseEnabled(not on, not on)  # while drawing, a drag is not a pan
        if on:
            self.viewer.setFocus()

    def _image_point(self, event) -> QPointF:
        return self.viewer.view.mapSceneToView(self.viewer.mapToScene(event.position().toPoint()))

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        """Left drag draws while in draw mode; Esc cancels a drag, else clears the ROI (engineer mode)."""
        kind = event.type()
        if kind not in _HANDLED:
            return False
        if kind == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Escape and self._enabled:
            if self._start is not None or self.drawing:
                self._start = None
                self.draw_button.setChecked(False)
                self._place()
            else:
                self.clear()
            return True
        if obj is not self._port or not (self.drawing and self._enabled) or self.viewer.image is None:
            return False
        if kind == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            self._start = self._image_point(event)
            return True
        if kind == QEvent.Type.MouseMove and self._start is not None:
            self.item.setRect(QRectF(self._start, self._image_point(event)).normalized())
            self.item.show()
            return True
        if kind == QEvent.Type.MouseButtonRelease and self._start is not None:
            h, w = self.viewer.image.shape[:2]
            roi = clip_roi(self._start, self._image_point(event), w, h)
            self._start = None
            self.draw_button.setChecked(False)
            if roi is not None:
                ox, oy = self._offset()
                roi = (roi[0] + ox, roi[1] + oy, roi[2], roi[3])
            self.set_roi(roi if roi is not None else self.roi)
            return True
        return False
