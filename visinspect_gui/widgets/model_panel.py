"""The model panel: product models on this station, the loaded one, its thresholds and how the heatmap is drawn."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QWidget,
)

from engine.modelfile import MODEL_SUFFIX, list_models
from engine.paths import weights_dir
from engine.types import HeatScale
from visinspect_gui.widgets.common import THRESHOLD_DECIMALS, Card, wheel_only_when_focused
from visinspect_gui.widgets.viewer import COLORMAPS
from visinspect_gui.workers import Latest, call

NO_IMAGENET_NOTE = (
    "Trained without ImageNet weights (random init): good enough for the demo, "
    "less reliable on real parts than an ImageNet-based model."
)


class _Slider(QWidget):
    """A labelled horizontal slider over a float range with its value shown beside it."""

    def __init__(self, steps: int, fmt: str) -> None:
        super().__init__()
        self._steps, self._fmt = steps, fmt
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, steps)
        self.value_label = QLabel()
        self.value_label.setObjectName("SliderValue")
        self.value_label.setMinimumWidth(44)
        self.value_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.value_label)
        self.slider.valueChanged.connect(lambda v: self.value_label.setText(self._fmt.format(v / self._steps)))

    def value(self) -> float:
        """The slider's position as a float."""
        return self.slider.value() / self._steps

    def set_value(self, value: float, *, quiet: bool = False) -> None:
        """Move the slider (quietly: without emitting) and show the exact value."""
        self.slider.blockSignals(quiet)
        self.slider.setValue(round(value * self._steps))
        self.slider.blockSignals(False)
        self.value_label.setText(self._fmt.format(value))


