"""The History tab: past results from the results log, filtered by verdict, dates and source, exportable as CSV."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path

from PySide6.QtCore import QDate, QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from engine.results import ResultFilter, ResultRow, ResultsLog, export_csv
from engine.results.frames import LoggedFrame, logged_frame
from engine.types import Verdict
from visinspect_gui.widgets.common import ListTableModel, hint
from visinspect_gui.widgets.review_model import VERDICT_COLOURS
from visinspect_gui.widgets.viewer import ImageViewer
from visinspect_gui.workers import Latest, call, start_worker

COLUMNS = ("Time", "Verdict", "p(anomaly)", "Boxes", "Source", "Item", "Error")
QUERY_LIMIT = 5000


def query_log(results: ResultsLog, where: ResultFilter) -> tuple[list[ResultRow], int]:
    """(rows newest first, total matching) from the results log."""
    rows = results.query(where, limit=QUERY_LIMIT)
    return rows, results.count(where) if len(rows) >= QUERY_LIMIT else len(rows)


class HistoryModel(ListTableModel):
    """Rows of the results log, as queried."""

    columns = COLUMNS
    rows: list[ResultRow]

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row, col = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                datetime.fromtimestamp(row.time).strftime("%Y-%m-%d %H:%M:%S"),
                row.verdict.value,
                "" if row.p_anomaly is None else f"{row.p_anomaly:.4f}",
                "" if row.verdict is Verdict.ERROR else str(len(row.boxes)),
                row.source,
                Path(row.item).name if ("/" in row.item or "\\" in row.item) else row.item,
                row.error or "",
            )[col]
        if role == Qt.ItemDataRole.ForegroundRole and col == 1:
            return VERDICT_COLOURS.get(row.verdict)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{row.item}\nrun {row.run_id}\nmodel {row.model_path or '–'}" + (f"\n{row.error}" if row.error else "")
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (2, 3):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def set_rows(self, rows: list[ResultRow]) -> None:
        """Replace the rows shown."""
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()


class HistoryTab(QWidget):
    """Queries run in a worker; the newest QUERY_LIMIT matching rows are listed."""

    failed = Signal(str)
    loaded = Signal(int)  # rows listed
    exported = Signal(int, str)  # rows written, CSV path

    def __init__(self, results: ResultsLog, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.results = results
        self.inspector = None
        self._query = Latest()
        self._frame = Latest()
        self._frame_row: ResultRow | None = None
        self.total = 0

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        bar = QHBoxLayout()
        self.verdict_combo = QComboBox()
        self.verdict_combo.addItem("All verdicts", None)
        for verdict in Verdict:
            self.verdict_combo.addItem(verdict.value, verdict)
        self.use_dates = QCheckBox("From")
        self.since_edit = QDateEdit(QDate.currentDate().addDays(-7))
        self.until_edit = QDateEdit(QDate.currentDate())
        for edit in (self.since_edit, self.until_edit):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setEnabled(False)
        self.use_dates.toggled.connect(self.since_edit.setEnabled)
        self.use_dates.toggled.connect(self.until_edit.setEnabled)
        self.source_edit = QLineEdit()
        self.source_edit.setPlaceholderText("Source contains…")
        self.source_edit.setClearButtonEnabled(True)
        self.source_edit.returnPressed.connect(self.refresh)
        self.refresh_button = QPushButton("⟳  Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("Save every result matching the filters as a CSV file")
        self.export_button.clicked.connect(self._on_export_clicked)
        bar.addWidget(self.verdict_combo)
        bar.addWidget(self.use_dates)
        bar.addWidget(self.since_edit)
        bar.addWidget(QLabel("to"))
        bar.addWidget(self.until_edit)
        bar.addWidget(self.source_edit, 1)
        bar.addWidget(self.refresh_button)
        bar.addWidget(self.export_button)
        layout.addLayout(bar)
        self.verdict_combo.currentIndexChanged.connect(lambda _i: self.refresh())
        self.use_dates.toggled.connect(lambda _on: self.refresh())
        self.since_edit.dateChanged.connect(lambda _d: self.refresh())
        self.until_edit.dateChanged.connect(lambda _d: self.refresh())

        split = QSplitter(Qt.Orientation.Horizontal)
        self.model = HistoryModel(self)
        self.table = QTableView()
        self.table.setObjectName("HistoryTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        header = self.table.horizontalHeader()
        for col, width in ((0, 150), (1, 86), (2, 96), (3, 60), (5, 120), (6, 140)):
            header.resizeSection(col, width)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(50)
        self.table.selectionModel().currentRowChanged.connect(self._on_row_selected)
        split.addWidget(self.table)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        self.viewer = ImageViewer(placeholder="Anomaly frames saved with their result appear here.")
        self.detail = hint("")
        right_layout.addWidget(self.viewer, 1)
        right_layout.addWidget(self.detail)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([760, 480])
        layout.addWidget(split, 1)
        self.summary = QLabel("")
        self.summary.setObjectName("Summary")
        layout.addWidget(self.summary)

    def filters(self) -> ResultFilter:
        """The query filter the controls describe (dates: whole days, until inclusive)."""
        since = until = None
        if self.use_dates.isChecked():
            since = datetime.combine(self.since_edit.date().toPython(), time.min)
            until = datetime.combine(self.until_edit.date().toPython(), time.min) + timedelta(days=1)
        return ResultFilter(self.verdict_combo.currentData(), since, until, self.source_edit.text().strip() or None)

    def set_inspector(self, inspector) -> None:
        """The loaded model, used to recompute heatmaps of the frames it judged."""
        self.inspector = inspector

    def refresh(self) -> None:
        """Query the log again with the current filters (in a worker)."""
        self.summary.setText("Loading…")
        self._query.start(call, query_log, self.results, self.filters(), on_event=self._on_rows, on_failed=self.failed.emit)

    def export_csv(self, path: str) -> None:
        """Write every matching result (not only those listed) to CSV in a worker; exported follows."""
        self.summary.setText("Exporting…")
        start_worker(call, export_csv, self.results, str(path), self.filters(),
                     on_event=lambda n, p=str(path): self._on_exported(n, p), on_failed=self.failed.emit)  # fmt: skip

    def _on_exported(self, count: int, path: str) -> None:
        """Say where the CSV went and announce it."""
        self.summary.setText(f"Exported {count:,} result(s) to {path}")
        self.exported.emit(count, path)

    def shutdown(self) -> None:
        """Stop this tab's workers (window close)."""
        self._query.stop()
        self._frame.stop()

    def _on_rows(self, payload) -> None:
        """Show the newest query's rows (an older query's answer is ignored)."""
        rows, total = payload
        self.total = total
        self.model.set_rows(rows)
        shown = f"newest {len(rows):,} of {total:,}" if total > len(rows) else f"{total:,}"
        self.summary.setText(f"{shown} result(s) in {self.results.path}")
        self.loaded.emit(len(rows))

    def _on_row_selected(self, current: QModelIndex, _previous: QModelIndex) -> None:
        """Show the row's details and, for anomalies, load its saved frame in a worker."""
        if not current.isValid():
            return
        row = self.model.rows[current.row()]
        self.detail.setText(
            f"{row.time_iso}  ·  {row.verdict.value}"
            + (f"  ·  p(anomaly) {row.p_anomaly:.4f}" if row.p_anomaly is not None else "")
            + f"\n{row.item}" + (f"\n{row.error}" if row.error else "")
        )
        if not row.frame_path:
            self._frame.stop()
            self._frame_row = None
            self.viewer.clear()
            self.viewer.set_placeholder("No frame was saved for this result (frames are kept for anomalies).")
            return
        self._frame_row = row
        self._frame.start(call, logged_frame, row, self.inspector, on_event=self._on_frame, on_failed=self._on_frame_failed)

    def _on_frame(self, frame: LoggedFrame) -> None:
        """Show the saved frame with the boxes that were logged for it (and its heatmap when it could be recomputed)."""
        image, inspection = frame.image, frame.inspection
        if inspection is not None:
            self.viewer.show_image(image, inspection)
            self.detail.setText(self.detail.text() + "\nheatmap recomputed from the saved frame by the model that judged it")
        else:
            self.viewer.show_image(image)
            self.viewer.set_boxes(self._frame_row.boxes)
            if self.inspector is not None:
                self.detail.setText(self.detail.text() + "\nno heatmap: judged by another model than the one loaded")

    def _on_frame_failed(self, message: str) -> None:
        """The saved frame could not be read: say so in the viewer."""
        self.viewer.clear()
        self.viewer.set_placeholder(message)

    def _on_export_clicked(self) -> None:
        """Ask where to write the CSV, then export in a worker."""
        path, _ = QFileDialog.getSaveFileName(self, "Export results as CSV", "results.csv", "CSV files (*.csv)")
        if path:
            self.export_csv(path)
