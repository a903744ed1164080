"""Evaluate tab: a view of the evaluate job (engine.jobs.evaluate): any model file on any dataset folder, in the
station's runtime, with report, gallery, calibration and export."""
from __future__ import annotations

import html
import time
from pathlib import Path

from PySide6.QtCore import QSize, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.data.layouts import class_folders
from engine.evaluation.report import GalleryEntry
from engine.jobs.evaluate import EvalDone, EvalStarted, LoadProgress, evaluate_job
from engine.modelfile import MODEL_SUFFIX, ModelMeta, list_models, read_meta
from engine.paths import weights_dir
from engine.types import JobOutcome, RuntimeOptions
from visinspect_gui.widgets.calibration_view import ScoredImages
from visinspect_gui.widgets.common import TAB_ROOM, breakable, format_threshold, wheel_only_when_focused
from visinspect_gui.widgets.report_view import fmt_pct
from visinspect_gui.widgets.results_pane import ResultsPane
from visinspect_gui.workers import Latest, call


def subfolder_names(folder: str) -> list[str]:
    """The folder's sub-folders that could hold the good images (mask and hidden folders left out)."""
    try:
        return [p.name for p in class_folders(Path(folder))]
    except OSError:
        return []


class EvalTab(QWidget):
    """Evaluate a model file against a dataset folder; review, calibrate and export the report."""

    threshold_stored = Signal(str, float)
    report_exported = Signal(str)
    evaluation_finished = Signal()

    def __init__(self, parent: QWidget | None = None, *, runtime: RuntimeOptions = RuntimeOptions(), gallery_limit: int = 96) -> None:
        super().__init__(parent)
        self.runtime = runtime  # the station's: evaluations run as the line runs
        self.gallery_limit = gallery_limit
        self.done: EvalDone | None = None
        self._worker = Latest()
        self._probes = {key: Latest() for key in ("model", "folder", "models")}
        self._meta: ModelMeta | None = None  # header of the chosen model file
        self._good_dir_wanted: str | None = None
        self._model_chosen = False  # a model was typed or chosen here: the station's loaded one no longer replaces it
        self._folder_proposed = ""  # the folder this tab filled in (the model's own dataset); a typed one is never replaced
        self._t0 = 0.0

        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)
        self.model_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(24)  # long paths scroll in the field, they do not widen the tab
        self.model_combo.lineEdit().setPlaceholderText("model file (.safetensors)")
        self.model_combo.currentTextChanged.connect(self._on_model_changed)
        self.model_combo.lineEdit().textEdited.connect(self._on_model_typed)
        self.model_combo.activated.connect(self._on_model_typed)
        model_browse = QPushButton("Browse…")
        model_browse.clicked.connect(self._on_model_browse_clicked)
        self.model_label = QLabel("")
        self.model_label.setWordWrap(True)
        self.model_label.setStyleSheet("color: #9aa0a6;")
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("dataset folder (MVTec category or class folders)")
        self.folder_edit.editingFinished.connect(self._on_folder_edited)
        self.folder_edit.textEdited.connect(lambda _t: setattr(self, "_folder_proposed", None))  # the user's from now on
        folder_browse = QPushButton("Browse…")
        folder_browse.clicked.connect(self._on_folder_browse_clicked)
        self.good_dir_combo = QComboBox()
        self.good_dir_combo.setEditable(True)
        self.good_dir_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.good_dir_combo.setMinimumContentsLength(10)
        self.good_dir_combo.setToolTip("For class folders: the folder of good images (default: the one the model was trained with)")
        wheel_only_when_focused(self.model_combo, self.good_dir_combo)
        self.every_check = QCheckBox("every image (not only the held-out split)")
        self.eval_button = QPushButton("Evaluate")
        self.eval_button.setStyleSheet("QPushButton{font-weight:600; padding:6px 18px;}")
        self.eval_button.clicked.connect(self.start_evaluation)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.export_button = QPushButton("Export report…")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self._on_export_clicked)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m images")
        self.status_label = QLabel("Choose a model and a dataset folder, then Evaluate.")
        self.status_label.setWordWrap(True)
        self.results = ResultsPane()
        self.report_view, self.calibration = self.results.report_view, self.results.calibration
        self.results.threshold_stored.connect(self._on_threshold_stored)
        self.results.report_exported.connect(self._on_exported)
        self.results.export_failed.connect(lambda m: self._status(m, error=True))

        form = QFormLayout()
        for label, widgets in (("Model", (self.model_combo, model_browse)), ("", (self.model_label,)),
                               ("Dataset", (self.folder_edit, folder_browse)), ("Good folder", (self.good_dir_combo, self.every_check))):  # fmt: skip
            row = QHBoxLayout()
            for i, w in enumerate(widgets):
                row.addWidget(w, 1 if i == 0 else 0)
            form.addRow(label, row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.eval_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.export_button)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.status_label)
        lay.addWidget(self.results, 1)
        self.refresh_models()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        """No more than a 1280x720 window has room for: the window must not open (or grow) past the screen."""
        return super().sizeHint().boundedTo(TAB_ROOM)

    # --- public API -------------------------------------------------------------------------------

    def refresh_models(self) -> None:
        """List the model files in weights_dir() (read in a worker)."""
        self._probes["models"].start(call, list_models, weights_dir(), on_event=self._on_models_listed)

    def is_probing(self) -> bool:
        """True while a model header, the models folder or a dataset folder is being read."""
        return any(p.busy() for p in self._probes.values())

    def set_model(self, path: str) -> None:
        """Choose a model file (as Browse does); the station's loaded model no longer replaces it."""
        self._model_chosen = True
        self.model_combo.setCurrentText(str(path))

    def set_loaded_model(self, path: str) -> None:
        """The model the station has loaded: selected here unless a model was already typed or chosen."""
        if not self._model_chosen and not self._worker.busy():
            self.model_combo.setCurrentText(str(path))

    def set_dataset_folder(self, folder: str, *, good_dir: str | None = None) -> None:
        """Choose the dataset folder (as Browse does); its sub-folders are listed in a worker for the good-folder choice."""
        self._folder_proposed = None
        self.folder_edit.setText(str(folder))
        self._good_dir_wanted = good_dir
        if folder:
            self._probes["folder"].start(call, lambda f=str(folder): (f, subfolder_names(f)), on_event=self._on_subfolders_listed)

    def start_evaluation(self) -> bool:
        """Start evaluating in a worker (as the Evaluate button does); False when it did not start."""
        if self._worker.busy() or self.results.busy():
            return False
        if self.is_probing():
            self._status("Still reading the model file or dataset folder; press Evaluate again in a moment.", error=True)
            return False
        model, folder = self.model_combo.currentText().strip(), self.folder_edit.text().strip()
        if not model or not folder:
            self._status("Choose a model file and a dataset folder first.", error=True)
            return False
        self.done = None
        self.results.clear()
        self._t0 = time.perf_counter()
        self._worker.start(
            evaluate_job, model, folder, runtime=self.runtime, good_dir=self._good_dir(), every_image=self.every_check.isChecked(),
            gallery_limit=self.gallery_limit, on_event=self._on_worker_event, on_failed=lambda m: self._status(m, error=True),
            on_finished=self._on_worker_finished,
        )  # fmt: skip
        self._set_running(True)
        self._status("Loading the model and indexing the dataset…")
        return True

    def export_report(self, path: str) -> bool:
        """Write the shown report (HTML, or PDF for a .pdf path) in a worker; report_exported follows."""
        if self.done is None or self._worker.busy() or not self.results.export_report(path):
            return False
        self.export_button.setEnabled(False)
        self._status(f"Writing {path}…")
        return True

    def cancel(self) -> None:
        self._worker.stop()

    def is_busy(self) -> bool:
        return self._worker.busy() or self.results.busy()

    def shutdown(self) -> None:
        self._worker.stop()
        self.results.shutdown()
        for probe in self._probes.values():
            probe.stop()

    # --- slots ------------------------------------------------------------------------------------

    def _good_dir(self) -> str | None:
        """The good-image folder chosen, or None for the model's own."""
        return self.good_dir_combo.currentText().strip() or None

    def _on_model_changed(self, text: str) -> None:
        self._meta = None
        self.model_label.setText("Reading the model file…" if text.strip() else "")
        if text.strip():
            self._probes["model"].start(call, read_meta, text.strip(), on_event=self._on_model_read,
                                        on_failed=self.model_label.setText)  # fmt: skip

    def _on_model_read(self, meta: ModelMeta) -> None:
        """Describe the chosen model; with no folder chosen yet, propose its own dataset when it is there."""
        self._meta = meta
        self.model_label.setText(meta.describe() + f"; threshold {format_threshold(meta.threshold)}")
        root = meta.dataset.get("root")
        if root and self._may_propose():
            model = self.model_combo.currentText().strip()
            self._probes["folder"].start(call, lambda r=root: (r, subfolder_names(r)) if Path(r).is_dir() else None,
                                         on_event=lambda listed: self._on_own_dataset(model, listed))  # fmt: skip

    def _may_propose(self) -> bool:
        """The folder field is empty or holds this tab's own proposal, not something the user typed or chose."""
        return self.folder_edit.text().strip() in ("", self._folder_proposed)

    def _on_own_dataset(self, model: str, listed) -> None:
        """Propose the model's own dataset, unless the model was changed or a folder typed in the meantime."""
        if listed is None or model != self.model_combo.currentText().strip() or not self._may_propose():
            return
        self.folder_edit.setText(listed[0])
        self._folder_proposed = listed[0]
        self._on_subfolders_listed(listed)

    def _on_model_typed(self, *_args) -> None:
        self._model_chosen = True

    def _on_subfolders_listed(self, listed) -> None:
        """Offer the folder's sub-folders as the good-image folder; the model's own is the default."""
        folder, names = listed
        if folder != self.folder_edit.text().strip():
            return
        own = self._meta.dataset.get("good_dir") if self._meta is not None else None
        self.good_dir_combo.clear()
        self.good_dir_combo.addItems(names)
        self.good_dir_combo.setCurrentText(self._good_dir_wanted or (own if own in names else ""))

    def _on_models_listed(self, listings: list) -> None:
        """Fill the model list, keeping what was typed or chosen."""
        current = self.model_combo.currentText()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItems([str(m.path) for m in listings if m.meta is not None])
        self.model_combo.setCurrentText(current)
        self.model_combo.blockSignals(False)

    def _on_folder_edited(self) -> None:
        folder = self.folder_edit.text().strip()
        if self._folder_proposed is None:  # typed here: list it for the good-folder choice
            self.set_dataset_folder(folder)

    def _on_model_browse_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", str(weights_dir()), f"VisInspect model (*{MODEL_SUFFIX})")
        if path:
            self.set_model(path)

    def _on_folder_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Dataset folder", self.folder_edit.text() or str(Path.home()))
        if folder:
            self.set_dataset_folder(folder)

    def _on_export_clicked(self) -> None:
        if self.done is not None:
            self.results.ask_and_export(Path(self.done.data_dir).parent / f"{self.done.meta.product}-report.html")

    def _on_worker_event(self, event: object) -> None:
        if isinstance(event, GalleryEntry):
            self.results.add_gallery_entry(event)
        elif isinstance(event, LoadProgress):
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.done)
        elif isinstance(event, EvalStarted):
            self.progress.setRange(0, max(1, event.n))
            self.progress.setValue(0)
            self._status(f"Evaluating {event.meta.product} on {event.how}, {event.runtime}…")
        elif isinstance(event, EvalDone):
            self._on_evaluated(event)

    def _on_evaluated(self, done: EvalDone) -> None:
        self.done = done
        images = ScoredImages(done.model_path, done.data_dir, self.runtime, good_dir=self._good_dir(),
                              every_image=self.every_check.isChecked())  # fmt: skip
        self.results.show_report(done.report, done.meta, title=f"{done.meta.product} on {Path(done.data_dir).name}",
                                 how=done.how, precision=done.precision, images=images)  # fmt: skip
        skipped = f" {len(done.errors)} unreadable files skipped." if done.errors else ""
        self._status(f"Evaluated {done.report.n} images ({done.how}, scored in {done.precision}).{skipped} Building the gallery…")

    def _on_worker_finished(self) -> None:
        outcome = self._worker.worker.outcome
        self._set_running(False)
        if outcome is JobOutcome.CANCELLED:
            self._status("Evaluation cancelled." if self.done is None else "Gallery stopped.")
        elif self.done is not None and outcome is JobOutcome.DONE:
            r, took = self.done.report, f"({time.perf_counter() - self._t0:.1f} s)"
            if not r.tp + r.fn:  # good images only: how many are rejected is what can be measured
                self._status(f"{self.done.how}: {r.fp} of {r.n} good images rejected ({fmt_pct(r.fp / max(1, r.n))}); no defect "
                             f"image to measure misses: calibrate to a false-reject target {took}.")  # fmt: skip
            else:
                self._status(f"{self.done.how}: accuracy {fmt_pct(r.accuracy)}, balanced {fmt_pct(r.balanced_accuracy)}, "
                             f"missed {r.fn}, false rejects {r.fp} {took}.")  # fmt: skip
        self.evaluation_finished.emit()

    def _on_exported(self, path: str) -> None:
        self.export_button.setEnabled(self.done is not None)
        self._status(f"Report written to {path}")
        self.report_exported.emit(path)

    def _on_threshold_stored(self, path: str, threshold: float) -> None:
        self._status(self.results.stored_summary(path, threshold))
        if self._meta is not None and self.model_combo.currentText().strip() == path:
            self._on_model_changed(path)  # the file's new threshold and calibration record
        self.threshold_stored.emit(path, threshold)

    # --- helpers ----------------------------------------------------------------------------------

    def _set_running(self, running: bool) -> None:
        self.eval_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.export_button.setEnabled(not running and self.done is not None)
        for w in (self.model_combo, self.folder_edit, self.good_dir_combo, self.every_check):
            w.setEnabled(not running)
        if running:
            self.progress.setRange(0, 0)
        elif self.progress.maximum() == 0:
            self.progress.setRange(0, 1)

    def _status(self, text: str, *, error: bool = False) -> None:
        text = html.escape(breakable(text), quote=False)
        self.status_label.setText(f"<span style='color:#ff8a80'>{text}</span>" if error else text)
