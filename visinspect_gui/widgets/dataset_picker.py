"""The Train tab's dataset box: a folder read in a worker (good images alone are a dataset too), its good-image folder,
the product name and where it saves."""
from __future__ import annotations

import html
import re
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from engine.data.layouts import DatasetIndex, DatasetScan, scan_dataset
from engine.modelfile import MODEL_SUFFIX
from engine.paths import weights_dir
from visinspect_gui.widgets.common import breakable, elide_middle, wheel_only_when_focused
from visinspect_gui.widgets.mode_choice import recommendation
from visinspect_gui.workers import Latest, call

PRODUCT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


class DatasetPicker(QGroupBox):
    """Choose a dataset folder (read in a worker: a big one on a share must not freeze the window) and a product."""

    dataset_scanned = Signal(object)  # DatasetIndex, or None when the folder is not a usable dataset

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Dataset", parent)
        self.dataset: DatasetIndex | None = None
        self._scanner = Latest()
        self._product_auto = True
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("MVTec category folder or class folders (good/, scratch/, …)")
        self.folder_edit.editingFinished.connect(self._on_folder_edited)
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self._on_browse_clicked)
        row = QHBoxLayout()
        row.addWidget(self.folder_edit, 1)
        row.addWidget(self.browse_button)
        self.good_dir_combo = QComboBox()
        self.good_dir_combo.setEditable(True)
        self.good_dir_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.good_dir_combo.setMinimumContentsLength(10)
        wheel_only_when_focused(self.good_dir_combo)
        self.good_dir_combo.setToolTip("For class folders: the folder of good images (e.g. MT_Free); every other folder is a defect type")
        self.good_dir_combo.lineEdit().editingFinished.connect(self._on_good_dir_edited)
        self.good_dir_combo.activated.connect(self._on_good_dir_edited)
        self.dataset_label = QLabel("No dataset chosen.")
        self.dataset_label.setWordWrap(True)
        self.dataset_label.setTextFormat(Qt.TextFormat.RichText)
        self.product_edit = QLineEdit()
        self.product_edit.setPlaceholderText("product name, e.g. bracket_a")
        self.product_edit.textEdited.connect(lambda _t: setattr(self, "_product_auto", False))
        self.product_edit.textChanged.connect(self._on_product_changed)
        self.target_label = QLabel("")
        self.target_label.setWordWrap(True)
        self.target_label.setStyleSheet("color: #9aa0a6;")
        form = QFormLayout(self)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow("Folder", row)
        form.addRow("Good folder", self.good_dir_combo)
        form.addRow(self.dataset_label)
        form.addRow("Product", self.product_edit)
        form.addRow(self.target_label)

    def set_dataset_folder(self, folder: str, *, good_dir: str | None = None) -> None:
        """Choose a dataset folder (and optionally its good-image folder); it is read in a worker, dataset_scanned follows."""
        self.folder_edit.setText(str(folder))
        self._scan(good_dir)

    def set_product(self, name: str) -> None:
        self._product_auto = False
        self.product_edit.setText(name)

    @property
    def product(self) -> str:
        return self.product_edit.text().strip()

    def model_path(self) -> Path | None:
        """Where the model will be saved: weights_dir()/<product>.safetensors (None for an unusable name)."""
        return weights_dir() / f"{self.product}{MODEL_SUFFIX}" if PRODUCT_NAME.match(self.product) else None

    def is_scanning(self) -> bool:
        return self._scanner.busy()

    def shutdown(self) -> None:
        self._scanner.stop()

    def setEnabled(self, on: bool) -> None:  # noqa: N802 - Qt API
        super().setEnabled(on)
        if on and self.dataset is not None:
            self.good_dir_combo.setEnabled(self.dataset.layout == "folders")

    def _scan(self, good_dir: str | None) -> None:
        folder = self.folder_edit.text().strip()
        self.dataset = None
        if not folder:
            self._scanner.stop()
            self.dataset_label.setText("No dataset chosen.")
            self.dataset_scanned.emit(None)
            return
        self.dataset_label.setText(f"Reading {html.escape(breakable(folder), quote=False)}…")
        self._scanner.start(call, scan_dataset, folder, good_dir, min_defective=0, on_event=self._on_scanned,
                            on_failed=self._on_scan_failed)  # fmt: skip

    def _on_scanned(self, scan: DatasetScan) -> None:
        """Show the layout, counts and masks of the scanned folder (or why it is not a dataset)."""
        self.good_dir_combo.blockSignals(True)
        try:
            self.good_dir_combo.clear()
            self.good_dir_combo.addItems(list(scan.names))
            self.good_dir_combo.setCurrentText(scan.good_dir)
        finally:
            self.good_dir_combo.blockSignals(False)
        index = self.dataset = scan.index
        if index is None:
            self.dataset_label.setText(f"<span style='color:#ff8a80'>{html.escape(breakable(scan.error or ''), quote=False)}</span>")
            self.dataset_scanned.emit(None)
            return
        self.good_dir_combo.setEnabled(index.layout == "folders")
        counts = ", ".join(f"{k} {v}" for k, v in index.counts().items())
        masks = (f"masks for {index.n_masks} of {index.n_anomaly} defective (pixel AUROC and box recall will be measured)"
                 if index.n_masks else "no masks (image metrics only)")  # fmt: skip
        layout = "MVTec AD layout" if index.layout == "mvtec" else f"class folders, good = {index.good_dir}"
        masks = f"{masks}<br>" if index.n_anomaly else ""
        self.dataset_label.setText(f"<b>{layout}</b><br>{len(index.samples)} images: {counts}<br>{masks}"
                                   f"{html.escape(recommendation(index), quote=False)}")  # fmt: skip
        if self._product_auto:
            name = re.sub(r"[^A-Za-z0-9_.\-]+", "_", Path(scan.folder).name).strip("._-") or "product"
            self.product_edit.setText(name[:64])
        self.dataset_scanned.emit(index)

    def _on_scan_failed(self, message: str) -> None:
        self.dataset_label.setText(f"<span style='color:#ff8a80'>{html.escape(breakable(message), quote=False)}</span>")
        self.dataset_scanned.emit(None)

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Dataset folder", self.folder_edit.text() or str(Path.home()))
        if folder:
            self.set_dataset_folder(folder)

    def _on_folder_edited(self) -> None:
        folder = self.folder_edit.text().strip()
        if folder and (self.dataset is None or Path(folder) != Path(self.dataset.root)):
            self._scan(None)

    def _on_good_dir_edited(self, *_args) -> None:
        if self.dataset is None or self.dataset.layout != "mvtec":
            self._scan(self.good_dir_combo.currentText().strip() or None)

    def _on_product_changed(self, _text: str) -> None:
        path = self.model_path()
        if path is None:
            self.target_label.setText("Product name: letters, digits, '_', '-', '.'")
            self.target_label.setToolTip("")
        else:
            exists = " (exists: you will be asked before it is replaced)" if path.exists() else ""
            self.target_label.setText(f"Saves to {breakable(elide_middle(str(path)))}{exists}")
            self.target_label.setToolTip(str(path))
