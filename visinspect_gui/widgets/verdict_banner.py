"""The verdict banner: GOOD in green, ANOMALY in red, NEEDS REVIEW in amber, NOT <PRODUCT> in violet, big enough to
read from two metres, with score and latency."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QPainter, QPen, QPixmap
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QVBoxLayout, QWidget

from engine.types import Inspection, Verdict
from visinspect_gui.widgets.common import format_threshold, hold_size, release_size, set_prop
from visinspect_gui.widgets.verdict_style import BANNER_COLOURS, banner_title, verdict_detail

MIN_HEIGHT = 170
RADIUS = 10


class VerdictBanner(QFrame):
    """One glance tells the operator the verdict on the frame on screen.

    Its size is fixed (see fit_height), and so are the labels whose text changes with every frame: a new text up
    to 20 times a second repaints those labels and lays out nothing. It paints its own rounded background from a
    cached pixmap: the style sheet's (a rounded clip under every label) cost about a tenth of a Live-tab draw.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("VerdictBanner")
        self.setProperty("verdict", "none")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 14)
        layout.setSpacing(2)
        self.verdict_label = QLabel("READY")
        self.verdict_label.setObjectName("VerdictText")
        self.verdict_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail_label = QLabel("Load a model and start a source")
        self.detail_label.setObjectName("VerdictDetail")
        self.detail_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.item_label = QLabel("")
        self.item_label.setObjectName("VerdictItem")
        self.item_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        for label in (self.detail_label, self.item_label):
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.verdict_label)
        layout.addWidget(self.detail_label)
        layout.addWidget(self.item_label)
        self.setFixedHeight(MIN_HEIGHT)
        self._verdict: Verdict | None = None
        self.product = ""  # the loaded model's product, named by a NOT_PRODUCT verdict
        self._fitted_to: tuple | None = None  # (verdict, detail length, product, width) the height was last fitted to
        self._background: tuple | None = None  # ((verdict, size, pixel ratio), QPixmap) painted under the labels
        self._per_frame = (self.detail_label, self.item_label)  # texts that change with every frame shown

    @property
    def verdict(self) -> Verdict | None:
        """The verdict shown, or None when none is."""
        return self._verdict

    def set_product(self, product: str) -> None:
        """The product the loaded model inspects ("does not look like <product>")."""
        self.product = product

    def show_inspection(self, inspection: Inspection, *, latency_ms: float | None = None, item: str = "") -> None:
        """Show a verdict with its anomaly probability, the threshold it was judged at, and the latency."""
        verdict = inspection.verdict
        self._verdict = verdict
        self.verdict_label.setText(banner_title(verdict, self.product))
        parts = [verdict_detail(verdict, self.product)] if verdict in (Verdict.REVIEW, Verdict.NOT_PRODUCT) else []
        if verdict is not Verdict.NOT_PRODUCT:  # p(anomaly) of a frame that is not the product means nothing
            rule = f"threshold {format_threshold(inspection.threshold)}"
            if verdict is Verdict.REVIEW and inspection.thresholds.accept is not None:
                rule = f"band {format_threshold(inspection.thresholds.accept)}–{format_threshold(inspection.threshold)}"
            parts += [f"p(anomaly) {inspection.p_anomaly:.3f}", rule]
        if latency_ms is not None:
            parts.append(f"{latency_ms:.0f} ms")
        self.detail_label.setText("  ·  ".join(parts))
        wrap = verdict in (Verdict.REVIEW, Verdict.NOT_PRODUCT)
        if self.detail_label.wordWrap() != wrap:  # Qt lays the text out again even when it is unchanged
            self.detail_label.setWordWrap(wrap)
        self.item_label.setText(item)
        set_prop(self, "verdict", verdict.value, children=True)
        self.fit_height()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """The verdict's colour as a rounded rectangle with a 1 px border, under the labels (drawn once per colour and size)."""
        key = (self.property("verdict"), self.size(), self.devicePixelRatioF())
        if self._background is None or self._background[0] != key:
            self._background = (key, self._draw_background(*key))
        painter = QPainter(self)
        painter.drawPixmap(0, 0, self._background[1])
        painter.end()

    def _draw_background(self, verdict: str, size, ratio: float) -> QPixmap:
        fill, border = BANNER_COLOURS.get(verdict, BANNER_COLOURS["none"])
        pixmap = QPixmap(size * ratio)
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(border, 1))
        painter.setBrush(fill)
        painter.drawRoundedRect(QRectF(0, 0, size.width(), size.height()).adjusted(0.5, 0.5, -0.5, -0.5), RADIUS, RADIUS)
        painter.end()
        return pixmap

    def show_idle(self, title: str = "READY", detail: str = "") -> None:
        """No verdict: idle, paused, stopped."""
        self._verdict = None
        self.verdict_label.setText(title)
        self.detail_label.setText(detail)
        self.item_label.setText("")
        set_prop(self, "verdict", "none", children=True)
        self.fit_height()

    def fit_height(self) -> None:
        """Fix the height to what the content needs at the banner's width, when the verdict or the product changed.

        Within one verdict the lines keep their number (the figures have a fixed format), so a new frame does not re-fit.
        """
        key = (self._verdict, len(self.detail_label.text()), self.product, self.width())
        if key == self._fitted_to:
            return
        self._fitted_to = key
        for label in self._per_frame:
            release_size(label)
        layout = self.layout()
        needed = layout.totalHeightForWidth(self.width()) if layout.hasHeightForWidth() else layout.totalSizeHint().height()
        self.setFixedHeight(max(MIN_HEIGHT, needed))
        layout.activate()
        for label in self._per_frame:  # a new text repaints the label without laying out the banner again
            hold_size(label)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if self._fitted_to is not None and self._fitted_to[3] != self.width():
            self.fit_height()
