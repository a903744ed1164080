"""The training options form, built from TrainConfig's field metadata (the same that makes `visinspect train`'s flags)."""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.errors import BackboneWeightsError
from engine.model.builder import BACKBONES
from engine.paths import backbones_dir
from engine.training.config import TrainConfig, config_fields
from visinspect_gui.widgets.common import wheel_only_when_focused

WEIGHT_KINDS = (("ImageNet", "imagenet"), ("Local file…", "file"), ("None (random init)", "none"))
_WEIGHT_TEXT = {kind: text for text, kind in WEIGHT_KINDS}
# Random init trains far better with batch norm and a higher learning rate (README "Where weights come from").
RANDOM_INIT_RECIPE = {"backbone": "vgg16_bn", "lr": 1e-3}



def weights_advice(backbone: str, message: str) -> str:
    """A backbone-weights error told with this form's controls, not the command line's flags."""
    if "--" not in message:
        return message
    file_name = BACKBONES[backbone][1].url.rsplit("/", 1)[-1] if backbone in BACKBONES else "the weights file"
    return (f"The ImageNet weights for {backbone} could not be downloaded. On an offline station copy {file_name} to "
            f"{backbones_dir()}, or set Backbone weights to “{_WEIGHT_TEXT['file']}” (a .pth or .safetensors file) "
            f"or “{_WEIGHT_TEXT['none']}”.")  # fmt: skip


