"""The Train tab's operator-labels box: new labelled images since the model in use, retrain, old vs new compared."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGroupBox, QLabel, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from engine.jobs.compare import METRICS, CompareDone


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


class RetrainPanel(QGroupBox):
    """Counts the operator's labels since the model in use; retrains on the grown dataset and compares old and new."""

    retrain_requested = Signal()
    use_requested = Signal(str)  # the new model's path

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Operator labels", parent)
        layout = QVBoxLayout(self)
        self.count_label = QLabel("No model is loaded.")
        self.count_label.setWordWrap(True)
        self.retrain_button = QPushButton("Retrain with them")
        self.retrain_button.setToolTip("Train a new model of this product on its dataset, labelled images included, "
                                       "with the options the model in use was trained with")  # fmt: skip
        self.retrain_button.setEnabled(False)
        self.retrain_button.clicked.connect(self.retrain_requested)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.table = QTableWidget(len(METRICS), 2)
        self.table.setHorizontalHeaderLabels(["Old", "New"])
        self.table.setVerticalHeaderLabels([name for _key, name in METRICS])
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setMaximumHeight(110)
        self.table.hide()
        self.use_button = QPushButton("Use new model on live view")
        self.use_button.hide()
        self.use_button.clicked.connect(lambda: self.new_path and self.use_requested.emit(self.new_path))
        for w in (self.count_label, self.retrain_button, self.status_label, self.table, self.use_button):
            layout.addWidget(w)
        self.new_path: str | None = None

    def show_counts(self, text: str, *, can_retrain: bool) -> None:
        self.count_label.setText(text)
        self.retrain_button.setEnabled(can_retrain)

    def say(self, text: str) -> None:
        self.status_label.setText(text)

    def clear_comparison(self) -> None:
        self.new_path = None
        self.table.hide()
        self.use_button.hide()

    def show_comparison(self, done: CompareDone) -> None:
        """Old and new model side by side on the same images, and the button to put the new one on the line."""
        for r, (_name, old, new) in enumerate(done.rows()):
            for c, value in enumerate((old, new)):
                item = QTableWidgetItem(_fmt(value))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self.new_path = done.new_path
        self.say(f"Old and new model on {done.how}.")
        self.table.show()
        self.use_button.show()

    def cell(self, metric: str, column: int) -> str:
        """The text shown for a metric ('Accuracy', ...) in the Old (0) or New (1) column."""
        row = [name for _key, name in METRICS].index(metric)
        item = self.table.item(row, column)
        return item.text() if item is not None else ""
