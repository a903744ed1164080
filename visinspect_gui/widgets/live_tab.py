"""The Live tab: the frame with its heatmap, the verdict banner and the production counters side by side."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from engine.inference.live import LiveResult
from engine.types import Inspection
from visinspect_gui.widgets.counters import CountersPanel
from visinspect_gui.widgets.model_panel import NO_IMAGENET_NOTE
from visinspect_gui.widgets.verdict_banner import VerdictBanner
from visinspect_gui.widgets.viewer import ImageViewer


def item_label(result: LiveResult) -> str:
    """File name or frame number of a result, for the banner."""
    frame = result.frame
    return Path(frame.path).name if frame.path else f"frame {frame.index}"


class LiveTab(QWidget):
    """Shows live results; draws at most once per event-loop turn however fast results arrive."""

    def __init__(self, demo_panel: QWidget | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        if demo_panel is not None:
            layout.addWidget(demo_panel)

        row = QHBoxLayout()
        row.setSpacing(10)
        self.viewer = ImageViewer(placeholder="No image yet.\nChoose a source on the left and press Start.")
        row.addWidget(self.viewer, 1)

        side = QWidget()
        side.setObjectName("LiveSide")
        column = QVBoxLayout(side)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(8)
        self.banner = VerdictBanner()
        column.addWidget(self.banner)
        self.model_notice = QLabel("⚠  Model trained without ImageNet weights")
        self.model_notice.setObjectName("ModelNotice")
        self.model_notice.setToolTip(NO_IMAGENET_NOTE)
        self.model_notice.setWordWrap(True)
        self.model_notice.hide()
        column.addWidget(self.model_notice)
        self.counters = CountersPanel()
        column.addWidget(self.counters, 1)
        side.setFixedWidth(440)
        row.addWidget(side)
        layout.addLayout(row, 1)

        self.result: LiveResult | None = None  # the newest result (as the model judged it)
        self.shown: Inspection | None = None  # its inspection as shown (re-judged after a threshold change)
        self._pending: LiveResult | None = None
        self.frames_drawn = 0  # results actually drawn; fewer than received when they come faster than drawing

    def add_result(self, result: LiveResult) -> None:
        """Count a result now; draw the newest one when the event loop is next free."""
        insp = result.inspection
        self.counters.add(insp.verdict, insp.p_anomaly, fps=result.fps, latency_ms=result.latency_ms)
        if self._pending is None:
            QTimer.singleShot(0, self._draw_pending)
        self._pending = result

    def _draw_pending(self) -> None:
        """Draw the newest result that arrived since the last draw."""
        result, self._pending = self._pending, None
        if result is None:
            return
        self.result = result
        self.shown = result.inspection
        self.viewer.show_image(result.frame.image, result.inspection)
        self.banner.show_inspection(result.inspection, latency_ms=result.latency_ms, item=item_label(result))
        self.frames_drawn += 1

    def flush(self) -> None:
        """Draw anything waiting now (tests, screenshots)."""
        self._draw_pending()
        self.counters.flush()

    def rejudge(self, inspector) -> None:
        """Re-apply the inspector's current thresholds to the frame on screen, without running the model."""
        if self.result is None or inspector is None:
            return
        self.shown = self.result.inspection.at(inspector.thresholds)
        self.viewer.set_inspection(self.shown)
        self.banner.show_inspection(self.shown, latency_ms=self.result.latency_ms, item=item_label(self.result))

    def set_model(self, inspector) -> None:
        """Note plainly when the model was trained without ImageNet weights."""
        self.model_notice.setVisible(not inspector.meta.pretrained)
        self.counters.set_threshold(inspector.threshold)
