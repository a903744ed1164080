"""The History tab: the whole results log, loaded a page at a time as it scrolls, sorted and filtered by the
database (verdict, date and time, exact source, run), exportable as CSV; and the audit trail of changes."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QStyle,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.results import ResultFilter, ResultRow, ResultsLog, SortKey, export_csv
from engine.results.frames import LoggedFrame, logged_frame
from visinspect_gui.widgets.audit_view import ChangesView
from visinspect_gui.widgets.common import hint, table_font_metrics
from visinspect_gui.widgets.history_filters import HistoryFilters
from visinspect_gui.widgets.history_model import COLUMNS, SORT_KEYS, ResultsModel
from visinspect_gui.widgets.viewer import ImageViewer
from visinspect_gui.workers import Latest, call, start_worker

_WAYS = {  # how the summary says the order: (descending, ascending)
    SortKey.TIME: ("newest first", "oldest first"),
    SortKey.P_ANOMALY: ("highest first", "lowest first"),
}


def _size_columns(table: QTableView) -> None:
    """Time, Verdict and p as wide as their header (bold, with its sort arrow) or their widest value, Source and Error
    narrow (elided in the middle, in full as tooltips), Item the rest: no horizontal scroll bar at ~650 px."""
    header = table.horizontalHeader()
    fm, label_fm = table_font_metrics(table)
    arrow = table.style().pixelMetric(QStyle.PixelMetric.PM_HeaderMarkSize)
    narrowest = label_fm.horizontalAdvance("Source") + 2 * 8 + arrow  # the style sheet pads 8 px either side
    widest = {0: "11-30 23:59:59", 1: "ANOMALY · 00", 2: "0.0000", 3: "review · line_b", 5: ""}
    for col, sample in widest.items():
        label = label_fm.horizontalAdvance(COLUMNS[col]) + 2 * 8 + 4 + arrow
        header.resizeSection(col, max(label, narrowest, fm.horizontalAdvance(sample) + 14))
    header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
    header.setMinimumSectionSize(narrowest)


class HistoryTab(QWidget):
    """Results (queries, sorting and paging in workers) and Changes, as two views of the results log."""

    failed = Signal(str)
    loaded = Signal(int)  # rows listed so far
    exported = Signal(int, str)  # rows written, CSV path

    def __init__(self, results: ResultsLog, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.results = results
        self.inspector = None
        self._frame = Latest()
        self._frame_row: ResultRow | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.views = QTabWidget()
        self.views.setDocumentMode(True)
        layout.addWidget(self.views)

        page = QWidget()
        page_layout = QVBoxLayout(page)
        page_layout.setContentsMargins(0, 6, 0, 0)
        page_layout.setSpacing(8)
        bar = QHBoxLayout()
        self.filter_bar = HistoryFilters(results)
        self.filter_bar.changed.connect(self._query)
        self.filter_bar.failed.connect(self.failed.emit)
        self.verdict_combo, self.use_dates = self.filter_bar.verdict_combo, self.filter_bar.use_dates
        self.since_edit, self.until_edit = self.filter_bar.since_edit, self.filter_bar.until_edit
        self.source_combo, self.run_combo = self.filter_bar.source_combo, self.filter_bar.run_combo
        self.refresh_button = QPushButton("⟳  Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("Save every result matching the filters as a CSV file, oldest first "
                                      "(all of them, not only the rows listed)")  # fmt: skip
        self.export_button.clicked.connect(self._on_export_clicked)
        buttons = QVBoxLayout()
        buttons.addWidget(self.refresh_button)
        buttons.addWidget(self.export_button)
        bar.addWidget(self.filter_bar, 1)
        bar.addLayout(buttons)
        page_layout.addLayout(bar)

        split = QSplitter(Qt.Orientation.Horizontal)
        self.model = ResultsModel(results, self)
        self.model.page_loaded.connect(self._on_rows)
        self.model.failed.connect(self._on_query_failed)
        self.table = QTableView()
        self.table.setObjectName("HistoryTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)  # long paths elide in the middle, keeping the file name
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.horizontalHeader().setSortIndicator(0, Qt.SortOrder.DescendingOrder)
        self.table.setSortingEnabled(True)  # the model sorts in SQL; the view only passes the clicks on
        _size_columns(self.table)
        self.table.selectionModel().currentRowChanged.connect(self._on_row_selected)
        self.tables = QStackedWidget()  # this station's table, and the plant's once set_plant() adds it
        self.tables.addWidget(self.table)
        self.plant_model = self.plant_table = None
        split.addWidget(self.tables)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        self.viewer = ImageViewer(placeholder="Anomaly frames saved with their result appear here.")
        self.detail = hint("")
        right_layout.addWidget(self.viewer, 1)
        right_layout.addWidget(self.detail)
        split.addWidget(right)
        split.setStretchFactor(0, 5)
        split.setStretchFactor(1, 2)
        split.setSizes([700, 200])
        page_layout.addWidget(split, 1)
        self.summary = QLabel("")
        self.summary.setObjectName("Summary")
        self.summary.setWordWrap(True)
        page_layout.addWidget(self.summary)
        self.views.addTab(page, "Results")

        self.changes = ChangesView(results)
        self.changes.model.failed.connect(self.failed.emit)
        self.views.addTab(self.changes, "Changes")
        self.views.setTabToolTip(1, "Every change of model, threshold, recipe or mode: when, who, old and new")

    def filters(self) -> ResultFilter:
        """The query filter the controls describe."""
        return self.filter_bar.filter()

    def set_plant(self, target) -> None:
        """Offer the plant's results from the central store (a CentralTarget) beside this station's."""
        from visinspect_gui.widgets.history_plant import PlantModel, plant_table

        self.plant_model = PlantModel(target, self)
        self.plant_model.page_loaded.connect(self._on_plant_rows)
        self.plant_model.failed.connect(self._on_plant_failed)
        self.plant_table = plant_table(self.plant_model)
        self.plant_table.selectionModel().currentRowChanged.connect(self._on_plant_row_selected)
        self.tables.addWidget(self.plant_table)
        self.filter_bar.set_plant(target)

    def set_inspector(self, inspector) -> None:
        """The loaded model, used to recompute heatmaps of the frames it judged."""
        self.inspector = inspector

    def refresh(self) -> None:
        """Query the log again with the current filters, and its sources, runs and changes (all in workers)."""
        self.filter_bar.reload_choices()
        self.changes.refresh()
        self._query()

    def _query(self) -> None:
        plant = self.filter_bar.is_plant()
        if plant:  # the other view's page still on its way is not shown
            self.model.stop()
        elif self.plant_model is not None:
            self.plant_model.stop()
        self.export_button.setEnabled(not plant)  # the CSV export writes this station's log
        self.tables.setCurrentWidget(self.plant_table if plant else self.table)
        self._frame.stop()
        self.viewer.clear()
        self.detail.setText("")
        if plant:
            self.summary.setText(f"Loading the plant's results from {self.plant_model.target.display}…")
            self.plant_model.query(self.filter_bar.plant_filter())
        else:
            self.summary.setText("Loading…")
            self.model.query(self.filters())

    def export_csv(self, path: str) -> None:
        """Write every matching result (not only those listed) to CSV in a worker; exported follows."""
        self.summary.setText("Exporting every result matching the filters…")
        start_worker(call, export_csv, self.results, str(path), self.filters(),
                     on_event=lambda n, p=str(path): self._on_exported(n, p), on_failed=self.failed.emit)  # fmt: skip

    def _on_exported(self, count: int, path: str) -> None:
        """Say what went where and announce it."""
        self.summary.setText(f"Exported all {count:,} result(s) matching the filters (not only those listed), "
                             f"oldest first, to {path}")  # fmt: skip
        self.exported.emit(count, path)

    def shutdown(self) -> None:
        """Stop this tab's workers (window close)."""
        self.model.stop()
        if self.plant_model is not None:
            self.plant_model.stop()
        self.changes.model.stop()
        self.filter_bar.stop()
        self._frame.stop()

    def _on_rows(self, listed: int) -> None:
        """Say how many rows match, how many are listed, and in what order."""
        if self.filter_bar.is_plant():
            return  # a page of the local query asked for before Plant was chosen: not what is shown
        total = self.model.total or 0
        order = self.model.order
        name = COLUMNS[SORT_KEYS.index(order.key)]
        way = _WAYS.get(order.key, ("Z to A", "A to Z"))[0 if order.descending else 1]
        more = "; scroll down to load more" if not self.model.complete else ""
        if total == 0:
            self.summary.setText(f"No results match the filters in {self.results.path}")
        elif listed < total:
            self.summary.setText(f"Rows 1–{listed:,} of {total:,} listed, by {name} {way}{more}")
        else:
            self.summary.setText(f"All {total:,} matching result(s) listed, by {name} {way}")
        self.loaded.emit(listed)

    def _on_plant_rows(self, listed: int) -> None:
        """Say how many plant rows match and how many are listed (always newest first)."""
        if not self.filter_bar.is_plant():
            return  # a page asked for before This station was chosen again: not what is shown
        total, where = self.plant_model.total or 0, self.plant_model.target.display
        more = "; scroll down to load more" if not self.plant_model.complete else ""
        if total == 0:
            self.summary.setText(f"No plant results match the filters in {where}")
        elif listed < total:
            self.summary.setText(f"Plant rows 1–{listed:,} of {total:,} listed from {where}, newest first{more}")
        else:
            self.summary.setText(f"All {total:,} matching plant result(s) listed from {where}, newest first")
        self.loaded.emit(listed)

    def _on_plant_failed(self, message: str) -> None:
        """The plant store cannot be read: one line here (not a message of its own: History just says so)."""
        if not self.filter_bar.is_plant():
            return
        self.summary.setText(f"The plant results could not be read: {message.rstrip('.')}. This station's results are still "
                             "listed under This station.")  # fmt: skip

    def _on_plant_row_selected(self, current: QModelIndex, _previous: QModelIndex) -> None:
        """Show the plant row's details and its frame, when this station can open the path the row references."""
        from visinspect_gui.widgets.history_plant import plant_detail

        if not current.isValid():
            return
        row = self.plant_model.rows[current.row()]
        self.detail.setText(plant_detail(row))
        self._frame.stop()
        self.viewer.clear()
        if not row.result.frame_path:
            self._frame_row = None
            self.viewer.set_placeholder("No frame was sent for this result (frames are kept for anomalies).")
            return
        self._frame_row = row.result
        self.viewer.set_placeholder(f"Opening {row.result.frame_path}…")
        self._frame.start(call, logged_frame, row.result, self.inspector, on_event=self._on_frame, on_failed=self._on_frame_failed)

    def _on_query_failed(self, message: str) -> None:
        if self.filter_bar.is_plant():
            return
        self.summary.setText(f"The results log could not be read: {message}")
        self.failed.emit(message)

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
        path, _ = QFileDialog.getSaveFileName(self, "Export results as CSV", str(Path.home() / "results.csv"), "CSV files (*.csv)")
        if path:
            self.export_csv(path)