class WeightsChooser(QWidget):
    """Backbone weights: ImageNet, a local file, or none (random init)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = QComboBox()
        for text, kind in WEIGHT_KINDS:
            self.kind.addItem(text, kind)
        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText("vgg16-397923af.pth or .safetensors")
        self.browse = QToolButton()
        self.browse.setText("…")
        self.browse.setToolTip("Choose the weights file")
        self.browse.clicked.connect(self._on_browse_clicked)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.kind)
        row = QHBoxLayout()
        row.addWidget(self.file_edit, 1)
        row.addWidget(self.browse)
        column.addLayout(row)
        self.kind.currentIndexChanged.connect(self._sync)
        self._sync()

    def value(self) -> str:
        kind = self.kind.currentData()
        if kind != "file":
            return kind
        path = self.file_edit.text().strip()
        if not path or not Path(path).is_file():
            raise BackboneWeightsError(f"backbone weights file not found: {path or '(none chosen)'}")
        return path

    def set_value(self, value: str) -> None:
        kind = value if value in ("imagenet", "none") else "file"
        self.kind.setCurrentIndex(self.kind.findData(kind))
        self.file_edit.setText(value if kind == "file" else "")

    def setEnabled(self, on: bool) -> None:  # noqa: N802 - Qt API
        super().setEnabled(on)
        self._sync()

    def _sync(self, *_args) -> None:
        on = self.isEnabled() and self.kind.currentData() == "file"
        self.file_edit.setEnabled(on)
        self.browse.setEnabled(on)

    def _on_browse_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Backbone weights", str(Path.home()), "Weights (*.pth *.pt *.safetensors)")
        if path:
            self.file_edit.setText(path)


class ConfigForm(QWidget):
    """One row per TrainConfig field offered in the station, with its label, limits and help as tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._fields = config_fields(where="gui")
        self.widgets: dict[str, QWidget | tuple] = {}
        self._setting = False
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        for f in self._fields:
            widget = self._make(f)
            self.form.addRow(f.metadata["label"], widget)
            widget.setToolTip(f.metadata.get("gui_help", f.metadata["help"]))
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #9aa0a6;")
        self.form.addRow(self.note)
        self.weights.kind.currentIndexChanged.connect(self._on_weights_kind_changed)
        self.set_config(TrainConfig())

    @property
    def weights(self) -> WeightsChooser:
        return self.widgets["backbone_weights"]

    def field_widget(self, name: str):
        """The editor of one field (a pair of spin boxes for the class weights)."""
        return self.widgets[name]

    def _guard(self, widget: QWidget) -> QWidget:
        wheel_only_when_focused(widget)
        return widget

    def _spin(self, f, default) -> QWidget:
        meta = f.metadata
        if isinstance(default, int):
            spin = QSpinBox()
        else:
            spin = QDoubleSpinBox()
            spin.setDecimals(meta.get("decimals", 3))
        spin.setRange(meta.get("minimum", 0), meta.get("maximum", 10**9))
        if "step" in meta:
            spin.setSingleStep(meta["step"])
        if "suffix" in meta:
            spin.setSuffix(meta["suffix"])
        if "special" in meta:  # the text shown at the minimum, e.g. tiles "Off"
            spin.setSpecialValueText(meta["special"])
        return self._guard(spin)

    def _make(self, f) -> QWidget:
        default, meta = f.default, f.metadata
        if meta.get("widget") == "weights":
            chooser = WeightsChooser()
            self._guard(chooser.kind)
            self.widgets[f.name] = chooser
            return chooser
        if "choices" in meta:
            combo = self._guard(QComboBox())
            combo.addItems(list(meta["choices"]))
            self.widgets[f.name] = combo
            return combo
        if isinstance(default, tuple):
            box = QWidget()
            row = QHBoxLayout(box)
            row.setContentsMargins(0, 0, 0, 0)
            spins = tuple(self._spin(f, v) for v in default)
            for part, spin in zip(meta["parts"], spins):
                row.addWidget(QLabel(part))
                row.addWidget(spin)
            self.widgets[f.name] = spins
            return box
        spin = self._spin(f, default)
        self.widgets[f.name] = spin
        return spin

    def set_config(self, config: TrainConfig) -> None:
        """Show a TrainConfig's options exactly (no recipe is applied on the way)."""
        self._setting = True
        try:
            self._set_values(config)
        finally:
            self._setting = False

    def _set_values(self, config: TrainConfig) -> None:
        for f in self._fields:
            widget, value = self.widgets[f.name], getattr(config, f.name)
            if isinstance(widget, WeightsChooser):
                widget.set_value(value)
            elif isinstance(widget, QComboBox):
                widget.setCurrentText(value)
            elif isinstance(widget, tuple):
                for spin, v in zip(widget, value):
                    spin.setValue(v)
            else:
                widget.setValue(value)

    def config(self, **fixed) -> TrainConfig:
        """The TrainConfig the form describes, with the fields not in the form from `fixed` (e.g. device)."""
        values = {}
        for f in self._fields:
            widget = self.widgets[f.name]
            if isinstance(widget, WeightsChooser):
                values[f.name] = widget.value()
            elif isinstance(widget, QComboBox):
                values[f.name] = widget.currentText()
            elif isinstance(widget, tuple):
                values[f.name] = tuple(spin.value() for spin in widget)
            else:
                values[f.name] = widget.value()
        known = {f.name for f in fields(TrainConfig)}
        return TrainConfig(**values, **{k: v for k, v in fixed.items() if k in known})

    def set_unused(self, names) -> None:
        """Grey out the fields the chosen training does not use (good-only: no epochs, learning rate, ...)."""
        for f in self._fields:
            widget = self.widgets[f.name]
            for part in widget if isinstance(widget, tuple) else (widget,):
                part.setEnabled(f.name not in names)

    def setEnabled(self, on: bool) -> None:  # noqa: N802 - Qt API
        super().setEnabled(on)
        self.weights.setEnabled(on)

    def _on_weights_kind_changed(self, _index: int) -> None:
        """Random init: apply the recipe that trains well from scratch, and say so."""
        if self.weights.kind.currentData() != "none":
            self.note.setText("")
            return
        if self._setting:
            return
        self.widgets["backbone"].setCurrentText(RANDOM_INIT_RECIPE["backbone"])
        self.widgets["lr"].setValue(RANDOM_INIT_RECIPE["lr"])
        self.note.setText("Without ImageNet weights: backbone vgg16_bn and learning rate 0.001 set (they train far better "
                          "from random init); change them if you need to.")  # fmt: skip
