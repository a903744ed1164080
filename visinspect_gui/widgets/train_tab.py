"""Train tab: a view of the train job (engine.jobs.train): dataset and options, live curves, then the held-out
report, gallery and calibration, scored as the line will run the model."""
from __future__ import annotations

import html
import math
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from engine.errors import BackboneWeightsError, VisInspectError
from engine.evaluation.report import GalleryEntry
from engine.jobs.train import ModelSaved, train_job
from engine.training import TrainConfig
from engine.training.good_only import ModeChosen
from engine.training.recipe import DataReady, EpochReport, StepReport, TrainResult
from engine.types import JobOutcome, RuntimeOptions
from visinspect_gui.widgets.calibration_view import ScoredImages
from visinspect_gui.widgets.common import TAB_ROOM, FoldingLabel, breakable, elide_middle
from visinspect_gui.widgets.config_form import ConfigForm, weights_advice
from visinspect_gui.widgets.dataset_picker import DatasetPicker
from visinspect_gui.widgets.mode_choice import SUPERVISED_ONLY, ModeChoice
from visinspect_gui.widgets.report_view import fmt_pct
from visinspect_gui.widgets.results_pane import ResultsPane
from visinspect_gui.widgets.train_progress import RunProgress, fmt_seconds
from visinspect_gui.widgets.training_curves import TrainingCurves
from visinspect_gui.workers import Latest


def _train_job(dataset, config: TrainConfig, *, stop, **kwargs):
    """The train job, its backbone-weights trouble told in terms of this tab's form (never a command-line flag)."""
    try:
        yield from train_job(dataset, config, stop=stop, **kwargs)
    except BackboneWeightsError as exc:
        raise BackboneWeightsError(weights_advice(config.backbone, str(exc))) from None


