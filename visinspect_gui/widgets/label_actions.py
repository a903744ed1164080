"""The operator's feedback controls: "Actually good" / "Actually defective…" buttons and menu, and the type question."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QHBoxLayout, QInputDialog, QMenu, QPushButton, QWidget

GOOD_TEXT = "Actually good"
DEFECT_TEXT = "Actually defective…"
GOOD_TIP = "This part is good: its image joins the product's dataset as a good image, and the results log records who said so"
DEFECT_TIP = "This part is defective: choose or type the defect type; its image joins the product's dataset under that type"


def ask_defect_type(parent: QWidget, types: list[str]) -> str | None:
    """Ask which defect the part has: one of the dataset's types, or a new one typed in; None when cancelled."""
    text, ok = QInputDialog.getItem(parent, "Actually defective", "Defect type (choose one, or type a new one):", types, 0, True)
    return text.strip() if ok and text.strip() else None


def label_menu(parent: QWidget, on_good, on_defect) -> QMenu:
    """A context menu with the two labelling actions."""
    menu = QMenu(parent)
    good = QAction(GOOD_TEXT, menu, toolTip=GOOD_TIP)
    defect = QAction(DEFECT_TEXT, menu, toolTip=DEFECT_TIP)
    good.triggered.connect(on_good)
    defect.triggered.connect(on_defect)
    menu.addAction(good)
    menu.addAction(defect)
    return menu


class LabelBar(QWidget):
    """Two buttons under the live verdict: the operator says what the part on screen actually is."""

    good_clicked = Signal()
    defect_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("LabelBar")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.good_button = QPushButton(GOOD_TEXT)
        self.good_button.setToolTip(GOOD_TIP)
        self.defect_button = QPushButton(DEFECT_TEXT)
        self.defect_button.setToolTip(DEFECT_TIP)
        self.good_button.clicked.connect(self.good_clicked)
        self.defect_button.clicked.connect(self.defect_clicked)
        row.addWidget(self.good_button)
        row.addWidget(self.defect_button)
        self.set_available(False)

    def set_available(self, on: bool) -> None:
        """Enabled only while a current verdict is on screen."""
        self.good_button.setEnabled(on)
        self.defect_button.setEnabled(on)
