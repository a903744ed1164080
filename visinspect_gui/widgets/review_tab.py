"""The Review tab: a view of the review job (engine.jobs.review): a whole folder inspected, sortable and filterable,
any file shown with its heatmap, CSV and annotated exports. All file work runs in workers."""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
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
from engine.types import JobOutcome, Verdict
from visinspect_gui.widgets.common import elide_middle, glyph_icon
from visinspect_gui.widgets.file_preview import FilePreview
from visinspect_gui.widgets.review_model import ReviewFilter, ReviewModel
from visinspect_gui.workers import Worker


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
        self.opacity, self.colormap, self.heatmap_on = 0.45, cv2.COLORMAP_JET, True
        self._batch: Worker | None = None
        self._saver: Worker | None = None
        self._t0 = self._t_listed = 0.0
        self._resumed = 0
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
        self.recursive_box = QCheckBox("Include sub-folders")
        self.recursive_box.setChecked(True)
        self.resume_box = QCheckBox("Resume")
        self.resume_box.setChecked(True)
        self.resume_box.setToolTip(
            "Files this model already reviewed in this folder (and that have not changed since) are shown from the\n"
            "results log, judged at the threshold in force, instead of being inspected again; files that could not be\n"
            "read stay errors unless 'Retry errors' is ticked."
        )
        self.retry_box = QCheckBox("Retry errors")
        self.run_button = QPushButton("Inspect folder")
        self.run_button.setIcon(glyph_icon("play"))
        self.run_button.setObjectName("StartButton")
        self.run_button.clicked.connect(lambda: self.start())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        for w in (self.folder_button, self.folder_label):
            bar.addWidget(w, 1 if w is self.folder_label else 0)
        for w in (self.recursive_box, self.resume_box, self.retry_box, self.run_button, self.cancel_button):
            bar.addWidget(w)
        layout.addLayout(bar)

        progress = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(8)
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("ProgressLabel")
        self.progress_label.setMinimumWidth(300)
        progress.addWidget(self.progress, 1)
        progress.addWidget(self.progress_label)
        layout.addLayout(progress)

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
        filters.addWidget(self.filter_edit, 1)
        filters.addWidget(self.verdict_combo)
        left_layout.addLayout(filters)

        self.model = ReviewModel(self)
        self.proxy = ReviewFilter(self)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setObjectName("ReviewTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col, width in ((1, 90), (2, 100), (3, 60)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Fixed)
            header.resizeSection(col, width)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(4, 160)
        self.table.selectionModel().currentRowChanged.connect(self._on_row_selected)
        left_layout.addWidget(self.table, 1)
        self.filter_edit.textChanged.connect(lambda t: self.proxy.set_filter(text=t))
        self.verdict_combo.currentIndexChanged.connect(lambda _i: self.proxy.set_filter(verdict=self.verdict_combo.currentData()))

        actions = QHBoxLayout()
        actions.addWidget(self.summary, 1)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("Save the rows shown (filters apply), judged at the threshold in force, as a CSV file")
        self.export_button.clicked.connect(self._on_export_clicked)
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
        """The model reviews and re-inspections use."""
        self.inspector = inspector
        self._update_buttons()

    def set_overlay(self, *, heatmap_on: bool, opacity: float, colormap: int) -> None:
        """How the heatmap is drawn in the viewer and in annotated exports."""
        self.heatmap_on, self.opacity, self.colormap = heatmap_on, opacity, colormap
        self.viewer.set_overlay(heatmap_on=heatmap_on, opacity=opacity, colormap=colormap)

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
        self.model.clear(root=str(Path(os.path.abspath(self.folder))) + os.sep)
        self.model.decision = self.review_decision = self.inspector.threshold
        self.preview.clear()
        self.progress.setRange(0, 0)
        self.progress_label.setText("Listing images…")
        self._t0 = self._t_listed = time.monotonic()
        self._resumed = 0
        self._batch = Worker(
            review_job, [self.folder], self.inspector, results=self.results, source=f"review {self.folder}",
            resume=self.resume_box.isChecked(), retry_errors=self.retry_box.isChecked(),
            recursive=self.recursive_box.isChecked(), save_frames=True,
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

    def export_csv(self, path: str | os.PathLike) -> int:
        """Write the rows shown, in the order shown, judged now, to a CSV file in a worker; csv_exported follows."""
        rows = self.proxy.shown_rows()
        worker = Worker(export_rows_job, str(path), rows, self.run_id or "")
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
                             colormap=self.colormap)  # fmt: skip
        self._saver.event_ready.connect(self._on_annotated)
        self._saver.failed.connect(self.failed)
        self._saver.finished.connect(self._on_save_finished)
        self.progress.setRange(0, len(paths))
        self.progress.setValue(0)
        self.progress_label.setText(f"Saving annotated images to {elide_middle(out_dir, 40)}…")
        self._saver.start()
        self._update_buttons()
        return True

    def rejudge(self, threshold: float) -> None:
        """Show every verdict as it is at threshold (the slider moved), without inspecting again."""
        self.model.set_decision(threshold)
        if self.inspector is not None:
            self.preview.judge_at(self.inspector.thresholds.with_decision(threshold))
        if not self.model.rows:
            return
        self.proxy.set_filter()  # a verdict filter may now show other rows
        self._update_summary()
        if self.review_decision is not None:
            base = self.review_decision
            as_reviewed = Thresholds(decision=base)
            changed = sum(r.p_anomaly is not None and as_reviewed.verdict(r.p_anomaly) is not r.verdict for r in self.model.rows)
            self.progress_label.setText(
                f"Judged at threshold {threshold:.4f}: {changed:,} verdict(s) differ from the review at {base:.4f}"
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
            self.progress.setRange(0, max(1, event.total))
            self.progress.setValue(event.resumed)
            self._resumed = event.resumed
            self._t_listed = time.monotonic()
            if event.resumed:
                again = f"; {event.rejudged:,} judged again at threshold {event.thresholds.decision:.4f}" if event.rejudged else ""
                self.progress_label.setText(f"Resuming: {event.resumed:,} of {event.total:,} files were already reviewed{again}")
            else:
                self.progress_label.setText(f"0 / {event.total:,}")
        elif isinstance(event, ReviewChunk):
            self.model.add_rows(event.rows)
            self.progress.setValue(event.done)
            inspected = event.done - self._resumed
            elapsed = time.monotonic() - self._t_listed
            if inspected > 0 and elapsed > 0:
                rate = inspected / elapsed
                left = (event.total - event.done) / rate if rate > 0 else 0.0
                eta = f" · ETA {int(left // 60)}:{int(left % 60):02d}" if event.done < event.total else ""
                self.progress_label.setText(f"{event.done:,} / {event.total:,} · {rate:.1f} images/s{eta}")
            self._update_summary()
        elif isinstance(event, LogTrouble):
            self.failed.emit(f"Results are not being saved: {event.message}")
        elif isinstance(event, ReviewDone):
            earlier = f" ({event.reused:,} from the earlier run)" if event.reused else ""
            self.progress_label.setText(f"Done: {len(self.model.rows):,} files in {time.monotonic() - self._t0:.1f} s{earlier}")

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
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        if worker.outcome is JobOutcome.DONE:
            self.progress.setValue(self.progress.maximum())
        elif worker.outcome is JobOutcome.CANCELLED:
            self.progress_label.setText(f"Cancelled after {len(self.model.rows):,} files")
        self._update_summary()
        self._update_buttons()
        self.review_finished.emit(worker.outcome.value)

    def _on_csv_written(self, done: RowsExported) -> None:
        total = len(self.model.rows)
        shown = "" if done.rows == total else f" of {total:,} (filters applied)"
        self.progress_label.setText(f"Exported {done.rows:,} rows{shown} to {elide_middle(done.path, 40)}")
        self.csv_exported.emit(done.rows, done.path)

    def _on_annotated(self, event: Annotated) -> None:
        self.progress.setValue(event.done)
        self.progress_label.setText(f"Saved {event.done} / {event.total} annotated images")

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

    def _update_summary(self) -> None:
        """Counts per verdict under the table."""
        c = self.model.counts()
        total = sum(c.values())
        self.summary.setText(
            f"{total:,} files  ·  {c[Verdict.GOOD]:,} good  ·  {c[Verdict.ANOMALY]:,} anomaly  ·  {c[Verdict.ERROR]:,} error"
        )

    def _update_buttons(self) -> None:
        """Enable only what makes sense now (no second review while one runs)."""
        busy = self._batch is not None
        self.run_button.setEnabled(not busy and bool(self.folder) and self.inspector is not None)
        self.cancel_button.setEnabled(busy or self._saver is not None)
        for w in (self.folder_button, self.resume_box, self.retry_box, self.recursive_box):
            w.setEnabled(not busy)
        has_rows = bool(self.model.rows)
        self.export_button.setEnabled(has_rows and not busy)
        self.save_button.setEnabled(has_rows and not busy and self._saver is None)

    def _on_choose_folder_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder to review", self.folder or str(Path.home()))
        if folder:
            self.set_folder(folder)

    def _on_export_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export review as CSV", str(Path.home() / "review.csv"), "CSV files (*.csv)")
        if path:
            self.export_csv(path)

    def _on_save_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for annotated images", str(Path.home()))
        if folder:
            self.save_annotated(folder)
