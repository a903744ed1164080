"""The status bar: compute device, model, source state, dropped frames, and a warning when results cannot be saved."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from visinspect_gui.widgets.common import elide_middle, set_prop


def _field(name: str, tooltip: str) -> QLabel:
    """A permanent status-bar label."""
    label = QLabel()
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
        self.dropped = _field("Dropped", "Frames the model could not keep up with (newest frame wins)")
        self.model = _field("ModelField", "The loaded model")
        self.device = _field("DeviceField", "Where inference runs, and in which numeric precision")
        for w in (self.log_warning, self.source_state, self.dropped, self.model, self.device):
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
        self.source_state.setText(elide_middle(text, 56))
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
