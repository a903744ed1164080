"""The status bar: device, model, source state, dropped frames, saved-frames usage, and results-log warnings."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from engine.results.retention import FrameStatus, FrameStore, days_text, format_bytes
from visinspect_gui.widgets.common import elide_middle, set_prop
from visinspect_gui.workers import Latest, call


class ShrinkingLabel(QLabel):
    """A label that may be narrower than its text, which it then elides, so it never widens the window."""

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(min(80, super().minimumSizeHint().width()), super().minimumSizeHint().height())

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, self.contentsRect().width())
        painter.drawText(self.contentsRect(), int(self.alignment()), text)


def _field(name: str, tooltip: str) -> QLabel:
    """A permanent status-bar label: every one shrinks (eliding its text), or together they widened the window."""
    label = ShrinkingLabel()
    label.setObjectName(name)
    label.setToolTip(tooltip)
    return label


class StationStatusBar(QStatusBar):
    """Permanent fields on the right; transient messages on the left."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("StatusBar")
        self.log_warning = _field("LogWarning", "The results log could not be written; results wait in memory")
        self.log_warning.hide()
        self.source_state = _field("SourceState", "What the source is doing")
        self.dropped = QLabel()  # short: never elided
        self.dropped.setObjectName("Dropped")
        self.dropped.setToolTip("Frames the model could not keep up with (newest frame wins)")
        self.model = _field("ModelField", "The loaded model")
        self.device = _field("DeviceField", "Where inference runs, and in which numeric precision")
        self.frames = _field("FramesField", "")
        self.frames.hide()  # until the frames folder has been measured
        self._frames_job = Latest()
        for w in (self.log_warning, self.source_state, self.dropped, self.frames, self.model, self.device):
            self.addPermanentWidget(w)
        self.set_source_state("Idle")
        self.set_dropped(0)
        self.set_model(None)
        self.set_device("–")

    def set_device(self, text: str, why: str = "") -> None:
        """Where inference runs (CPU, GPU name) and in which precision; why: how that precision was chosen."""
        self.device.setText(f"Device: {text}")
        self.device.setToolTip(why or "Where inference runs, and in which numeric precision")

    def set_model(self, name: str | None) -> None:
        """The loaded model's name."""
        self.model.setText(f"Model: {elide_middle(name, 40) if name else 'none'}")

    def set_source_state(self, text: str, level: str = "info") -> None:
        """Show the source state (elided: a long path must not widen the window), coloured when in trouble."""
        self.source_state.setText(elide_middle(text, 44))
        self.source_state.setToolTip(text)
        set_prop(self.source_state, "level", level)

    def set_dropped(self, count: int) -> None:
        """Frames dropped so far, amber once any were."""
        self.dropped.setText(f"Dropped: {count:,}")
        set_prop(self.dropped, "level", "warning" if count else "info")

    def set_log_warning(self, text: str | None) -> None:
        """Show or clear the results-log problem (disk full, database locked)."""
        if text:
            self.log_warning.setText(f"⚠ Results not saved: {elide_middle(text, 70)}")
            self.log_warning.setToolTip(text)
            self.log_warning.show()
        else:
            self.log_warning.hide()

    def refresh_frames(self, store: FrameStore) -> None:
        """Measure the saved frames off the GUI thread (a running total: cheap), then show them."""
        if not self._frames_job.busy():
            self._frames_job.start(call, store.status, on_event=self.set_frames_usage, on_failed=self._frames_unknown)

    def _frames_unknown(self, message: str) -> None:
        """The frames folder could not be measured: say so rather than keep an old size."""
        self.frames.setText("Frames: size unknown")
        self.frames.setToolTip(f"The saved anomaly frames could not be measured: {message}")
        set_prop(self.frames, "level", "warning")
        self.frames.show()

    def set_frames_usage(self, status: FrameStatus) -> None:
        """'Frames: 312 MB of 2 GB · 30 days'; amber when over the limit or a frame could not be removed."""
        usage, policy, pruned = status.usage, status.policy, status.last_prune
        self.frames.setText(f"Frames: {format_bytes(usage.bytes)} of {policy.describe()}")
        oldest = f", the oldest from {usage.oldest:%Y-%m-%d %H:%M}" if usage.oldest else ""
        tip = (
            f"Saved anomaly frames: {usage.files:,}{oldest}.\nFrames older than {days_text(policy.max_age_days)} "
            f"and the oldest beyond {format_bytes(policy.max_bytes)} are removed; their results stay in History."
        )
        problems = pruned.problems if pruned is not None else ()
        if problems:
            tip += f"\n{len(problems)} frame(s) could not be removed, e.g. {problems[-1]}"
        self.frames.setToolTip(tip)
        set_prop(self.frames, "level", "warning" if problems or status.over_limit else "info")
        self.frames.show()
