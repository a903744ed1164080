"""The Live tab: the frame with its heatmap, the verdict banner and the production counters side by side."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from engine.display import DRAW_INTERVAL_S, DisplayFeed
from engine.inference.live import LiveResult
from engine.types import Inspection
from visinspect_gui.widgets.common import format_threshold
from visinspect_gui.widgets.counters import CountersPanel
from visinspect_gui.widgets.model_panel import NO_IMAGENET_NOTE
from visinspect_gui.widgets.verdict_banner import VerdictBanner
from visinspect_gui.widgets.viewer import ImageViewer

SIDE_WIDTH = 440  # the verdict column beside the image
CATCH_UP_MS = 150  # results stopped coming (paused, stepped, ended): the newest is drawn even if not composed upstream


def item_label(result: LiveResult) -> str:
    """File name or frame number of a result, for the banner."""
    frame = result.frame
    return Path(frame.path).name if frame.path else f"frame {frame.index}"


def model_name(inspection: Inspection) -> str:
    """The file name of the model that judged an inspection."""
    return Path(inspection.model.path).name if inspection.model.path else "model in memory"


class LiveTab(QWidget):
    """Shows live results: counts every one, draws the newest at most every DRAW_INTERVAL_S however fast they arrive.

    With a display feed (the station's live loop composes the frames to show), only results that carry
    their picture are drawn while results stream in; when they stop, the newest is drawn whatever it carries.
    """

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
        self.banner.setFixedWidth(SIDE_WIDTH)  # with its fixed height: a new verdict's text does not re-lay out the window
        column.addWidget(self.banner)
        self.context = QLabel("")
        self.context.setObjectName("VerdictContext")
        self.context.setWordWrap(True)
        self.context.setToolTip("The model, threshold and source that produced the verdict and the counters shown")
        column.addWidget(self.context)
        self.model_notice = QLabel("⚠  Model trained without ImageNet weights")
        self.model_notice.setObjectName("ModelNotice")
        self.model_notice.setToolTip(NO_IMAGENET_NOTE)
        self.model_notice.setWordWrap(True)
        self.model_notice.hide()
        column.addWidget(self.model_notice)
        self.counters = CountersPanel()
        column.addWidget(self.counters, 1)
        side.setFixedWidth(SIDE_WIDTH)
        row.addWidget(side)
        layout.addLayout(row, 1)

        self.result: LiveResult | None = None  # the newest result (as the model judged it)
        self.shown: Inspection | None = None  # its inspection as shown (re-judged after a threshold change)
        self._pending: LiveResult | None = None
        self._last_draw = 0.0  # time.monotonic() of the last draw
        self._draw_timer = QTimer(self)
        self._draw_timer.setSingleShot(True)
        self._draw_timer.timeout.connect(self._draw_pending)
        self._feed: DisplayFeed | None = None
        self._newest: LiveResult | None = None  # the newest result counted (drawn or not)
        self._catch_up = QTimer(self)
        self._catch_up.setSingleShot(True)
        self._catch_up.setInterval(CATCH_UP_MS)
        self._catch_up.timeout.connect(self._draw_newest)
        self.frames_drawn = 0  # results actually drawn; fewer than received when they come faster than drawing
        self.source = ""  # the source the results come from, as the station describes it
        self._counting: tuple | None = None  # (model sha256, decision threshold, source) the counters count for

    def add_result(self, result: LiveResult) -> None:
        """Count a result now (counters start again when model, threshold or source differ); draw it when free."""
        insp = result.inspection
        key = (insp.model.sha256, insp.thresholds.decision, self.source)
        if key != self._counting:
            self._counting = key
            self.counters.reset()
            self.counters.set_threshold(insp.thresholds.decision)
            self.counters.set_scope(f"{model_name(insp)} · threshold {format_threshold(insp.thresholds.decision)}", self.source)
        self.counters.add(insp.verdict, insp.p_anomaly, fps=result.fps, latency_ms=result.latency_ms)
        self._newest = result
        if self._feed is not None and result.display is None:
            self._catch_up.start()
            return
        self._pending = result
        if not self._draw_timer.isActive():  # a result after a quiet spell is drawn at once; in a stream, at a steady pace
            wait_s = self._last_draw + DRAW_INTERVAL_S - time.monotonic()
            self._draw_timer.start(max(0, round(wait_s * 1000)))

    def use_display_feed(self, feed: DisplayFeed) -> None:
        """The live loop composes the frames to show through feed, in the style this tab's viewer draws."""
        self._feed = feed
        feed.style = self.viewer.style

    def _draw_pending(self) -> None:
        """Draw the newest result that arrived since the last draw."""
        result, self._pending = self._pending, None
        if result is None:
            return
        self._last_draw = time.monotonic()
        if self._feed is not None:
            self._feed.style = self.viewer.style  # a changed overlay reaches the next frames composed
        self.result = result
        self.shown = result.inspection
        self.viewer.show_image(result.frame.image, result.inspection, result.display)
        self._show_verdict()
        self.frames_drawn += 1

    def _draw_newest(self) -> None:
        """Draw the newest result now if it is not what is on screen (results have stopped coming, or flush)."""
        if self._newest is not None and self._newest is not self.result:
            self._pending = self._newest
        self._draw_pending()

    def _show_verdict(self) -> None:
        """The banner and, beside it, the model, threshold and source that produced the verdict."""
        insp, result = self.shown, self.result
        self.banner.show_inspection(insp, latency_ms=result.latency_ms, item=item_label(result))
        context = f"Judged by {model_name(insp)} at threshold {format_threshold(insp.threshold)}\nSource: {self.source}"
        if context != self.context.text():  # the same words each frame of a run: no new layout
            self.context.setText(context)
        self.context.setToolTip(f"{insp.model.path}\nsha256 {insp.model.sha256}")

    def show_no_verdict(self, title: str, reason: str) -> None:
        """No current verdict (model switched, source failed or stopped): a neutral banner with the reason.

        The last frame stays, without its heatmap and boxes: they were that verdict's.
        """
        self._pending = self._newest = None
        self.result = self.shown = None
        self.banner.show_idle(title, reason)
        self.context.setText("")
        self.viewer.set_inspection(None)

    def mark_last(self, note: str) -> None:
        """Say beside the verdict that it is the last of a run that has ended (not a part on the line now)."""
        self.flush()
        if self.result is not None:
            self.context.setText(f"{self.context.text()}\n{note}")

    def set_source(self, description: str) -> None:
        """The source later results come from (named beside the verdict and the counters)."""
        self.source = description

    def flush(self) -> None:
        """Draw the newest result now (end of a run, tests, screenshots)."""
        self._draw_newest()
        self.counters.flush()

    def rejudge(self, inspector) -> None:
        """Re-apply the inspector's current thresholds to the frame on screen, without running the model."""
        if self.result is None or inspector is None:
            return
        if not self.result.inspection.model.same_model(inspector.ref):
            return  # the frame on screen was judged by another model: it is not re-judged as if by this one
        self.shown = self.result.inspection.at(inspector.thresholds)
        self.viewer.set_inspection(self.shown)
        self._show_verdict()

    def set_model(self, inspector) -> None:
        """A model was loaded: no verdict is current until it judges a frame; note a model without ImageNet weights."""
        self.model_notice.setVisible(not inspector.meta.pretrained)
        self.banner.set_product(inspector.meta.product)
        self.counters.set_threshold(inspector.threshold)
        if self.result is not None and not self.result.inspection.model.same_model(inspector.ref):
            self.show_no_verdict("MODEL CHANGED", f"{Path(inspector.path).name} judges from the next frame")
        elif self.result is None:
            self.banner.show_idle("READY", f"{Path(inspector.path).name} loaded — choose a source and press Start")
