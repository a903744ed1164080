"""Train tab: pick a dataset and options, train in a worker with live curves, then report, gallery and calibration."""
from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.data.layouts import MASK_FOLDER_NAMES, DatasetIndex, load_dataset
from engine.errors import Cancelled, VisInspectError
from engine.evaluation.evaluate import scores_arrays
from engine.evaluation.report import GalleryEntry, iter_gallery
from engine.inference.inspector import Inspector
from engine.modelfile import MODEL_SUFFIX, LoadedModel, file_sha256, save_model
from engine.paths import weights_dir
from engine.training.fit import DataReady, EpochReport, StepReport, TrainConfig, TrainResult, train
from visinspect_gui.widgets.calibration_view import PLOT_BG, CalibrationView
from visinspect_gui.widgets.report_view import ReportView, WorkerSlot, ask_report_path, export_report_job, fmt_pct
from visinspect_gui.workers import Worker, WorkerGroup

WEIGHT_KINDS = (("ImageNet", "imagenet"), ("Local file…", "file"), ("None (random init)", "none"))
GOOD_NAME_HINT = re.compile(r"(^|[_\-\s])(good|free|ok|normal|pass|clean)($|[_\-\s])", re.IGNORECASE)
PRODUCT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
TRAIN_PEN, TEST_PEN, STEP_RGB = (90, 160, 255), (255, 170, 60), (150, 155, 165)


@dataclass(frozen=True)
class ModelSaved:
    """The trained model was written to path."""

    path: str


def train_and_save(dataset: DatasetIndex, config: TrainConfig, product: str, path: str, gallery_limit: int, *, stop):
    """Worker generator: train() events, then save on TrainResult (only), then gallery entries."""
    result = None
    for event in train(dataset, config, product=product, stop=stop):
        yield event
        if isinstance(event, TrainResult):
            result = event
    if result is None:
        raise VisInspectError("training ended without a result")
    if stop.is_set():
        raise Cancelled("training was cancelled; no model was saved")
    save_model(path, result.model, result.meta, calibration=result.calibration)
    yield ModelSaved(str(path))
    loaded = LoadedModel(result.model, result.meta, Path(path), file_sha256(path))
    inspector = Inspector(loaded, device=config.device, precision="fp32")
    yield from iter_gallery(inspector, result.report.scores, limit=gallery_limit, stop=stop)


@dataclass(frozen=True, eq=False)
class DatasetScan:
    """A dataset folder read in a worker: its sub-folders, the good-image folder used, and the index or why not."""

    folder: str
    names: tuple[str, ...]
    good_dir: str
    index: DatasetIndex | None
    error: str | None


def scan_dataset(folder: str, good_dir: str | None, *, stop):
    """Worker body: list folder's sub-folders, guess the good one unless given, and index the dataset."""
    try:
        names = sorted(p.name for p in Path(folder).iterdir() if p.is_dir() and not p.name.startswith(".")
                       and p.name.lower() not in MASK_FOLDER_NAMES)  # fmt: skip
    except OSError:
        names = []
    good = good_dir or ("good" if "good" in names else next((n for n in names if GOOD_NAME_HINT.search(n)), "good"))
    try:
        yield DatasetScan(folder, tuple(names), good, load_dataset(folder, good_dir=good), None)
    except (VisInspectError, OSError) as exc:
        yield DatasetScan(folder, tuple(names), good, None, str(exc))


