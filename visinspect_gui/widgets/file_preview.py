"""One reviewed file shown large: read and inspected again in a worker, judged at the thresholds in force."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QVBoxLayout, QWidget

from engine.jobs.review import ReviewRow, Shown, error_reason, same_model, show_file_job
from engine.thresholds import Thresholds
from engine.types import Verdict
from visinspect_gui.widgets.common import hint
from visinspect_gui.widgets.viewer import ImageViewer
from visinspect_gui.workers import Latest


class FilePreview(QWidget):
    """The viewer with the file's heatmap and boxes, and one line naming the file (once), its verdict, score and threshold."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = ImageViewer(placeholder="Select a row to see the image with its heatmap and boxes.")
        self.detail = hint("")
        self.detail.setObjectName("ReviewDetail")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.viewer, 1)
        layout.addWidget(self.detail)
        self.shown: Shown | None = None
        self._name = ""  # the file shown, named once in the caption
        self._note = ""  # when the loaded model is not the one that gave the row
        self._loader = Latest()

    def show_row(self, row: ReviewRow, inspector) -> None:
        """Show a row's file (inspected again in a worker), or its error."""
        self._loader.stop()
        self.shown = None
        self._name = Path(row.path).name
        self.detail.setToolTip(row.path)
        if row.verdict is Verdict.ERROR:
            self.viewer.clear()
            self.viewer.set_placeholder(f"Could not be inspected:\n{row.error}")
            self.detail.setText(f"{self._name}  ·  ERROR  ·  {row.error}")
            return
        if inspector is None:
            return
        other = row.model is not None and not same_model(row.model, inspector.ref)
        self._note = f"  ·  inspected again with the loaded model, not {Path(row.model.path).name}" if other else ""
        self.detail.setText(f"Loading {self._name}…")
        self._loader.start(show_file_job, row.path, inspector, on_event=self._on_shown, on_failed=self._on_failed)

    def clear(self) -> None:
        self._loader.stop()
        self.shown = None
        self.viewer.clear()
        self.detail.setText("")
        self.detail.setToolTip("")

    def judge_at(self, thresholds: Thresholds) -> None:
        """Show the file on screen as judged at other thresholds (the slider moved): never a stale verdict."""
        if self.shown is not None:
            inspection = self.shown.inspection.at(thresholds)
            self.viewer.set_inspection(inspection)
            self._describe(inspection)

    def stop(self) -> None:
        self._loader.stop()

    def _on_shown(self, shown: Shown) -> None:
        self.shown = shown
        self.viewer.show_image(shown.image, shown.inspection)
        self._describe(shown.inspection)

    def _describe(self, inspection) -> None:
        self.detail.setText(
            f"{self._name}  ·  {inspection.verdict.value}  ·  p(anomaly) {inspection.p_anomaly:.4f}  ·  "
            f"threshold {inspection.threshold:.4f}  ·  {len(inspection.boxes)} box(es){self._note}"
        )

    def _on_failed(self, message: str) -> None:
        """The file could not be read again: say so in the viewer."""
        self.viewer.clear()
        self.viewer.set_placeholder("Could not be read again")
        self.detail.setText(f"{self._name}  ·  {error_reason(self.detail.toolTip(), message)}")