class TrainTab(QWidget):
    """Train a product model from a dataset folder and review, calibrate and save it."""

    model_saved = Signal(str)
    use_model_requested = Signal(str)
    threshold_stored = Signal(str, float)
    busy_changed = Signal(bool)
    report_exported = Signal(str)
    dataset_scanned = Signal(object)  # DatasetIndex, or None when the folder is not a usable dataset

    def __init__(self, parent: QWidget | None = None, *, runtime: RuntimeOptions = RuntimeOptions(), gallery_limit: int = 96) -> None:
        super().__init__(parent)
        self.runtime = runtime  # the station's: training runs on its device, the report in the line's precision
        self.gallery_limit = gallery_limit
        self.result: TrainResult | None = None
        self.saved_path: str | None = None
        self._worker = Latest()
        self._build()
        self._set_running(False)

    @property
    def dataset(self):
        return self.picker.dataset

    @property
    def history(self) -> list[EpochReport]:
        return self.curves.history

    def _build(self) -> None:
        self.picker = DatasetPicker()
        self.picker.dataset_scanned.connect(self._on_dataset_scanned)
        self.mode = ModeChoice()
        self.mode.combo.currentIndexChanged.connect(self._on_mode_changed)
        self.options = ConfigForm()
        self.defaults_button = QPushButton("Founding defaults")
        d = TrainConfig()
        self.defaults_button.setToolTip(f"vgg16, ImageNet, {d.image_size} px, {d.epochs} epochs, batch {d.batch_size}, lr {d.lr:g}, "
                                        f"class weights {d.class_weights}, early stop {d.early_stop_accuracy}")  # fmt: skip
        self.defaults_button.clicked.connect(lambda: self.options.set_config(TrainConfig()))
        opt_box = QGroupBox("Training options")
        ob = QVBoxLayout(opt_box)
        ob.addWidget(self.options)
        ob.addWidget(self.defaults_button)

        self.train_button = QPushButton("Train")
        self.train_button.setDefault(True)
        self.train_button.setStyleSheet("QPushButton{font-weight:600; padding:6px 18px;}")
        self.train_button.clicked.connect(self.start_training)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)
        self.progress = RunProgress()
        self.epoch_bar, self.step_bar, self.eta_label = self.progress.epoch_bar, self.progress.step_bar, self.progress.eta_label
        self.status_label = FoldingLabel("Choose a dataset folder and a product name, then Train.")
        self.saved_label = FoldingLabel()
        self.status_label.setTextFormat(Qt.TextFormat.RichText)
        self.saved_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.use_button = QPushButton("Use on live view")
        self.use_button.setEnabled(False)  # until a model is saved
        self.use_button.clicked.connect(lambda: self.saved_path and self.use_model_requested.emit(self.saved_path))
        self.export_button = QPushButton("Export report…")
        self.export_button.setToolTip("Save the held-out report with its gallery as HTML or PDF")
        self.export_button.clicked.connect(self._on_export_clicked)
        after = QHBoxLayout()
        after.addWidget(self.use_button)
        after.addWidget(self.export_button)
        self.run_box = run_box = QGroupBox("Run")  # below the scrolling form: Train, progress and status always in view
        rl = QVBoxLayout(run_box)
        rl.addLayout(buttons)
        for w in (self.progress, self.status_label, self.saved_label):
            rl.addWidget(w)
        rl.addLayout(after)

        form = QWidget()
        fl = QVBoxLayout(form)
        fl.setContentsMargins(0, 0, 0, 0)
        for w in (self.picker, self.mode, opt_box):
            fl.addWidget(w)
        fl.addStretch(1)
        scroll = self.form_scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(form)
        scroll.setMinimumWidth(form.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(scroll, 1)
        ll.addWidget(run_box)

        self.curves = TrainingCurves()
        self.results = ResultsPane()
        self.results.insertTab(0, self.curves, "Curves")
        self.results.setTabText(1, "Held-out report")
        self.report_view, self.calibration = self.results.report_view, self.results.calibration
        self.results.threshold_stored.connect(self._on_threshold_stored)
        self.results.report_exported.connect(self._on_exported)
        self.results.export_failed.connect(lambda m: self._status(m, error=True))
        split = self.splitter = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.results)
        split.setStretchFactor(1, 1)
        split.setSizes([400, 1000])  # the form at its width, the results take the rest
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(split)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        """No more than a 1280x720 window has room for: the window must not open (or grow) past the screen."""
        return super().sizeHint().boundedTo(TAB_ROOM)

    # --- public API -------------------------------------------------------------------------------

    def set_dataset_folder(self, folder: str, *, good_dir: str | None = None) -> None:
        """Choose a dataset folder; it is read in a worker, dataset_scanned follows."""
        self.picker.set_dataset_folder(folder, good_dir=good_dir)

    def set_product(self, name: str) -> None:
        self.picker.set_product(name)

    def model_path(self) -> Path | None:
        return self.picker.model_path()

    def start_training(self) -> bool:
        """Validate and start a run (as the Train button does); False when it did not start."""
        if self._worker.busy():
            return False
        if self.picker.is_scanning():
            self._status("Still reading the dataset folder; press Train again in a moment.", error=True)
            return False
        if self.dataset is None:
            self._status("Choose a dataset folder with good images (and defective ones, if any) first.", error=True)
            return False
        path = self.model_path()
        if path is None:
            self._status("Product name: letters, digits, '_', '-' or '.', up to 64 characters.", error=True)
            return False
        try:
            config = self.options.config(device=self.runtime.device, mode=self.mode.mode())
        except (ValueError, VisInspectError) as exc:
            self._status(str(exc), error=True)
            return False
        if path.exists() and not self._ask_overwrite(path):
            self._status(f"Not started: {path.name} exists. Choose another product name.", error=True)
            return False
        self._reset_results()
        self.progress.begin(config.epochs)
        self._worker.start(
            _train_job, self.dataset, config, product=self.picker.product, out=str(path), runtime=self.runtime,
            gallery_limit=self.gallery_limit, on_event=self._on_worker_event, on_failed=lambda m: self._status(m, error=True),
            on_finished=self._on_worker_finished,
        )  # fmt: skip
        self._set_running(True)
        self._status(f"Loading {len(self.dataset.samples)} images at {config.image_size} px and splitting "
                     f"{1 - config.test_fraction:.0%}/{config.test_fraction:.0%}…")  # fmt: skip
        return True

    def cancel(self) -> None:
        """Stop the run at its next step; nothing is saved unless training already finished."""
        if self._worker.busy():
            self._worker.stop()
            self.cancel_button.setEnabled(False)
            self.eta_label.setText("")
            self._status("Cancelling…")

    def export_report(self, path: str) -> bool:
        """Write the held-out report (HTML, or PDF for a .pdf path) in a worker; report_exported follows."""
        if self.result is None or self._worker.busy() or not self.results.export_report(path):
            return False
        self.export_button.setEnabled(False)
        self._status(f"Writing {path}…")
        return True

    def is_busy(self) -> bool:
        return self._worker.busy() or self.results.busy()

    def is_scanning(self) -> bool:
        return self.picker.is_scanning()

    def shutdown(self) -> None:
        self._worker.stop()
        self.results.shutdown()
        self.picker.shutdown()

    def curve_points(self) -> dict[str, tuple[list[float], list[float]]]:
        return self.curves.points()

    def status_text(self) -> str:
        return self.status_label.text()

    # --- the run ----------------------------------------------------------------------------------

    def _on_dataset_scanned(self, index) -> None:
        self.mode.set_dataset(index)
        self._on_mode_changed()
        self.train_button.setEnabled(index is not None and not self._worker.busy())
        self.dataset_scanned.emit(index)

    def _on_mode_changed(self, *_args) -> None:
        """Good-only fits Gaussians in one pass: the supervised options (epochs, learning rate, ...) are greyed out."""
        self.options.set_unused(SUPERVISED_ONLY if self.mode.effective(self.dataset) == "good-only" else ())

    def _on_worker_event(self, event: object) -> None:
        if isinstance(event, ModeChosen):
            self.progress.mode_chosen(event)
        elif isinstance(event, StepReport):
            self._on_step(event)
        elif isinstance(event, EpochReport):
            self._on_epoch(event)
        elif isinstance(event, DataReady):
            skipped = f"; {len(event.skipped)} unreadable files skipped" if event.skipped else ""
            self._status(f"Training on {event.device}: {event.n_train} images, {event.n_test} held out; "
                         f"backbone {event.backbone_origin}{skipped}.")  # fmt: skip
            self.progress.data_ready()
            self.curves.label.setText(f"{event.n_train} training images, {event.n_test} held out.")
        elif isinstance(event, TrainResult):
            self._on_result(event)
        elif isinstance(event, ModelSaved):
            self._on_model_saved(event)
        elif isinstance(event, GalleryEntry):
            self.results.add_gallery_entry(event)

    def _on_step(self, ev: StepReport) -> None:
        self.progress.step(ev)
        if not math.isnan(ev.loss):  # good-only gathers features: no loss to draw
            self.curves.add_step(ev)

    def _on_epoch(self, ev: EpochReport) -> None:
        self.curves.add_epoch(ev)
        self.progress.epoch(ev)
        if ev.early_stop or ev.epoch == ev.epochs:
            self._status("Evaluating the held-out images as the line will run the model…")

    def _on_result(self, result: TrainResult) -> None:
        self.result = result
        self.results.show_report(result.report, result.meta, title=f"Held-out report ({result.meta.product})",
                                 how="the held-out split", precision=result.precision, images=None)  # fmt: skip
        self.results.setCurrentWidget(self.report_view)
        self.progress.trained(len(result.history), result.seconds)
        self._status("Saving the model…")

    def _on_model_saved(self, saved: ModelSaved) -> None:
        self.saved_path = saved.path
        dataset = self.dataset
        self.results.set_images(ScoredImages(saved.path, str(saved.meta.dataset.get("root", "")), self.runtime,
                                             layout=dataset.layout if dataset else None,
                                             good_dir=dataset.good_dir if dataset else None))  # fmt: skip
        self.saved_label.setText(f"Saved: {breakable(elide_middle(saved.path))}")
        self.saved_label.setToolTip(saved.path)
        self.use_button.setEnabled(True)
        self._status("Model saved. Building the gallery of held-out predictions…")
        self.model_saved.emit(saved.path)

    def _on_worker_finished(self) -> None:
        outcome = self._worker.worker.outcome
        self._set_running(False)
        self.progress.finish(outcome, trained=self.result is not None)
        if outcome is JobOutcome.CANCELLED:
            self._status(f"Gallery stopped. The model was saved to {self.saved_path}." if self.saved_path
                         else "Training cancelled; no model was saved.")  # fmt: skip
        elif outcome is JobOutcome.DONE and self.result is not None:
            r = self.result.report
            auroc = "n/a" if r.image_auroc is None else f"{r.image_auroc:.3f}"
            if not r.tp + r.fn:  # good images only: misses cannot be measured, false rejects can
                self._status(f"Done in {fmt_seconds(self.progress.elapsed())}: {r.fp} of {r.tn + r.fp} held-out good images "
                             "rejected at the model's threshold; no defect image to measure misses. Calibrate to a "
                             "false-reject target, then use the model on the live view.")  # fmt: skip
                return
            self._status(f"Done in {fmt_seconds(self.progress.elapsed())}: held-out accuracy {fmt_pct(r.accuracy)}, "
                         f"balanced {fmt_pct(r.balanced_accuracy)}, image AUROC {auroc}. Review the report, calibrate, "
                         "then use the model on the live view.")  # fmt: skip

    def _on_threshold_stored(self, path: str, threshold: float) -> None:
        self._status(self.results.stored_summary(path, threshold))
        self.threshold_stored.emit(path, threshold)

    def _on_export_clicked(self) -> None:
        if self.result is not None:
            folder = Path(self.saved_path).parent if self.saved_path else Path.home()
            self.results.ask_and_export(folder / f"{self.result.meta.product}-report.html")

    def _on_exported(self, path: str) -> None:
        self.export_button.setEnabled(self.result is not None)
        self._status(f"Report written to {path}")
        self.report_exported.emit(path)

    # --- helpers ----------------------------------------------------------------------------------

    def _ask_overwrite(self, path: Path) -> bool:
        """Ask before replacing an existing model file (tests replace this method)."""
        answer = QMessageBox.question(
            self, "Replace model?",
            f"A model named {path.name} already exists in {path.parent}.\n\nReplace it when training finishes?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No,
        )  # fmt: skip
        return answer == QMessageBox.StandardButton.Yes

    def _reset_results(self) -> None:
        self.result = None
        self.saved_path = None
        self.curves.clear()
        self.results.clear()
        self.use_button.setEnabled(False)
        self.export_button.setEnabled(False)
        self.saved_label.setText("")
        self.progress.clear()
        self.results.setCurrentIndex(0)

    def _set_running(self, running: bool) -> None:
        self.train_button.setEnabled(not running and self.dataset is not None)
        self.cancel_button.setEnabled(running)
        for w in (self.picker, self.mode, self.options, self.defaults_button):
            w.setEnabled(not running)
        self.export_button.setEnabled(not running and self.result is not None)
        self.busy_changed.emit(running)

    def _status(self, text: str, *, error: bool = False) -> None:
        text = html.escape(breakable(text), quote=False)
        self.status_label.setText(f"<span style='color:#ff8a80'>{text}</span>" if error else text)
