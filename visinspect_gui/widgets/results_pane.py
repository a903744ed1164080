"""The results of an evaluation, as the Train and Evaluate tabs both show them: report, calibration, export."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QTabWidget, QWidget

from engine.evaluation.calibrate import calibration_record
from engine.evaluation.evaluate import scores_arrays
from engine.evaluation.metrics import EvalReport
from engine.evaluation.report import GalleryEntry, calibration_overlap
from engine.jobs.calibrate import CalibrationDone
from engine.modelfile import ModelMeta
from visinspect_gui.pdf import export_report
from visinspect_gui.widgets.calibration_view import CalibrationView, ScoredImages
from visinspect_gui.widgets.common import format_threshold, scrolled
from visinspect_gui.widgets.report_view import ReportView, fmt_pct
from visinspect_gui.workers import Latest


def ask_report_path(parent: QWidget, default: Path) -> str | None:
    """Ask where to export a report; the extension chosen (.html or .pdf) decides the format."""
    path, chosen = QFileDialog.getSaveFileName(parent, "Export report", str(default), "HTML (*.html);;PDF (*.pdf)")
    if not path:
        return None
    if not path.lower().endswith((".html", ".htm", ".pdf")):
        path += ".pdf" if "pdf" in chosen.lower() else ".html"
    return path


class ResultsPane(QTabWidget):
    """A report with its gallery and the calibration view on the same scores; exports the report as HTML or PDF."""

    threshold_stored = Signal(str, float)  # model file, threshold
    report_exported = Signal(str)
    export_failed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report_view = ReportView()
        self.calibration = CalibrationView()
        self.calibration.calibration_stored.connect(self._on_calibration_stored)
        self._pages = {self.report_view: scrolled(self.report_view), self.calibration: scrolled(self.calibration)}
        self.addTab(self._pages[self.report_view], "Report")
        self.addTab(self._pages[self.calibration], "Calibration")
        self.meta: ModelMeta | None = None
        self.how = ""
        self.data_dir: str | None = None  # the folder the report's images came from
        self._export = Latest()

    def setCurrentWidget(self, widget: QWidget) -> None:  # noqa: N802 - Qt API
        """Show a page: the report view and calibration view sit in scroll areas of their own."""
        super().setCurrentWidget(self._pages.get(widget, widget))

    def current_page(self) -> QWidget:
        """The page shown (the report or calibration view itself, not its scroll area)."""
        page = self.currentWidget()
        return next((w for w, area in self._pages.items() if area is page), page)

    @property
    def report(self) -> EvalReport | None:
        return self.report_view.report

    def clear(self) -> None:
        self.meta, self.how, self.data_dir = None, "", None
        self.report_view.clear()
        self.calibration.set_images(None)

    def show_report(self, report: EvalReport, meta: ModelMeta, *, title: str, how: str, precision: str,
                    images: ScoredImages | None) -> None:  # fmt: skip
        """Show a report (the gallery follows entry by entry) and calibrate on its scores."""
        self.meta, self.how = meta, how
        self.data_dir = images.data_dir if images is not None else meta.dataset.get("root")
        self.report_view.set_report(report, title=f"{title} (scored in {precision})")
        labels, scores = scores_arrays(report)
        self.calibration.set_data(labels, scores, threshold=meta.threshold, images=images, source=how,
                                  one_class=meta.method == "padim")  # fmt: skip
        self._update_warning()
        self.setCurrentWidget(self.report_view)

    def set_images(self, images: ScoredImages | None) -> None:
        """The saved model file (and its images) a threshold is stored for."""
        self.calibration.set_images(images)
        if images is not None:
            self.data_dir = images.data_dir
            self._update_warning()

    def warning(self) -> str:
        return self.report_view.warning_text()

    def add_gallery_entry(self, entry: GalleryEntry) -> None:
        self.report_view.add_gallery_entry(entry)

    def busy(self) -> bool:
        return self._export.busy() or self.calibration.is_busy()

    def export_report(self, path: str) -> bool:
        """Write the report shown (HTML, or PDF for a .pdf path) in a worker; report_exported follows."""
        report = self.report_view.report
        if report is None or self._export.busy():
            return False
        self._export.start(
            export_report, path, report, self.meta, self.report_view.gallery.entries(), self.how,
            self.report_view.box_recall_threshold(), data_dir=self.data_dir, on_event=self.report_exported.emit,
            on_failed=self.export_failed.emit,
        )  # fmt: skip
        return True

    def ask_and_export(self, default: Path) -> None:
        path = ask_report_path(self, default)
        if path:
            self.export_report(path)

    def shutdown(self) -> None:
        self._export.stop()
        self.calibration.shutdown()

    def _on_calibration_stored(self, done: CalibrationDone) -> None:
        """The model file has a new threshold and calibration record: the report and its export are judged at it."""
        cal = done.calibration
        if self.meta is not None:
            record = calibration_record(cal, table=done.table, source=done.how, data=self.data_dir or "")
            self.meta = replace(self.meta, threshold=cal.threshold, calibration={**record, "precision": done.precision})
            self.report_view.apply_thresholds(self.meta.thresholds)
            self._update_warning()
        self.threshold_stored.emit(done.model_path, cal.threshold)

    def stored_summary(self, path: str, threshold: float) -> str:
        """What the report shows at a threshold just stored, for the tab's status line (which must not keep the old figures)."""
        r = self.report_view.report
        at = f"Threshold {format_threshold(threshold)} stored in {Path(path).name}."
        if r is None:
            return at
        return (f"{at} At it the report shows accuracy {fmt_pct(r.accuracy)}, balanced {fmt_pct(r.balanced_accuracy)}, "
                f"missed {r.fn}, false rejects {r.fp}.")  # fmt: skip

    def _update_warning(self) -> None:
        report = self.report_view.report
        self.report_view.set_warning("" if report is None else calibration_overlap(self.meta, self.data_dir, report.threshold))
