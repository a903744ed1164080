"""The Train tab's training-mode choice (Auto / Supervised / Good only), recommended from the dataset scan's counts."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QLabel, QWidget

from engine.data.layouts import DatasetIndex
from engine.training.good_only import choose_mode
from visinspect_gui.widgets.common import wheel_only_when_focused

MODES = (("Auto", "auto"), ("Supervised", "supervised"), ("Good only", "good-only"))
MODE_TEXT = {mode: text for text, mode in MODES}
MIN_SUPERVISED_DEFECTS = 2  # what engine.training.good_only.choose_mode needs for supervised training
SUPERVISED_ONLY = ("trainable", "epochs", "lr", "class_weights", "early_stop_accuracy")  # options good-only does not use


def recommendation(index: DatasetIndex) -> str:
    """'N good, M defective: … recommended', as the engine's auto mode would choose from these counts."""
    mode = choose_mode("auto", index).mode
    what = "good-only training (one-class)" if mode == "good-only" else "supervised training"
    return f"{index.n_good} good, {index.n_anomaly} defective: {what} recommended"


class ModeChoice(QGroupBox):
    """Supervised (the CAM classifier, needs defect images) or good only (one-class, fitted on good images)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Training mode", parent)
        self.combo = QComboBox()
        for text, mode in MODES:
            self.combo.addItem(text, mode)
        self.combo.setItemData(0, "Supervised with 2 or more defect images, else good only", Qt.ItemDataRole.ToolTipRole)
        self.combo.setItemData(1, "The founding CAM classifier, trained on good and defect images", Qt.ItemDataRole.ToolTipRole)
        self.combo.setItemData(2, "A one-class model fitted on good images only; defect images only evaluate it",
                               Qt.ItemDataRole.ToolTipRole)  # fmt: skip
        wheel_only_when_focused(self.combo)
        self.reason = QLabel("")
        self.reason.setWordWrap(True)
        self.reason.setStyleSheet("color: #9aa0a6;")
        form = QFormLayout(self)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow("Mode", self.combo)
        form.addRow(self.reason)

    def mode(self) -> str:
        """The TrainConfig mode chosen: auto, supervised or good-only."""
        return self.combo.currentData()

    def set_mode(self, mode: str) -> None:
        self.combo.setCurrentIndex(self.combo.findData(mode))

    def effective(self, index: DatasetIndex | None) -> str | None:
        """The training that will run on index: the choice, or for auto what the counts give (None: not known yet)."""
        if self.mode() != "auto":
            return self.mode()
        return choose_mode("auto", index).mode if index is not None else None

    def supervised_allowed(self) -> bool:
        return self._model().item(1).isEnabled()

    def set_dataset(self, index: DatasetIndex | None) -> None:
        """Choose the mode the counts recommend; Supervised is offered only with enough defect images."""
        item = self._model().item(1)
        if index is None:
            item.setEnabled(True)
            self.reason.setText("")
            self.set_mode("auto")
            return
        enough = index.n_anomaly >= MIN_SUPERVISED_DEFECTS
        item.setEnabled(enough)
        self.set_mode(choose_mode("auto", index).mode)
        self.reason.setText("" if enough else
                            f"Supervised needs at least {MIN_SUPERVISED_DEFECTS} defect images; this dataset has {index.n_anomaly}.")  # fmt: skip

    def _model(self) -> QStandardItemModel:
        return self.combo.model()
