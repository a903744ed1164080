"""The Review tab: a view of the review job (engine.jobs.review): a whole folder inspected, sortable and filterable,
any file shown with its heatmap, CSV and annotated exports. All file work runs in workers."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from engine.jobs.review import (
    Annotated,
    LogTrouble,
    ReviewChunk,
    ReviewDone,
    ReviewRow,
    ReviewStarted,
    RowsExported,
    annotate_job,
    export_rows_job,
    review_job,
)
from engine.results import ResultsLog
from engine.thresholds import Thresholds
from engine.types import HeatScale, Verdict
from visinspect_gui.widgets.common import elide_middle, glyph_icon
from visinspect_gui.widgets.file_preview import FilePreview
from visinspect_gui.widgets.review_actions import ExportButton, ExportScope, ModelNotice
from visinspect_gui.widgets.review_model import ReviewFilter, ReviewModel, model_name
from visinspect_gui.widgets.review_progress import ReviewProgress
from visinspect_gui.widgets.review_summary import other_models_text, saved_text, selection_text, summary_text
from visinspect_gui.widgets.review_widgets import option_boxes, review_table
from visinspect_gui.workers import Worker

log = logging.getLogger(__name__)
SHOW_EVERY_MS = 250  # how often rows arriving are put into the table (each update repaints it, on the inference's CPU)


class ReviewTab(QWidget):
    """Batch review of a folder; the table fills as results arrive and follows the threshold slider."""

    review_finished = Signal(str)  # a JobOutcome value: "done", "cancelled" or "failed"
    csv_exported = Signal(int, str)  # rows written, path
    failed = Signal(str)

    def __init__(self, results: ResultsLog | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.results = results
        self.inspector = None
        self.folder: str | None = None
        self.run_id: str | None = None
        self.review_decision: float | None = None  # the threshold the review ran at
        self.opacity, self.colormap, self.heatmap_on, self.heat_scale = 0.45, cv2.COLORMAP_JET, True, HeatScale.ABSOLUTE
        self._batch: Worker | None = None
        self._saver: Worker | None = None
        self._reviewed: tuple[str, bool] | None = None  # the folder the table holds and whether sub-folders were in
        self._saved = ""  # what the last run wrote besides the table
        self._arrived: list[ReviewChunk] = []  # chunks not shown yet: the table takes them a few times a second
        self._show_timer = QTimer(self, singleShot=True, interval=SHOW_EVERY_MS)
        self._show_timer.timeout.connect(self._show_arrived)
        self._build()
        self._update_buttons()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        bar = QHBoxLayout()
        self.folder_button = QPushButton("Choose folder…")
        self.folder_button.clicked.connect(self._on_choose_folder_clicked)
        self.folder_label = QLabel("No folder chosen")
        self.folder_label.setObjectName("FolderLabel")
        self.folder_label.setMinimumWidth(80)  # the path is elided; its tooltip holds the whole of it
        self.recursive_box, self.resume_box, self.retry_box, self.frames_box = option_boxes()
        self.run_button = QPushButton("Inspect folder")
        self.run_button.setIcon(glyph_icon("play"))
        self.run_button.setObjectName("StartButton")
        self.run_button.clicked.connect(lambda: self.start())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        for w in (self.folder_button, self.folder_label, self.run_button, self.cancel_button):
            bar.addWidget(w, 1 if w is self.folder_label else 0)
        options = QHBoxLayout()  # a row of its own: beside the buttons they made the tab wider than a 1280 px screen
        for w in (self.recursive_box, self.resume_box, self.retry_box, self.frames_box):
            options.addWidget(w)
        options.addStretch(1)
        layout.addLayout(bar)
        layout.addLayout(options)

        self.progress_view = ReviewProgress()
        self.progress, self.progress_label = self.progress_view.bar, self.progress_view.label
        layout.addWidget(self.progress_view)
        self.model_notice = ModelNotice()
        self.model_notice.reinspect.connect(self.reinspect)
        layout.addWidget(self.model_notice)

        split = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        filters = QHBoxLayout()
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by file name…")
        self.filter_edit.setClearButtonEnabled(True)
        self.verdict_combo = QComboBox()
        self.verdict_combo.addItem("All verdicts", None)
        for verdict in Verdict:
            self.verdict_combo.addItem(verdict.value, verdict)
        self.summary = QLabel("")
        self.summary.setObjectName("Summary")
        self.summary.setWordWrap(True)
        filters.addWidget(self.filter_edit, 1)
        filters.addWidget(self.verdict_combo)
        left_layout.addLayout(filters)

        self.model = ReviewModel(self)
        self.proxy = ReviewFilter(self)
        self.proxy.setSourceModel(self.model)
        self.table = review_table(self.proxy)
        self.table.selectionModel().currentRowChanged.connect(self._on_row_selected)
        left_layout.addWidget(self.table, 1)
        self.filter_edit.textChanged.connect(lambda t: self._filter(text=t))
        self.verdict_combo.currentIndexChanged.connect(lambda _i: self._filter(verdict=self.verdict_combo.currentData()))

        actions = QHBoxLayout()
        actions.addWidget(self.summary, 1)
        self.export_button = ExportButton()
        self.export_button.chosen.connect(self._on_export_chosen)
        self.save_button = QPushButton("Save annotated anomalies…")
        self.save_button.setToolTip("Write every ANOMALY image with its heatmap and boxes drawn in to a folder")
        self.save_button.clicked.connect(self._on_save_clicked)
        actions.addWidget(self.export_button)
        actions.addWidget(self.save_button)
        left_layout.addLayout(actions)
        split.addWidget(left)

        self.preview = FilePreview()
        self.viewer, self.detail = self.preview.viewer, self.preview.detail
        split.addWidget(self.preview)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([700, 520])
        layout.addWidget(split, 1)

    # -- public --------------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        """True while a folder is being reviewed."""
        return self._batch is not None

    def set_inspector(self, inspector) -> None:
        """The model reviews and re-inspections use; rows another model gave are marked and not re-judged."""
        self.inspector = inspector
        self.model.set_current(None if inspector is None else inspector.ref)
        self._update_model_notice()
        self._update_buttons()

    def set_overlay(self, *, heatmap_on: bool, opacity: float, colormap: int, heat_scale: HeatScale = HeatScale.ABSOLUTE) -> None:
        """How the heatmap is drawn in the viewer and in annotated exports."""
        self.heatmap_on, self.opacity, self.colormap, self.heat_scale = heatmap_on, opacity, colormap, heat_scale
        self.viewer.set_overlay(heatmap_on=heatmap_on, opacity=opacity, colormap=colormap, heat_scale=heat_scale)

    def set_folder(self, folder: str) -> None:
        """The folder the next review inspects."""
        self.folder = folder
        self.folder_label.setText(elide_middle(folder, 80))
        self.folder_label.setToolTip(folder)
        self._update_buttons()

    def start(self, folder: str | None = None) -> bool:
        """Review folder (or the chosen one); False with failed when there is no model or folder."""
        if folder is not None:
            self.set_folder(folder)
        if self.inspector is None:
            self.failed.emit("No model is loaded: choose a model in the Model panel first.")
            return False
        if not self.folder or self._batch is not None:
            return False
        self._arrived = []
        self.model.clear(root=str(Path(os.path.abspath(self.folder))) + os.sep)
        self.model.decision = self.review_decision = self.inspector.threshold
        self.model.set_current(self.inspector.ref)
        self._reviewed = (self.folder, self.recursive_box.isChecked())
        self._saved = ""
        self.model_notice.say("")
        self.preview.clear()
        self.progress_view.listing()
        self._batch = Worker(
            review_job, [self.folder], self.inspector, results=self.results, source=f"review {self.folder}",
            resume=self.resume_box.isChecked(), retry_errors=self.retry_box.isChecked(),
            recursive=self.recursive_box.isChecked(), save_frames=self.frames_box.isChecked(),
        )  # fmt: skip
        self._batch.event_ready.connect(self._on_batch_event)
        self._batch.failed.connect(self._on_batch_failed)
        self._batch.finished.connect(self._on_batch_finished)
        self._batch.start()
        self._update_buttons()
        return True

    def cancel(self) -> None:
        """Stop the review or the annotated export; the rows so far stay."""
        for w in (self._batch, self._saver):
            if w is not None:
                w.stop()

    def reinspect(self) -> bool:
        """Review the table's folder again with the loaded model: rows another model gave are inspected anew."""
        if self._reviewed is None or self._batch is not None:
            return False
        folder, recursive = self._reviewed
        self.recursive_box.setChecked(recursive)
        return self.start(folder)

    def export_csv(self, path: str | os.PathLike, scope: ExportScope = ExportScope.ALL) -> int:
        """Write every row in folder order, or only those shown in the order shown, judged now, to a CSV file in a
        worker (each row says which rows the file holds); csv_exported follows. Returns how many rows."""
        filters = self.proxy.describe() if scope is ExportScope.SHOWN else ""
        rows = self.proxy.shown_rows() if filters else self.model.in_folder_order()
        selection = selection_text(len(rows), len(self.model.rows), filters)
        worker = Worker(export_rows_job, str(path), rows, self.run_id or "", selection=selection)
        worker.event_ready.connect(self._on_csv_written)
        worker.failed.connect(self.failed)
        worker.start()
        return len(rows)

    def save_annotated(self, out_dir: str) -> bool:
        """Write annotated copies of every ANOMALY row (at the threshold in force) to out_dir; False when nothing to do."""
        paths = [r.path for r in self.model.rows if r.verdict is Verdict.ANOMALY]
        if not paths or self.inspector is None or self._saver is not None:
            return False
        self._saver = Worker(annotate_job, paths, self.inspector, out_dir, root=self.model.root, opacity=self.opacity,
                             colormap=self.colormap, heat_scale=self.heat_scale)  # fmt: skip
        self._saver.event_ready.connect(self._on_annotated)
        self._saver.failed.connect(self.failed)
        self._saver.finished.connect(self._on_save_finished)
        self.progress_view.counting(0, len(paths), f"Saving annotated images to {elide_middle(out_dir, 40)}…")
        self._saver.start()
        self._update_buttons()
        return True

    def rejudge(self, threshold: float) -> None:
        """Show the loaded model's verdicts as they are at threshold (the slider moved), without inspecting again;
        rows another model gave stay as they were, and the notice offers to re-inspect them."""
        left = self.model.set_decision(threshold)
        if self.inspector is not None:
            self.preview.judge_at(self.inspector.thresholds.with_decision(threshold))
        if not self.model.rows:
            return
        if self.proxy.verdict is not None:
            self.proxy.set_filter()  # the verdict filter may now show other rows
        self._update_summary()
        self._update_model_notice()
        if left == len(self.model.rows):
            self.progress_label.setText(f"Not judged at threshold {threshold:.4f}: every row is another model's")
        elif self.review_decision is not None:
            base = self.review_decision
            as_reviewed = Thresholds(decision=base)
            changed = sum(r.p_anomaly is not None and as_reviewed.verdict(r.p_anomaly) is not r.verdict
                          for r in self.model.rows if self.model.is_current(r))  # fmt: skip
            others = f"; {left:,} row(s) of another model left as they were" if left else ""
            self.progress_label.setText(
                f"Judged at threshold {threshold:.4f}: {changed:,} verdict(s) differ from the review at {base:.4f}{others}"
            )

    def shutdown(self) -> None:
        """Stop this tab's workers (window close; the window waits for every worker)."""
        self.cancel()
        self.preview.stop()

    # -- batch events --------------------------------------------------------------------------

    def _on_batch_event(self, event) -> None:
        """Add the new rows and update progress, speed and ETA."""
        if self.sender() is not self._batch:
            return
        if isinstance(event, ReviewStarted):
            self.run_id = event.run_id
            log.info("review %s of %s: %d files, %d done before (resumed)", event.run_id, self.folder, event.total, event.resumed)
            self.progress_view.started(event)
        elif isinstance(event, ReviewChunk):
            self._arrived.append(event)
            if not self._show_timer.isActive():
                self._show_timer.start()
        elif isinstance(event, LogTrouble):
            self.failed.emit(f"Results are not being saved: {event.message}")
        elif isinstance(event, ReviewDone):
            log.info("review %s done in %.1f s: %d inspected, %d reused, %s", self.run_id, event.seconds, event.inspected, event.reused, {v.value: n for v, n in event.counts.items()})  # fmt: skip
            self._show_arrived()
            self.progress_view.done(event, len(self.model.rows))
            self._saved = saved_text(event, self.frames_box.isChecked(), self.results is not None)

    def _show_arrived(self) -> None:
        """Put the rows that arrived since the last update into the table in one go, with progress and summary."""
        self._show_timer.stop()
        if not self._arrived:
            return
        chunks, self._arrived = self._arrived, []
        self.model.add_rows([row for chunk in chunks for row in chunk.rows])
        self.progress_view.chunk(chunks[-1])
        self._update_summary()

    def _on_batch_failed(self, message: str) -> None:
        """The review stopped on an error (e.g. the folder vanished): say so."""
        if self.sender() is self._batch:
            self.progress_label.setText(message)
            self.failed.emit(message)

    def _on_batch_finished(self) -> None:
        """Say how the review ended and re-enable the controls."""
        worker = self.sender()
        if worker is not self._batch:
            return
        self._batch = None
        self._show_arrived()
        self.progress_view.finished(worker.outcome, len(self.model.rows))
        self._update_summary()
        self._update_model_notice()
        self._update_buttons()
        self.review_finished.emit(worker.outcome.value)

    def _on_csv_written(self, done: RowsExported) -> None:
        self.progress_label.setText(f"Exported {done.selection} to {elide_middle(done.path, 40)}")
        self.csv_exported.emit(done.rows, done.path)

    def _on_annotated(self, event: Annotated) -> None:
        self.progress_view.counting(event.done, event.total, f"Saved {event.done} / {event.total} annotated images")

    def _on_save_finished(self) -> None:
        self._saver = None
        self._update_buttons()

    # -- showing one file ----------------------------------------------------------------------

    def _on_row_selected(self, current: QModelIndex, _previous: QModelIndex) -> None:
        """Show the file of the row the operator selected."""
        if current.isValid():
            self.show_row(self.model.rows[self.proxy.mapToSource(current).row()])

    def show_row(self, row: ReviewRow) -> None:
        """Show one file with heatmap and boxes (inspected again in a worker), or its error."""
        self.preview.show_row(row, self.inspector)

    # -- helpers -------------------------------------------------------------------------------

    def _filter(self, **change) -> None:
        """Apply a filter change and say what is shown."""
        self.proxy.set_filter(**change)
        self._update_summary()

    def _update_summary(self) -> None:
        """Under the table: the totals, how many rows a filter shows, what the run saved; the export menu's counts."""
        counts, shown, filters = self.model.counts(), self.proxy.rowCount(), self.proxy.describe()
        self.summary.setText(summary_text(counts, shown, filters, self._saved))
        self.export_button.set_counts(len(self.model.rows), shown, filters)

    def _update_model_notice(self) -> None:
        """Say when rows were judged by another model than the loaded one, offering to re-inspect them."""
        others = self.model.other_model_rows() if self.inspector is not None else []
        if not others:
            self.model_notice.say("")
            return
        names = sorted({model_name(r.model) for r in others})
        self.model_notice.say(other_models_text(len(others), len(self.model.rows), names, model_name(self.inspector.ref)))
        self.model_notice.button.setEnabled(self._batch is None and self._reviewed is not None)

    def _update_buttons(self) -> None:
        """Enable only what makes sense now (no second review while one runs)."""
        busy = self._batch is not None
        self.run_button.setEnabled(not busy and bool(self.folder) and self.inspector is not None)
        self.cancel_button.setEnabled(busy or self._saver is not None)
        for w in (self.folder_button, self.resume_box, self.retry_box, self.recursive_box, self.frames_box):
            w.setEnabled(not busy)
        has_rows = bool(self.model.rows)
        self.export_button.setEnabled(has_rows and not busy)
        self.save_button.setEnabled(has_rows and not busy and self._saver is None)

    def _on_choose_folder_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder to review", self.folder or str(Path.home()))
        if folder:
            self.set_folder(folder)

    def _on_export_chosen(self, scope: ExportScope) -> None:
        title = "Export all rows as CSV" if scope is ExportScope.ALL else "Export the rows shown as CSV"
        path, _ = QFileDialog.getSaveFileName(self, title, str(Path.home() / "review.csv"), "CSV files (*.csv)")
        if path:
            self.export_csv(path, scope)

    def _on_save_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for annotated images", str(Path.home()))
        if folder:
            self.save_annotated(folder)
