"""The Review tab's actions that need a choice: export all rows or only those shown; re-inspect rows of another model."""

from __future__ import annotations

from enum import Enum

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QPushButton, QWidget


class ExportScope(Enum):
    """Which rows an export writes."""

    ALL = "all"
    SHOWN = "shown"


class ExportButton(QPushButton):
    """The "Export CSV" button, with a menu that names both choices and their row counts: every row, or only the rows shown."""

    chosen = Signal(object)  # an ExportScope

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Export CSV…", parent)
        self.setToolTip("Save rows, judged at the threshold in force, as a CSV file; the file says which rows it holds")
        menu = QMenu(self)
        self.all_action = QAction("All rows…", menu)
        self.shown_action = QAction("Only the rows shown…", menu)
        self.all_action.triggered.connect(lambda: self.chosen.emit(ExportScope.ALL))
        self.shown_action.triggered.connect(lambda: self.chosen.emit(ExportScope.SHOWN))
        menu.addAction(self.all_action)
        menu.addAction(self.shown_action)
        self.setMenu(menu)

    def set_counts(self, total: int, shown: int, filters: str) -> None:
        """Name the row counts in the menu; "only the rows shown" is offered only when a filter hides some."""
        self.all_action.setText(f"All {total:,} rows…")
        self.shown_action.setText(f"Only the {shown:,} rows shown (filter: {filters})…" if filters else "Only the rows shown…")
        self.shown_action.setEnabled(bool(filters))


class ModelNotice(QWidget):
    """A line saying rows were judged by another model than the loaded one, with a button to re-inspect them."""

    reinspect = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("")
        self.label.setObjectName("ModelNotice")
        self.label.setWordWrap(True)
        self.button = QPushButton("Re-inspect with the current model")
        self.button.setToolTip("Review the same folder again with the loaded model (files it already reviewed are reused)")
        self.button.clicked.connect(self.reinspect)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.button)
        self.hide()

    def say(self, text: str) -> None:
        """Show text (and the button), or hide when text is empty."""
        self.label.setText(text)
        self.setVisible(bool(text))
