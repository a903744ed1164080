"""The image viewer: a frame at full resolution with its heatmap blended in and defect boxes drawn; wheel zooms, drag pans."""

from __future__ import annotations

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QLabel, QWidget

from engine.display import Composite, OverlayStyle, compose
from engine.types import HeatScale, Inspection
from visinspect_gui.widgets.frame_items import BoxOverlay, PictureItem

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)

COLORMAPS = {"Jet": cv2.COLORMAP_JET, "Inferno": cv2.COLORMAP_INFERNO, "Turbo": cv2.COLORMAP_TURBO}
BACKGROUND = "#111316"


class ImageViewer(pg.GraphicsView):
    """Shows one image with an optional inspection overlay; keeps the operator's zoom while frames change."""

    def __init__(self, parent: QWidget | None = None, *, placeholder: str = "No image") -> None:
        super().__init__(parent, background=BACKGROUND)
        self.setObjectName("ImageViewer")
        # The scene's background brush fills every pixel it repaints: the widgets beneath need not be painted first.
        self.viewport().setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)
        self.view = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.01)
        self.setCentralItem(self.view)
        self.picture = PictureItem()
        self.view.addItem(self.picture)
        self.boxes = BoxOverlay()
        self.view.addItem(self.boxes)
        self.heatmap_on = True
        self.opacity = 0.45
        self.colormap = cv2.COLORMAP_JET
        self.heat_scale = HeatScale.ABSOLUTE  # wanted; a model without an absolute scale is shown per image, said in the caption
        self.image: np.ndarray | None = None  # the frame as given (RGB uint8)
        self.inspection: Inspection | None = None
        self.composite: np.ndarray | None = None  # what is on screen: frame + heatmap
        self._placeholder = QLabel(placeholder, self)
        self._placeholder.setObjectName("ViewerPlaceholder")
        self._placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._placeholder.setWordWrap(True)
        self.caption = QLabel(self)  # which heat scale the colours and box labels are on
        self.caption.setObjectName("HeatCaption")
        self.caption.setStyleSheet("background: rgba(17, 19, 22, 190); color: #e6e6e6; padding: 1px 4px;")
        self.caption.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.caption.hide()
        self._caption_for = None  # the viewer size the caption was laid out for

    # -- public --------------------------------------------------------------------------------

    @property
    def boxes_drawn(self) -> int:
        """How many defect boxes are visible now."""
        return len(self.boxes.labels)

    def set_placeholder(self, text: str) -> None:
        """The text shown while there is no image (or why there is none)."""
        self._placeholder.setText(text)

    @property
    def style(self) -> OverlayStyle:
        """How the heatmap is drawn now (the live loop composes the frames it sends in this style)."""
        return OverlayStyle(self.heatmap_on, self.opacity, self.colormap, self.heat_scale)

    def show_image(self, image: np.ndarray, inspection: Inspection | None = None, composite: Composite | None = None) -> None:
        """Show a new frame (and its inspection, and its picture when already composed); refits only on a new frame size."""
        refit = self.image is None or self.image.shape[:2] != image.shape[:2]
        self.image = image
        self.inspection = inspection
        self._render(composite)
        self._placeholder.hide()
        if refit:
            self.fit()

    def set_inspection(self, inspection: Inspection | None) -> None:
        """Redraw the current frame with another inspection (e.g. re-judged at a new threshold)."""
        self.inspection = inspection
        if self.image is not None:
            self._render()

    def set_boxes(self, boxes) -> None:
        """Draw these boxes over the current frame (e.g. boxes logged with a saved frame)."""
        self._draw_boxes(tuple(boxes))

    def set_overlay(
        self, *, heatmap_on: bool | None = None, opacity: float | None = None, colormap: int | None = None,
        heat_scale: HeatScale | None = None,
    ) -> None:
        """Change how the heatmap is drawn (and on which scale) and redraw."""
        if heat_scale is not None:
            self.heat_scale = HeatScale.parse(heat_scale)
        if heatmap_on is not None:
            self.heatmap_on = heatmap_on
        if opacity is not None:
            self.opacity = opacity
        if colormap is not None:
            self.colormap = colormap
        if self.image is not None:
            self._render()

    def clear(self) -> None:
        """Remove the image and boxes and show the placeholder again."""
        self.image = self.inspection = self.composite = None
        self.picture.clear()
        self._draw_boxes(())
        self.caption.hide()
        self._placeholder.show()

    def fit(self) -> None:
        """Show the whole image."""
        if self.image is not None:
            h, w = self.image.shape[:2]
            self.view.setRange(QRectF(0, 0, w, h), padding=0.01)

    # -- drawing -------------------------------------------------------------------------------

    def _render(self, composite: Composite | None = None) -> None:
        """Put frame and heatmap on screen (composed here unless given in the style shown), place boxes, name the scale."""
        image, inspection = self.image, self.inspection
        if composite is None or composite.style != self.style or composite.size != image.shape[:2]:
            composite = compose(image, inspection, self.style)
        view = inspection.heat_view(self.heat_scale) if inspection is not None else None
        self.composite = composite.image
        height, width = composite.size
        self.picture.set_picture(composite.image, QRectF(0, 0, width, height))  # frame pixels, whatever size it was made at
        self._draw_boxes(inspection.boxes if inspection is not None else (), view.scale if view is not None else None)
        self._show_caption(view.caption if view is not None else "")

    def _show_caption(self, text: str) -> None:
        """The heat scale in use, small in the bottom-left corner (elided to the viewer's width)."""
        if not text:
            self.caption.hide()
            return
        if self.caption.isVisible() and text == self.caption.toolTip() and self._caption_for == self.size():
            return  # the same scale on the same viewer: nothing to lay out again
        self._caption_for = self.size()
        self.caption.setToolTip(text)
        width = max(40, self.width() - 16)
        self.caption.setText(self.caption.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, width - 10))
        self.caption.adjustSize()
        self.caption.move(6, max(0, self.height() - self.caption.height() - 6))
        self.caption.show()
        self.caption.raise_()

    def _draw_boxes(self, boxes, scale: HeatScale | None = None) -> None:
        """Boxes as outlines with their own score on the scale shown, crisp at any zoom."""
        scale = self.heat_scale if scale is None else scale
        frame = self.picture.boundingRect() if self.image is None else QRectF(0, 0, self.image.shape[1], self.image.shape[0])
        rects = [QRectF(box.x0, box.y0, box.width, box.height) for box in boxes]
        self.boxes.set_boxes(rects, [box.label(scale) for box in boxes], frame)

    @property
    def box_labels(self) -> list[str]:
        """The numbers written beside the visible boxes, in drawing order."""
        return self.boxes.labels

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if hasattr(self, "caption"):  # pyqtgraph calls this from its own __init__
            self._placeholder.setGeometry(self.rect().adjusted(24, 24, -24, -24))
            if self.caption.isVisible():
                self._show_caption(self.caption.toolTip())

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802 - Qt override
        """Double-click shows the whole image again."""
        self.fit()
        event.accept()
