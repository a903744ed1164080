"""What the model panel's thresholds and heatmap settings change: later frames, the frame on screen, reviewed files, the audit."""

from __future__ import annotations

from pathlib import Path

from engine.results import ChangeKind
from visinspect_gui.widgets.common import format_threshold


class ThresholdControls:
    """Applies threshold and overlay changes across the window, recording threshold changes in the audit trail."""

    def __init__(self, window) -> None:
        self.w = window

    def on_threshold_stored(self, path: str, threshold: float) -> None:
        """A calibrated threshold was stored: reload that model if it is the one on the line."""
        w = self.w
        inspector = w.station.inspector
        if inspector is not None and Path(inspector.path).resolve() == Path(path).resolve():
            w.access.record(ChangeKind.THRESHOLD, f"{format_threshold(inspector.meta.threshold)} in {Path(path).name}", f"{format_threshold(threshold)} stored")
            w.open_model(path)
        w.show_message(f"Threshold {format_threshold(threshold)} stored in {Path(path).name}.", "info")

    def on_threshold_changed(self, value: float) -> None:
        """Apply the decision threshold to later frames; re-judge the frame on screen and the reviewed files."""
        w = self.w
        inspector = w.station.inspector
        if inspector is not None and inspector.thresholds.decision != value:
            w.access.record_settled(ChangeKind.THRESHOLD, format_threshold(inspector.thresholds.decision), format_threshold(value))
        w.station.set_threshold(value)
        w.live.counters.set_threshold(value)
        w.live.rejudge(inspector)
        w.review.rejudge(value)

    def on_box_threshold_changed(self, value: float) -> None:
        """Apply the box threshold to later frames and redraw the boxes on screen."""
        w = self.w
        inspector = w.station.inspector
        if inspector is not None and inspector.thresholds.box != value:
            w.access.record_settled(ChangeKind.BOX_THRESHOLD, f"{inspector.thresholds.box:.2f}", f"{value:.2f}")
        w.station.set_box_threshold(value)
        w.live.rejudge(inspector)

    def on_overlay_changed(self) -> None:
        """Redraw both viewers with the heatmap switch, opacity and colour map chosen."""
        w = self.w
        mp = w.model_panel
        w.live.viewer.set_overlay(
            heatmap_on=mp.heatmap_on, opacity=mp.heatmap_opacity, colormap=mp.colormap, heat_scale=mp.heat_scale
        )
        w.review.set_overlay(
            heatmap_on=mp.heatmap_on, opacity=mp.heatmap_opacity, colormap=mp.colormap, heat_scale=mp.heat_scale
        )
