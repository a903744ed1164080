"""History's Changes view: the audit trail of model, threshold, recipe and mode changes, newest first."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from engine.results import AuditEntry, ResultsLog
from visinspect_gui.widgets.history_model import LazyRowsModel, Page


def changes_page(results: ResultsLog, offset: int, limit: int) -> Page:
    """One page of recorded changes, newest first (run in a worker)."""
    return Page(results.changes(limit=limit, offset=offset), partial(changes_page, results))


class ChangesModel(LazyRowsModel):
    """Recorded changes: when, who, what, old → new."""

    columns = ("Time", "Who", "What", "Change")

    def __init__(self, results: ResultsLog, parent=None) -> None:
        super().__init__(parent)
        self.results = results

    def reload(self) -> None:
        """List the changes again from the newest."""
        self.restart(partial(changes_page, self.results, 0))

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        entry: AuditEntry = self.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                datetime.fromtimestamp(entry.time).strftime("%Y-%m-%d %H:%M:%S"),
                entry.who,
                entry.what.label,
                f"{entry.old or '–'}  →  {entry.new or '–'}",
            )[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{entry.what.label} changed by {entry.who} at {entry.time_iso}\nfrom {entry.old or '–'}\nto {entry.new or '–'}"
        return None


class ChangesView(QWidget):
    """The audit trail as a table that loads more as it scrolls, with a line saying how many are listed."""

    loaded = Signal(int)  # changes listed

    def __init__(self, results: ResultsLog, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ChangesModel(results, self)
        self.table = QTableView()
        self.table.setObjectName("ChangesTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)  # long paths elide in the middle, keeping the file name
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        header = self.table.horizontalHeader()
        self.table.ensurePolished()  # the style sheet's font, not the default one
        fm = self.table.fontMetrics()
        header.resizeSection(0, fm.horizontalAdvance("2026-11-30 23:59:59") + 16)
        header.resizeSection(1, fm.horizontalAdvance("engineer (someone)") + 16)
        header.resizeSection(2, fm.horizontalAdvance("Box threshold") + 24)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.summary = QLabel("")
        self.summary.setObjectName("Summary")
        self.refresh_button = QPushButton("⟳  Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.summary, 1)
        bottom.addWidget(self.refresh_button)
        layout.addLayout(bottom)
        self.model.page_loaded.connect(self._on_loaded)

    def refresh(self) -> None:
        """Read the audit trail again (in a worker)."""
        self.summary.setText("Loading…")
        self.model.reload()

    def _on_loaded(self, count: int) -> None:
        if count == 0:
            self.summary.setText("No model, threshold, recipe or mode changes recorded yet.")
        else:
            more = "" if self.model.complete else "; scroll down for older ones"
            self.summary.setText(f"{count:,} change(s) listed, newest first{more}")
        self.loaded.emit(count)