def _fmt_seconds(s: float) -> str:
    s = max(0, int(round(s)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


class TrainTab(QWidget):
    """Train a product model from a dataset folder and review, calibrate and save it."""

    model_saved = Signal(str)
    use_model_requested = Signal(str)
    threshold_stored = Signal(str, float)
    busy_changed = Signal(bool)
    report_exported = Signal(str)
    dataset_scanned = Signal(object)  # DatasetIndex, or None when the folder is not a usable dataset

    def __init__(self, parent: QWidget | None = None, *, gallery_limit: int = 96) -> None:
        super().__init__(parent)
        self.gallery_limit = gallery_limit
        self.dataset: DatasetIndex | None = None
        self.result: TrainResult | None = None
        self.saved_path: str | None = None
        self.history: list[EpochReport] = []
        self._worker = WorkerSlot()
        self._export = WorkerSlot()
        self._scanner: Worker | None = None
        self._scanners = WorkerGroup()
        self._product_auto = True
        self._outcome = ""
        self._t0 = 0.0
        self._epoch_t0 = 0.0
        self._step_seconds: float | None = None
        self._build()
        self._on_weights_kind_changed()
        self._set_running(False)

    # --- construction -----------------------------------------------------------------------------

    def _build(self) -> None:
        defaults = TrainConfig()
        # dataset
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
        self.good_dir_combo.setToolTip("For class folders: the folder of good images (e.g. MT_Free); every other folder is a defect type")
        self.good_dir_combo.lineEdit().editingFinished.connect(self._on_good_dir_edited)
        self.good_dir_combo.activated.connect(self._on_good_dir_edited)
        self.dataset_label = QLabel("No dataset chosen.")
        self.dataset_label.setWordWrap(True)
        self.dataset_label.setTextFormat(Qt.TextFormat.RichText)
        self.product_edit = QLineEdit()
        self.product_edit.setPlaceholderText("product name, e.g. bracket_a")
        self.product_edit.textEdited.connect(self._on_product_edited)
        self.product_edit.textChanged.connect(self._on_product_changed)
        self.target_label = QLabel("")
        self.target_label.setWordWrap(True)
        self.target_label.setStyleSheet("color: #9aa0a6;")
        data_box = QGroupBox("Dataset")
        df = QFormLayout(data_box)
        df.addRow("Folder", row)
        df.addRow("Good folder", self.good_dir_combo)
        df.addRow(self.dataset_label)
        df.addRow("Product", self.product_edit)
        df.addRow(self.target_label)

        # options
        self.backbone_combo = QComboBox()
        self.backbone_combo.addItems(["vgg16", "vgg16_bn"])
        self.weights_combo = QComboBox()
        for text, kind in WEIGHT_KINDS:
            self.weights_combo.addItem(text, kind)
        self.weights_combo.currentIndexChanged.connect(self._on_weights_kind_changed)
        self.weights_file_edit = QLineEdit()
        self.weights_file_edit.setPlaceholderText("vgg16-397923af.pth or .safetensors")
        self.weights_browse = QPushButton("…")
        self.weights_browse.setFixedWidth(32)
        self.weights_browse.clicked.connect(self._on_weights_browse_clicked)
        wrow = QHBoxLayout()
        wrow.addWidget(self.weights_file_edit, 1)
        wrow.addWidget(self.weights_browse)
        self.image_size_spin = QSpinBox()
        self.image_size_spin.setRange(32, 512)
        self.image_size_spin.setSingleStep(32)
        self.image_size_spin.setSuffix(" px")
        self.image_size_spin.editingFinished.connect(self._on_image_size_edited)
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 1000)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 512)
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(6)
        self.lr_spin.setRange(0.000001, 1.0)
        self.lr_spin.setSingleStep(0.00005)
        self.good_weight_spin = QDoubleSpinBox()
        self.anomaly_weight_spin = QDoubleSpinBox()
        for s in (self.good_weight_spin, self.anomaly_weight_spin):
            s.setRange(0.01, 100.0)
            s.setDecimals(2)
            s.setSingleStep(0.5)
        cw = QHBoxLayout()
        cw.addWidget(QLabel("good"))
        cw.addWidget(self.good_weight_spin)
        cw.addWidget(QLabel("defective"))
        cw.addWidget(self.anomaly_weight_spin)
        self.early_stop_spin = QDoubleSpinBox()
        self.early_stop_spin.setRange(0.5, 1.0)
        self.early_stop_spin.setDecimals(3)
        self.early_stop_spin.setSingleStep(0.01)
        self.early_stop_spin.setToolTip("Stop when the training accuracy of an epoch reaches this")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.defaults_button = reset = QPushButton("Founding defaults")
        reset.setToolTip(f"vgg16, ImageNet, {defaults.image_size} px, {defaults.epochs} epochs, batch {defaults.batch_size}, "
                         f"lr {defaults.lr:g}, class weights {defaults.class_weights}, early stop {defaults.early_stop_accuracy}")
        reset.clicked.connect(self._on_defaults_clicked)
        opt_box = QGroupBox("Training options")
        of = QFormLayout(opt_box)
        of.addRow("Backbone", self.backbone_combo)
        of.addRow("Backbone weights", self.weights_combo)
        of.addRow("Weights file", wrow)
        of.addRow("Image size", self.image_size_spin)
        of.addRow("Epochs", self.epochs_spin)
        of.addRow("Batch size", self.batch_spin)
        of.addRow("Learning rate", self.lr_spin)
        of.addRow("Class weights", cw)
        of.addRow("Early-stop accuracy", self.early_stop_spin)
        of.addRow("Seed", self.seed_spin)
        of.addRow("", reset)
        self.set_config(defaults)

        # run
        self.train_button = QPushButton("Train")
        self.train_button.setDefault(True)
        self.train_button.setStyleSheet("QPushButton{font-weight:600; padding:6px 18px;}")
        self.train_button.clicked.connect(self._on_train_clicked)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        self.epoch_bar = QProgressBar()
        self.epoch_bar.setFormat("%v of %m epochs done")
        self.step_bar = QProgressBar()
        self.step_bar.setFormat("step %v / %m")
        self.eta_label = QLabel("")
        self.eta_label.setWordWrap(True)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setTextFormat(Qt.TextFormat.RichText)
        self.use_button = QPushButton("Use on live view")
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self._on_use_clicked)
        self.export_button = QPushButton("Export report…")
        self.export_button.setToolTip("Save the held-out report with its gallery as HTML or PDF")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self._on_export_clicked)
        self.saved_label = QLabel("")
        self.saved_label.setWordWrap(True)
        self.saved_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        run_box = QGroupBox("Run")
        rl = QVBoxLayout(run_box)
        rl.addLayout(buttons)
        rl.addWidget(self.epoch_bar)
        rl.addWidget(self.step_bar)
        rl.addWidget(self.eta_label)
        rl.addWidget(self.status_label)
        rl.addWidget(self.saved_label)
        rl.addWidget(self.use_button)
        rl.addWidget(self.export_button)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.addWidget(data_box)
        ll.addWidget(opt_box)
        ll.addWidget(run_box)
        ll.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(left)
        scroll.setMinimumWidth(400)

        # results
        self.loss_plot = self._make_plot("loss", "epoch")
        self.acc_plot = self._make_plot("accuracy", "epoch")
        self.acc_plot.setYRange(0, 1.02, padding=0)
        self.acc_plot.setXLink(self.loss_plot)
        self.curves = {
            "step loss": self.loss_plot.plot([], [], pen=None, symbol="o", symbolSize=3, symbolPen=None,
                                             symbolBrush=pg.mkBrush(*STEP_RGB, 110), name="train loss per step"),
            "train loss": self.loss_plot.plot([], [], pen=pg.mkPen(*TRAIN_PEN, width=2), symbol="o", symbolSize=6,
                                              symbolBrush=TRAIN_PEN, name="train loss"),
            "held-out loss": self.loss_plot.plot([], [], pen=pg.mkPen(*TEST_PEN, width=2), symbol="s", symbolSize=6,
                                                 symbolBrush=TEST_PEN, name="held-out loss"),
            "train accuracy": self.acc_plot.plot([], [], pen=pg.mkPen(*TRAIN_PEN, width=2), symbol="o", symbolSize=6,
                                                 symbolBrush=TRAIN_PEN, name="train accuracy"),
            "held-out accuracy": self.acc_plot.plot([], [], pen=pg.mkPen(*TEST_PEN, width=2), symbol="s", symbolSize=6,
                                                    symbolBrush=TEST_PEN, name="held-out accuracy"),
        }
        self._step_x: list[float] = []
        self._step_y: list[float] = []
        curves = QWidget()
        cl = QVBoxLayout(curves)
        self.curves_label = QLabel("Curves appear here while training.")
        self.curves_label.setStyleSheet("color: #9aa0a6;")
        cl.addWidget(self.curves_label)
        cl.addWidget(self.loss_plot, 1)
        cl.addWidget(self.acc_plot, 1)
        self.report_view = ReportView()
        self.calibration = CalibrationView()
        self.calibration.threshold_stored.connect(self._on_threshold_stored)
        self.results = QTabWidget()
        self.results.addTab(curves, "Curves")
        self.results.addTab(self.report_view, "Held-out report")
        self.results.addTab(self.calibration, "Calibration")

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(scroll)
        split.addWidget(self.results)
        split.setStretchFactor(1, 1)
        split.setSizes([420, 1000])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(split)

    def _make_plot(self, ylabel: str, xlabel: str) -> pg.PlotWidget:
        plot = pg.PlotWidget(background=PLOT_BG)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.setLabel("left", ylabel)
        plot.setLabel("bottom", xlabel)
        plot.addLegend(offset=(-10, 10), labelTextColor="#d0d3d8", brush=pg.mkBrush(30, 32, 36, 200))
        for axis in ("left", "bottom"):
            plot.getAxis(axis).enableAutoSIPrefix(False)
        return plot

    # --- public API -------------------------------------------------------------------------------

    def set_config(self, config: TrainConfig) -> None:
        """Show a TrainConfig's options in the widgets."""
        self.backbone_combo.setCurrentText(config.backbone)
        kind = config.backbone_weights if config.backbone_weights in ("imagenet", "none") else "file"
        self.weights_combo.setCurrentIndex([k for _, k in WEIGHT_KINDS].index(kind))
        self.weights_file_edit.setText("" if kind != "file" else str(config.backbone_weights))
        self.image_size_spin.setValue(config.image_size)
        self.epochs_spin.setValue(config.epochs)
        self.batch_spin.setValue(config.batch_size)
        self.lr_spin.setValue(config.lr)
        self.good_weight_spin.setValue(config.class_weights[0])
        self.anomaly_weight_spin.setValue(config.class_weights[1])
        self.early_stop_spin.setValue(config.early_stop_accuracy)
        self.seed_spin.setValue(config.seed)

    def config(self) -> TrainConfig:
        """The TrainConfig the widgets describe (ValueError/VisInspectError on a bad option)."""
        kind = self.weights_combo.currentData()
        weights = kind
        if kind == "file":
            weights = self.weights_file_edit.text().strip()
            if not weights or not Path(weights).is_file():
                raise VisInspectError(f"backbone weights file not found: {weights or '(none chosen)'}")
        return TrainConfig(
            backbone=self.backbone_combo.currentText(),
            backbone_weights=weights,
            image_size=self.image_size_spin.value(),
            epochs=self.epochs_spin.value(),
            batch_size=self.batch_spin.value(),
            lr=self.lr_spin.value(),
            class_weights=(self.good_weight_spin.value(), self.anomaly_weight_spin.value()),
            early_stop_accuracy=self.early_stop_spin.value(),
            seed=self.seed_spin.value(),
        )

    def set_dataset_folder(self, folder: str, *, good_dir: str | None = None) -> None:
        """Choose a dataset folder (and optionally its good-image folder name); it is read in a worker, dataset_scanned follows."""
        self.folder_edit.setText(str(folder))
        self._scan(good_dir)

    def set_product(self, name: str) -> None:
        self._product_auto = False
        self.product_edit.setText(name)

    def model_path(self) -> Path | None:
        """Where the model will be saved: weights_dir()/<product>.safetensors."""
        name = self.product_edit.text().strip()
        return weights_dir() / f"{name}{MODEL_SUFFIX}" if PRODUCT_NAME.match(name) else None

    def start_training(self) -> bool:
        """Validate and start a run (as the Train button does); False when it did not start."""
        if self._worker.busy():
            return False
        if self.is_scanning():
            self._status("Still reading the dataset folder; press Train again in a moment.", error=True)
            return False
        if self.dataset is None:
            self._status("Choose a dataset folder with good and defective images first.", error=True)
            return False
        path = self.model_path()
        if path is None:
            self._status("Product name: letters, digits, '_', '-' or '.', up to 64 characters.", error=True)
            return False
        try:
            config = self.config()
        except (ValueError, VisInspectError) as exc:
            self._status(str(exc), error=True)
            return False
        if path.exists() and not self._ask_overwrite(path):
            self._status(f"Not started: {path.name} exists. Choose another product name.", error=True)
            return False
        self._reset_results()
        self._t0 = time.perf_counter()
        self._outcome = ""
        self._worker.start(
            train_and_save, self.dataset, config, self.product_edit.text().strip(), str(path), self.gallery_limit,
            on_event=self._on_worker_event, on_failed=self._on_worker_failed,
            on_cancelled=self._on_worker_cancelled, on_finished=self._on_worker_finished,
        )
        self._set_running(True)
        self._status(f"Loading {len(self.dataset.samples)} images at {config.image_size} px and splitting 80/20…")
        return True

    def cancel(self) -> None:
        """Stop the run at its next step; nothing is saved unless training already finished."""
        if self._worker.busy():
            self._worker.stop()
            self.cancel_button.setEnabled(False)
            self._status("Cancelling…")

    def is_busy(self) -> bool:
        return self._worker.busy() or self._export.busy() or self.calibration.is_busy()

    def is_scanning(self) -> bool:
        """True while the dataset folder is being read."""
        return self._scanner is not None

    def shutdown(self, ms: int = 10_000) -> bool:
        """Stop any work and wait for its thread (call before closing the window)."""
        return all([self._worker.wait(ms), self._export.wait(ms), self.calibration.shutdown(ms), self._scanners.wait(ms)])

    def curve_points(self) -> dict[str, tuple[list[float], list[float]]]:
        """The plotted (x, y) points of each curve."""
        out = {}
        for name, item in self.curves.items():
            x, y = item.getData()
            out[name] = ([] if x is None else list(map(float, x)), [] if y is None else list(map(float, y)))
        return out

    def status_text(self) -> str:
        return self.status_label.text()

    # --- slots: inputs ----------------------------------------------------------------------------

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

    def _on_product_edited(self, _text: str) -> None:
        self._product_auto = False

    def _on_product_changed(self, _text: str) -> None:
        path = self.model_path()
        if path is None:
            self.target_label.setText("Product name: letters, digits, '_', '-', '.'")
        else:
            exists = " (exists: you will be asked before it is replaced)" if path.exists() else ""
            self.target_label.setText(f"Saves to {path}{exists}")

    def _on_weights_kind_changed(self, *_args) -> None:
        on = self.weights_combo.currentData() == "file"
        self.weights_file_edit.setEnabled(on)
        self.weights_browse.setEnabled(on)

    def _on_weights_browse_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Backbone weights", "", "Weights (*.pth *.pt *.safetensors)")
        if path:
            self.weights_file_edit.setText(path)

    def _on_image_size_edited(self) -> None:
        v = self.image_size_spin.value()
        self.image_size_spin.setValue(max(32, round(v / 32) * 32))

    def _on_defaults_clicked(self) -> None:
        self.set_config(TrainConfig())

    # --- slots: run -------------------------------------------------------------------------------

    def _on_train_clicked(self) -> None:
        self.start_training()

    def _on_cancel_clicked(self) -> None:
        self.cancel()

    def _on_use_clicked(self) -> None:
        if self.saved_path:
            self.use_model_requested.emit(self.saved_path)

    def _on_worker_event(self, event: object) -> None:
        if isinstance(event, StepReport):
            self._on_step(event)
        elif isinstance(event, EpochReport):
            self._on_epoch(event)
        elif isinstance(event, DataReady):
            self._on_data_ready(event)
        elif isinstance(event, TrainResult):
            self._on_result(event)
        elif isinstance(event, ModelSaved):
            self._on_model_saved(event.path)
        elif isinstance(event, GalleryEntry):
            self.report_view.add_gallery_entry(event)

    def _on_data_ready(self, ev: DataReady) -> None:
        skipped = f"; {len(ev.skipped)} unreadable files skipped" if ev.skipped else ""
        self._status(f"Training on {ev.device}: {ev.n_train} images, {ev.n_test} held out; "
                     f"backbone {ev.backbone_origin}{skipped}.")
        self.epoch_bar.setRange(0, self.epochs_spin.value())
        self.epoch_bar.setValue(0)
        self._epoch_t0 = time.perf_counter()
        self.curves_label.setText(f"{ev.n_train} training images, {ev.n_test} held out.")

    def _on_step(self, ev: StepReport) -> None:
        if self.step_bar.maximum() != ev.steps:
            self.step_bar.setRange(0, ev.steps)
        self.step_bar.setValue(ev.step)
        self.epoch_bar.setRange(0, ev.epochs)
        self.epoch_bar.setValue(ev.epoch - 1)
        self._step_x.append(ev.epoch - 1 + ev.step / ev.steps)
        self._step_y.append(ev.loss)
        self.curves["step loss"].setData(self._step_x, self._step_y)
        rate = self._step_seconds
        if rate is None:
            rate = (time.perf_counter() - self._epoch_t0) / max(1, ev.step)
        remaining = (ev.epochs - ev.epoch) * ev.steps + (ev.steps - ev.step)
        self.eta_label.setText(
            f"epoch {ev.epoch}/{ev.epochs} · step {ev.step}/{ev.steps} · loss {ev.loss:.4f}\n"
            f"elapsed {_fmt_seconds(time.perf_counter() - self._t0)} · ETA {_fmt_seconds(remaining * rate)}"
            " (early stop may end sooner)"
        )

    def _on_epoch(self, ev: EpochReport) -> None:
        self.history.append(ev)
        self._epoch_t0 = time.perf_counter()
        self._step_seconds = ev.seconds / max(1, self.step_bar.maximum())
        self.epoch_bar.setValue(ev.epoch)
        xs = [h.epoch for h in self.history]
        self.curves["train loss"].setData(xs, [h.train_loss for h in self.history])
        self.curves["held-out loss"].setData(xs, [h.test_loss for h in self.history])
        self.curves["train accuracy"].setData(xs, [h.train_accuracy for h in self.history])
        self.curves["held-out accuracy"].setData(xs, [h.test_accuracy for h in self.history])
        stop = "  —  early stop: training accuracy reached the target" if ev.early_stop else ""
        self.curves_label.setText(
            f"epoch {ev.epoch}: train loss {ev.train_loss:.4f}, accuracy {fmt_pct(ev.train_accuracy)}; "
            f"held-out loss {ev.test_loss:.4f}, accuracy {fmt_pct(ev.test_accuracy)} ({ev.seconds:.1f} s){stop}"
        )
        if ev.early_stop or ev.epoch == ev.epochs:
            self._status("Evaluating the held-out images…")

    def _on_result(self, result: TrainResult) -> None:
        self.result = result
        r = result.report
        self.report_view.set_report(r, title=f"Held-out report ({result.meta.product})")
        labels, scores = scores_arrays(r)
        self.calibration.set_data(labels, scores, threshold=result.meta.threshold, model_path=None,
                                  source="the held-out split", data=str(result.meta.dataset.get("root", "")))
        self.results.setCurrentWidget(self.report_view)
        self.eta_label.setText(f"trained {len(result.history)} epochs in {_fmt_seconds(result.seconds)}")
        self._status("Saving the model…")

    def _on_model_saved(self, path: str) -> None:
        self.saved_path = path
        self.calibration.set_model_path(path)
        self.saved_label.setText(f"Saved: {path}")
        self.use_button.setEnabled(True)
        self._status("Model saved. Building the gallery of held-out predictions…")
        self.model_saved.emit(path)

    def _on_worker_failed(self, message: str) -> None:
        self._outcome = "failed"
        self._status(message, error=True)

    def _on_worker_cancelled(self) -> None:
        self._outcome = "cancelled"
        if self.saved_path:
            self._status(f"Gallery stopped. The model was saved to {self.saved_path}.")
        else:
            self._status("Training cancelled; no model was saved.")

    def export_report(self, path: str) -> bool:
        """Write the held-out report (HTML, or PDF for a .pdf path) in a worker; report_exported follows."""
        if self.result is None or self._worker.busy() or self._export.busy():
            return False
        report = self.report_view.report or self.result.report
        self.export_button.setEnabled(False)
        self._status(f"Writing {path}…")
        self._export.start(
            export_report_job, path, report, self.result.meta, self.report_view.gallery.entries(), "the held-out split",
            self.report_view.box_recall_threshold(),
            on_event=self._on_exported, on_failed=self._on_worker_failed,
            on_cancelled=lambda: None, on_finished=lambda: self.export_button.setEnabled(self.result is not None),
        )  # fmt: skip
        return True

    def _on_export_clicked(self) -> None:
        if self.result is not None:
            path = ask_report_path(self, Path(self.saved_path or ".").with_name(f"{self.result.meta.product}-report.html"))
            if path:
                self.export_report(path)

    def _on_exported(self, path: str) -> None:
        self._status(f"Report written to {path}")
        self.report_exported.emit(path)

    def _on_worker_finished(self) -> None:
        self._set_running(False)
        self.export_button.setEnabled(self.result is not None)
        if not self._outcome and self.result is not None:
            r = self.result.report
            self._outcome = "done"
            self._status(
                f"Done in {_fmt_seconds(time.perf_counter() - self._t0)}: held-out accuracy {fmt_pct(r.accuracy)}, "
                f"balanced {fmt_pct(r.balanced_accuracy)}, image AUROC "
                f"{'n/a' if r.image_auroc is None else f'{r.image_auroc:.3f}'}. Review the report, calibrate, "
                "then use the model on the live view."
            )

    def _on_threshold_stored(self, path: str, threshold: float) -> None:
        if self.result is not None:
            meta = self.result.meta
            self.report_view.apply_threshold(threshold, box_threshold=meta.box_threshold,
                                             min_area_fraction=meta.min_area_fraction)
        self.threshold_stored.emit(path, threshold)

    # --- helpers ----------------------------------------------------------------------------------

    def _ask_overwrite(self, path: Path) -> bool:
        """Ask before replacing an existing model file (tests replace this method)."""
        answer = QMessageBox.question(
            self, "Replace model?",
            f"A model named {path.name} already exists in {path.parent}.\n\nReplace it when training finishes?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _scan(self, good_dir: str | None) -> None:
        """Read the dataset folder in a worker (a big dataset on a network share must not freeze the window)."""
        folder = self.folder_edit.text().strip()
        self.dataset = None
        self.train_button.setEnabled(False)
        if self._scanner is not None:
            self._scanner.stop()  # its result is ignored: only the newest scan counts
            self._scanner = None
        if not folder:
            self.dataset_label.setText("No dataset chosen.")
            self.dataset_scanned.emit(None)
            return
        self.dataset_label.setText(f"Reading {html.escape(folder, quote=False)}…")
        worker = Worker(scan_dataset, folder, good_dir)
        worker.event_ready.connect(self._on_scan_ready)
        worker.failed.connect(self._on_scan_failed)
        worker.finished.connect(lambda w=worker: self._on_scan_finished(w))
        self._scanner = self._scanners.start(worker)

    def _on_scan_ready(self, scan: DatasetScan) -> None:
        """Show the layout, counts and masks of the scanned folder (or why it is not a dataset)."""
        if self.sender() is not self._scanner:
            return
        self._scanner = None  # the result is in; the thread only has to end
        self.good_dir_combo.blockSignals(True)
        try:
            self.good_dir_combo.clear()
            self.good_dir_combo.addItems(list(scan.names))
            self.good_dir_combo.setCurrentText(scan.good_dir)
        finally:
            self.good_dir_combo.blockSignals(False)
        index = scan.index
        self.dataset = index
        if index is None:
            self.dataset_label.setText(f"<span style='color:#ff8a80'>{html.escape(scan.error or '', quote=False)}</span>")
            self.dataset_scanned.emit(None)
            return
        self.good_dir_combo.setEnabled(index.layout == "folders")
        counts = ", ".join(f"{k} {v}" for k, v in index.counts().items())
        masks = (f"masks for {index.n_masks} of {index.n_anomaly} defective (pixel AUROC and box recall will be measured)"
                 if index.n_masks else "no masks (image metrics only)")
        layout = "MVTec AD layout" if index.layout == "mvtec" else f"class folders, good = {index.good_dir}"
        self.dataset_label.setText(f"<b>{layout}</b><br>{len(index.samples)} images: {counts}<br>{masks}")
        if self._product_auto:
            name = re.sub(r"[^A-Za-z0-9_.\-]+", "_", Path(scan.folder).name).strip("._-") or "product"
            self.product_edit.setText(name[:64])
        self.train_button.setEnabled(not self._worker.busy())
        self.dataset_scanned.emit(index)

    def _on_scan_failed(self, message: str) -> None:
        """Reading the folder failed unexpectedly: say so where the counts would be."""
        if self.sender() is self._scanner:
            self._scanner = None
            self.dataset_label.setText(f"<span style='color:#ff8a80'>{html.escape(message, quote=False)}</span>")
            self.dataset_scanned.emit(None)

    def _on_scan_finished(self, worker: Worker) -> None:
        """A scan that ended without a result (stopped) is no longer running."""
        if worker is self._scanner:
            self._scanner = None

    def _reset_results(self) -> None:
        self.result = None
        self.saved_path = None
        self.history = []
        self._step_x, self._step_y = [], []
        self._step_seconds = None
        for item in self.curves.values():
            item.setData([], [])
        self.report_view.clear()
        self.calibration.set_model_path(None)
        self.use_button.setEnabled(False)
        self.export_button.setEnabled(False)
        self.saved_label.setText("")
        self.eta_label.setText("")
        self.results.setCurrentIndex(0)
        self.epoch_bar.setValue(0)
        self.step_bar.setValue(0)

    def _set_running(self, running: bool) -> None:
        self.train_button.setEnabled(not running and self.dataset is not None)
        self.cancel_button.setEnabled(running)
        for w in (self.folder_edit, self.good_dir_combo, self.product_edit, self.backbone_combo, self.weights_combo,
                  self.weights_file_edit, self.weights_browse, self.browse_button, self.defaults_button,
                  self.image_size_spin, self.epochs_spin, self.batch_spin, self.lr_spin, self.good_weight_spin,
                  self.anomaly_weight_spin, self.early_stop_spin, self.seed_spin):
            w.setEnabled(not running)
        if not running:
            self._on_weights_kind_changed()
            if self.dataset is not None:
                self.good_dir_combo.setEnabled(self.dataset.layout == "folders")
        if running:
            self.epoch_bar.setRange(0, 0)  # busy until the data is loaded
            self.step_bar.setRange(0, 1)
            self.step_bar.setValue(0)
        else:
            if self.epoch_bar.maximum() == 0:
                self.epoch_bar.setRange(0, 1)
                self.epoch_bar.setValue(0)
        self.busy_changed.emit(running)

    def _status(self, text: str, *, error: bool = False) -> None:
        text = html.escape(text, quote=False)
        self.status_label.setText(f"<span style='color:#ff8a80'>{text}</span>" if error else text)
