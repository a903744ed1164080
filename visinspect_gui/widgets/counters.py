"""Production counters (inspected, good, anomaly, yield; needs review and not product once there are some) and a
timeline of anomaly scores against the threshold, each point in its verdict's colour."""

from __future__ import annotations

import time
from collections import deque

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from engine.types import Verdict
from visinspect_gui.widgets.common import Card, FigureLabel, SteadyLabel
from visinspect_gui.widgets.score_timeline import ScoreTimeline
from visinspect_gui.widgets.verdict_style import VERDICT_RGB

TIMELINE_POINTS = 300
REDRAW_MS = 250  # 4 redraws a second: a steady trend for the eye, little GUI-thread time taken from the model
THRESHOLD_RGB = (230, 170, 40)


class _Counter(QWidget):
    """A big number over a small caption."""

    def __init__(self, caption: str, object_name: str) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.value = FigureLabel("0")
        self.value.setObjectName(object_name)
        self.value.setAlignment(Qt.AlignmentFlag.AlignCenter)
        caption_label = QLabel(caption.upper())
        caption_label.setObjectName("CounterCaption")
        caption_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.value)
        layout.addWidget(caption_label)


class CountersPanel(Card):
    """Counts this shift's verdicts and plots recent scores; numbers and plot redraw at most every REDRAW_MS."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Production", parent)
        self.inspected = self.good = self.anomaly = self.review = self.not_product = 0
        grid = QGridLayout()
        grid.setHorizontalSpacing(6)
        self._inspected = _Counter("Inspected", "CounterValue")
        self._good = _Counter("Good", "CounterGood")
        self._anomaly = _Counter("Anomaly", "CounterAnomaly")
        self._yield = _Counter("Yield", "CounterValue")
        self._yield.value.setText("–")
        for col, w in enumerate((self._inspected, self._good, self._anomaly, self._yield)):
            grid.addWidget(w, 0, col)
        # Shown from the first such verdict: most models have no review band, and a guard rarely fires.
        self._review = _Counter("Needs review", "CounterReview")
        self._not_product = _Counter("Not product", "CounterNotProduct")
        grid.addWidget(self._review, 1, 1)
        grid.addWidget(self._not_product, 1, 2)
        self._review.setVisible(False)
        self._not_product.setVisible(False)
        self.body.addLayout(grid)
        self.scope = QLabel("Counting starts with the first verdict")
        self.scope.setObjectName("CounterScope")
        self.scope.setWordWrap(True)
        self.body.addWidget(self.scope)

        self.plot = ScoreTimeline(TIMELINE_POINTS, colours=VERDICT_RGB, threshold_rgb=THRESHOLD_RGB)
        self.body.addWidget(self.plot, 1)

        footer = QHBoxLayout()
        self.rate_label = SteadyLabel("– fps")
        self.rate_label.setObjectName("Metric")
        self.latency_label = SteadyLabel("– ms")
        self.latency_label.setObjectName("Metric")
        self.reset_button = QPushButton("Reset counters")
        self.reset_button.setToolTip("Start counting again from zero (the results log keeps everything)")
        self.reset_button.clicked.connect(self.reset)
        footer.addWidget(QLabel("Throughput"))
        footer.addWidget(self.rate_label)
        footer.addSpacing(12)
        footer.addWidget(QLabel("Latency"))
        footer.addWidget(self.latency_label)
        footer.addStretch(1)
        footer.addWidget(self.reset_button)
        self.body.addLayout(footer)

        self._y: deque[float] = deque(maxlen=TIMELINE_POINTS)
        self._verdicts: deque[Verdict] = deque(maxlen=TIMELINE_POINTS)
        self._dirty = False
        self._rate_text, self._latency_text = "– fps", "– ms"
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._redraw)
        self._timer.start()

    @property
    def yield_percent(self) -> float | None:
        """Share of inspected parts judged GOOD, or None before the first."""
        return 100.0 * self.good / self.inspected if self.inspected else None

    def add(self, verdict: Verdict, p_anomaly: float, *, fps: float | None = None, latency_ms: float | None = None) -> None:
        """Count one verdict and queue its point for the timeline."""
        self.inspected += 1
        if verdict is Verdict.ANOMALY:
            self.anomaly += 1
        elif verdict is Verdict.REVIEW:
            self.review += 1
        elif verdict is Verdict.NOT_PRODUCT:
            self.not_product += 1
        else:
            self.good += 1
        self._y.append(float(p_anomaly))
        self._verdicts.append(verdict)
        if fps is not None and fps > 0:
            self._rate_text = f"{fps:.1f} fps"
        if latency_ms is not None:
            self._latency_text = f"{latency_ms:.0f} ms"
        self._dirty = True

    def set_scope(self, judged_by: str, source: str) -> None:
        """Say what the numbers count: since when, with which model and threshold, from which source."""
        self.scope.setText(f"Since {time.strftime('%H:%M:%S')} · {judged_by}")
        self.scope.setToolTip(f"Source: {source}\nA new model, threshold or source starts the count again; History keeps every run.")

    def set_threshold(self, value: float) -> None:
        """Move the dashed threshold line on the timeline."""
        self.plot.set_threshold(value)

    def reset(self) -> None:
        """Zero the counters and clear the timeline."""
        self.inspected = self.good = self.anomaly = self.review = self.not_product = 0
        self._y.clear()
        self._verdicts.clear()
        self._rate_text, self._latency_text = "– fps", "– ms"
        self._dirty = True
        self._redraw()

    def _redraw(self) -> None:
        """Refresh numbers and plot from what add() collected (coalesces bursts of results)."""
        if not self._dirty:
            return
        self._dirty = False
        self._inspected.value.setText(f"{self.inspected:,}")
        self._good.value.setText(f"{self.good:,}")
        self._anomaly.value.setText(f"{self.anomaly:,}")
        for counter, count in ((self._review, self.review), (self._not_product, self.not_product)):
            counter.value.setText(f"{count:,}")
            if count and not counter.isVisibleTo(self):
                counter.setVisible(True)
        y = self.yield_percent
        self._yield.value.setText("–" if y is None else f"{y:.1f}%")
        self.rate_label.setText(self._rate_text)
        self.latency_label.setText(self._latency_text)
        self.plot.set_scores(self._y, self._verdicts)

    def flush(self) -> None:
        """Redraw now (tests and screenshots)."""
        self._redraw()