class ModelPanel(Card):
    """Lists models, asks for one to be loaded, and sets the thresholds and heatmap display."""

    model_requested = Signal(str)  # path of a model file to load
    threshold_changed = Signal(float)
    box_threshold_changed = Signal(float)
    overlay_changed = Signal()  # heatmap on/off, opacity, colour map or heat scale
    models_found = Signal(int)  # how many loadable model files the last scan listed

    def __init__(self, parent: QWidget | None = None, *, folder: Path | None = None) -> None:
        super().__init__("Model", parent)
        self.folder = folder
        self._scanner = Latest()
        self._model_threshold = 0.5
        self._threshold = 0.5
        self._loadable: list[str] = []
        self._listed: list = []  # the last scan's listings
        self.loaded = None  # (path, describe line) of the model in use, listed even when outside the weights folder

        self.list = QListWidget()
        self.list.setObjectName("ModelList")
        self.list.setMinimumHeight(110)
        self.list.setMaximumHeight(170)
        self.list.setWordWrap(True)
        self.list.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.itemDoubleClicked.connect(self._on_item_double_clicked)
        self.body.addWidget(self.list)

        buttons = QHBoxLayout()
        self.load_button = QPushButton("Load")
        self.load_button.setToolTip("Load the selected model (or double-click it)")
        self.load_button.clicked.connect(self._on_load_clicked)
        self.open_button = QPushButton("Open model file…")
        self.open_button.clicked.connect(self._on_open_clicked)
        self.refresh_button = QPushButton("⟳")
        self.refresh_button.setToolTip("Look for model files again")
        self.refresh_button.setFixedWidth(36)
        self.refresh_button.clicked.connect(self.refresh)
        buttons.addWidget(self.load_button)
        buttons.addWidget(self.open_button, 1)
        buttons.addWidget(self.refresh_button)
        self.body.addLayout(buttons)

        self.active = QLabel("No model loaded")
        self.active.setObjectName("ActiveModel")
        self.active.setWordWrap(True)
        self.body.addWidget(self.active)
        self.no_imagenet = QLabel("⚠  " + NO_IMAGENET_NOTE)
        self.no_imagenet.setObjectName("NoImagenetNote")
        self.no_imagenet.setWordWrap(True)
        self.no_imagenet.setToolTip(
            "The backbone started from random weights instead of ImageNet features. Train with ImageNet "
            "weights (visinspect train, the default) for production use."
        )
        self.no_imagenet.hide()
        self.body.addWidget(self.no_imagenet)

        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(6)
        self.threshold = _Slider(10_000, f"{{:.{THRESHOLD_DECIMALS}f}}")  # a calibrated 0.5136 is shown and kept exactly
        self.threshold.setToolTip("p(anomaly) at or above this is ANOMALY; applies from the next frame")
        self.threshold.slider.valueChanged.connect(self._on_threshold_moved)
        self.reset_threshold = QPushButton("Default")
        self.reset_threshold.setToolTip("Back to the model's own threshold")
        self.reset_threshold.clicked.connect(self._on_reset_threshold_clicked)
        self.box_threshold = _Slider(100, "{:.2f}")
        self.box_threshold.setToolTip("Heatmap level that outlines a defect box")
        self.box_threshold.slider.valueChanged.connect(lambda _v: self.box_threshold_changed.emit(self.box_threshold.value()))
        self.heatmap_box = QCheckBox("Heatmap")
        self.heatmap_box.setChecked(True)
        self.heatmap_box.toggled.connect(lambda _on: self.overlay_changed.emit())
        self.colormap_combo = QComboBox()
        for name in COLORMAPS:
            self.colormap_combo.addItem(name, COLORMAPS[name])
        self.colormap_combo.currentIndexChanged.connect(lambda _i: self.overlay_changed.emit())
        self.opacity = _Slider(100, "{:.0%}")
        self.opacity.set_value(0.45, quiet=True)
        self.opacity.slider.valueChanged.connect(lambda _v: self.overlay_changed.emit())
        self.scale_combo = QComboBox()
        self.scale_combo.setObjectName("HeatScaleCombo")
        self.scale_combo.addItem("Absolute", HeatScale.ABSOLUTE.value)
        self.scale_combo.addItem("Per image", HeatScale.PER_IMAGE.value)
        self.scale_combo.setToolTip(
            "Absolute: colours and box labels on the model's scale, measured on good and defective parts "
            "(a good part stays cool). Per image: each image stretched so its hottest point is red."
        )
        self.scale_combo.currentIndexChanged.connect(lambda _i: self.overlay_changed.emit())
        grid.addWidget(QLabel("Decision threshold"), 0, 0, 1, 2)
        grid.addWidget(self.threshold, 1, 0)
        grid.addWidget(self.reset_threshold, 1, 1)
        grid.addWidget(QLabel("Box threshold"), 2, 0, 1, 2)
        grid.addWidget(self.box_threshold, 3, 0, 1, 2)
        overlay = QHBoxLayout()
        overlay.addWidget(self.heatmap_box)
        overlay.addStretch(1)
        overlay.addWidget(QLabel("Colours"))
        overlay.addWidget(self.colormap_combo)
        grid.addLayout(overlay, 4, 0, 1, 2)
        grid.addWidget(QLabel("Heatmap opacity"), 5, 0, 1, 2)
        grid.addWidget(self.opacity, 6, 0, 1, 2)
        scale_row = QHBoxLayout()
        scale_row.addWidget(QLabel("Heatmap scale"))
        scale_row.addStretch(1)
        scale_row.addWidget(self.scale_combo)
        grid.addLayout(scale_row, 7, 0, 1, 2)
        self.body.addLayout(grid)
        wheel_only_when_focused(self.threshold.slider, self.box_threshold.slider, self.opacity.slider, self.colormap_combo, self.scale_combo)
        self.set_controls_enabled(False)

    # -- values the station and viewer read -----------------------------------------------------

    @property
    def decision_threshold(self) -> float:
        """The threshold in force: exactly the model's own until the slider is moved."""
        return self._threshold

    @property
    def heatmap_on(self) -> bool:
        """Whether the heatmap is drawn over the image."""
        return self.heatmap_box.isChecked()

    @property
    def heatmap_opacity(self) -> float:
        """How strongly the heatmap is blended in, 0..1."""
        return self.opacity.value()

    @property
    def heat_scale(self) -> HeatScale:
        """The scale the heatmap and box labels are shown on: the model's absolute one (default) or per image."""
        return HeatScale.parse(self.scale_combo.currentData())

    @property
    def colormap(self) -> int:
        """The cv2 colour map the heatmap is drawn with."""
        return self.colormap_combo.currentData()

    @property
    def loaded_path(self) -> str | None:
        """The file of the model in use, or None before one is loaded."""
        return self.loaded[0] if self.loaded is not None else None

    def models(self) -> list[str]:
        """Paths of the loadable model files listed, newest first."""
        return list(self._loadable)

    # -- updates from the station ---------------------------------------------------------------

    def set_model(self, inspector) -> None:
        """Show the loaded model and put the sliders at its own thresholds."""
        meta = inspector.meta
        self.active.setText(f"Loaded: <b>{Path(inspector.path).name}</b> on {inspector.device_name.split(':')[0]}")
        self.active.setToolTip(f"{inspector.path}\n{meta.describe()}")
        self.no_imagenet.setVisible(not meta.pretrained)
        self._model_threshold = float(inspector.threshold)
        self.set_controls_enabled(True)
        self.set_threshold(self._model_threshold)
        self.box_threshold.set_value(inspector.thresholds.box, quiet=True)
        self.loaded = (str(inspector.path), meta.describe())
        self._show_listings()

    def set_threshold(self, value: float) -> None:
        """Move the decision threshold to exactly value and announce it."""
        self.threshold.set_value(value, quiet=True)
        self._threshold = float(value)
        self.threshold_changed.emit(self._threshold)

    def set_controls_enabled(self, enabled: bool) -> None:
        """Thresholds only make sense with a model loaded."""
        for w in (self.threshold, self.reset_threshold, self.box_threshold):
            w.setEnabled(enabled)

    # -- listing models -------------------------------------------------------------------------

    def refresh(self) -> None:
        """List the model files in the weights folder (read in a worker: they may be on a network drive)."""
        folder = self.folder if self.folder is not None else weights_dir()
        self._scanner.start(call, list_models, folder, on_event=self._on_models_found)

    def _on_models_found(self, listings: list) -> None:
        """List the scanned models (newest first) and keep the loaded one marked."""
        self._listed = [(str(m.path), m.meta.describe() if m.meta else None, m.error) for m in listings]
        self._loadable = [path for path, _line, error in self._listed if error is None]
        self._show_listings()
        self.models_found.emit(len(self._loadable))

    def _show_listings(self) -> None:
        """The weights folder's models, plus the one in use when it was opened from elsewhere; the one in use in bold."""
        found = list(self._listed)
        loaded = self.loaded[0] if self.loaded is not None else None
        if loaded is not None and not any(Path(path) == Path(loaded) for path, _l, _e in found):
            found.insert(0, (loaded, f"{self.loaded[1]}\nopened from {Path(loaded).parent}", None))
        self.list.clear()
        for path, line, error in found:
            name = Path(path).name
            item = QListWidgetItem(name if error else f"{name}\n{line}")
            item.setData(Qt.ItemDataRole.UserRole, path)
            item.setToolTip(error or f"{path}\n{line}")
            if error:
                item.setForeground(Qt.GlobalColor.gray)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
            self.list.addItem(item)
            if loaded is not None and Path(path) == Path(loaded):
                font = item.font()
                font.setBold(True)
                item.setFont(font)
                self.list.setCurrentItem(item)
        if not found:
            placeholder = QListWidgetItem("No models in the weights folder")
            placeholder.setFlags(Qt.ItemFlag.NoItemFlags)
            self.list.addItem(placeholder)
        elif self.list.currentItem() is None:
            self.list.setCurrentRow(0)

    def shutdown(self) -> None:
        """Stop the scanning worker (window close)."""
        self._scanner.stop()

    # -- slots ---------------------------------------------------------------------------------

    def _on_item_double_clicked(self, item: QListWidgetItem) -> None:
        """Double-click loads a model."""
        path = item.data(Qt.ItemDataRole.UserRole)
        if path:
            self.model_requested.emit(path)

    def _on_load_clicked(self) -> None:
        """Load the selected model."""
        item = self.list.currentItem()
        if item is not None and item.data(Qt.ItemDataRole.UserRole):
            self.model_requested.emit(item.data(Qt.ItemDataRole.UserRole))

    def _on_open_clicked(self) -> None:
        """Load a model file from anywhere on disk."""
        start = str(self.folder if self.folder is not None else weights_dir())
        path, _ = QFileDialog.getOpenFileName(self, "Open model file", start, f"VisInspect models (*{MODEL_SUFFIX});;All files (*)")
        if path:
            self.model_requested.emit(path)

    def _on_threshold_moved(self, _value: int) -> None:
        """The operator moved the decision threshold."""
        self._threshold = self.threshold.value()
        self.threshold_changed.emit(self._threshold)

    def _on_reset_threshold_clicked(self) -> None:
        """Back to the model's own threshold."""
        self.set_threshold(self._model_threshold)
