"""Eval tab: evaluate any model file on any dataset folder, with report, gallery, calibration and HTML export."""
from __future__ import annotations

import html
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
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
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.data.images import LoadedSamples, load_samples
from engine.data.layouts import MASK_FOLDER_NAMES, load_dataset
from engine.errors import VisInspectError
from engine.evaluation.calibrate import same_dataset
from engine.evaluation.evaluate import evaluate_loaded, held_out_samples, scores_arrays
from engine.evaluation.metrics import EvalReport
from engine.evaluation.report import GalleryEntry, iter_gallery
from engine.inference.inspector import Inspector
from engine.modelfile import MODEL_SUFFIX, ModelMeta, read_meta
from engine.paths import weights_dir
from visinspect_gui.widgets.calibration_view import CalibrationView
from visinspect_gui.widgets.report_view import ReportView, WorkerSlot, ask_report_path, export_report_job, fmt_pct
from visinspect_gui.workers import Worker, WorkerGroup

LOAD_CHUNK = 32


@dataclass(frozen=True)
class EvalStarted:
    """The images to evaluate were chosen: n of them, and which rule chose them."""

    n: int
    how: str
    meta: ModelMeta


@dataclass(frozen=True)
class EvalProgress:
    """done of total images decoded."""

    done: int
    total: int


@dataclass(frozen=True, eq=False)
class EvalDone:
    """The report on the chosen images, the files that could not be read, and where it came from."""

    report: EvalReport
    errors: tuple[str, ...]
    how: str
    meta: ModelMeta
    model_path: str
    data_dir: str


def evaluate_job(model_path: str, data_dir: str, good_dir: str, every_image: bool, gallery_limit: int, *, stop):
    """Worker generator: choose images (held-out split of the training dataset, else all), evaluate, gallery."""
    inspector = Inspector.from_file(model_path)
    meta = inspector.meta
    index = load_dataset(data_dir, good_dir=good_dir)
    if every_image:
        samples, how = index.samples, f"every image of {Path(data_dir).name} ({len(index.samples)})"
    elif same_dataset(meta, index):
        samples, how = held_out_samples(meta, index)
        how = f"the training dataset's held-out split: {how}"
    else:
        samples, how = index.samples, f"every image of {Path(data_dir).name} (not the model's training dataset)"
    yield EvalStarted(len(samples), how, meta)
    parts: list[LoadedSamples] = []
    for start in range(0, len(samples), LOAD_CHUNK):
        parts.append(load_samples(samples[start : start + LOAD_CHUNK], inspector.preprocess, with_masks=True, stop=stop))
        yield EvalProgress(min(start + LOAD_CHUNK, len(samples)), len(samples))
    data = LoadedSamples(
        images=np.concatenate([p.images for p in parts]) if parts else np.zeros((0, 1, 1, 3), np.uint8),
        samples=tuple(s for p in parts for s in p.samples),
        masks=tuple(m for p in parts for m in p.masks),
        errors=tuple(e for p in parts for e in p.errors),
    )
    if not data.samples:
        raise VisInspectError(f"{data_dir}: none of the {len(samples)} images could be read")
    report = evaluate_loaded(inspector, data, stop=stop)
    yield EvalDone(report, data.errors, how, meta, str(model_path), str(data_dir))
    yield from iter_gallery(inspector, report.scores, limit=gallery_limit, stop=stop)


@dataclass(frozen=True, eq=False)
class ModelProbe:
    """A model file's header read in a worker, and whether its training dataset is still on disk."""

    path: str
    meta: ModelMeta | None
    error: str | None
    dataset_present: bool


def probe_model(path: str, *, stop):
    """Worker body: the model's metadata (or why it cannot be read)."""
    try:
        meta = read_meta(path)
    except VisInspectError as exc:
        yield ModelProbe(path, None, str(exc), False)
        return
    root = meta.dataset.get("root")
    yield ModelProbe(path, meta, None, bool(root) and Path(root).is_dir())


def list_subfolders(folder: str, *, stop):
    """Worker body: the folder's sub-folders that could hold the good images (masks and hidden ones left out)."""
    try:
        names = sorted(p.name for p in Path(folder).iterdir() if p.is_dir() and not p.name.startswith(".")
                       and p.name.lower() not in MASK_FOLDER_NAMES)  # fmt: skip
    except OSError:
        names = []
    yield folder, names


def list_models(folder: Path, *, stop):
    """Worker body: model files in folder, by name."""
    yield [str(p) for p in sorted(folder.glob(f"*{MODEL_SUFFIX}"))] if folder.is_dir() else []


class EvalTab(QWidget):
    """Evaluate a model file against a dataset folder; review, calibrate and export the report."""

    threshold_stored = Signal(str, float)
    report_exported = Signal(str)
    evaluation_finished = Signal()

    def __init__(self, parent: QWidget | None = None, *, gallery_limit: int = 96) -> None:
        super().__init__(parent)
        self.gallery_limit = gallery_limit
        self.done: EvalDone | None = None
        self._worker = WorkerSlot()
        self._export = WorkerSlot()
        self._probes: dict[str, Worker] = {}  # the newest worker reading each input (model, folder, models)
        self._workers = WorkerGroup()
        self._meta: ModelMeta | None = None  # header of the chosen model file
        self._outcome = ""
        self._t0 = 0.0

        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)
        self.model_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.model_combo.setMinimumWidth(380)
        self.model_combo.lineEdit().setPlaceholderText("model file (.safetensors)")
        self.model_combo.currentTextChanged.connect(self._on_model_changed)
        model_browse = QPushButton("Browse…")
        model_browse.clicked.connect(self._on_model_browse_clicked)
        self.model_label = QLabel("")
        self.model_label.setWordWrap(True)
        self.model_label.setStyleSheet("color: #9aa0a6;")
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("dataset folder (MVTec category or class folders)")
        folder_browse = QPushButton("Browse…")
        folder_browse.clicked.connect(self._on_folder_browse_clicked)
        self.good_dir_combo = QComboBox()
        self.good_dir_combo.setEditable(True)
        self.good_dir_combo.setToolTip("For class folders: the folder of good images")
        self.every_check = QCheckBox("every image (not only the held-out split)")
        self.eval_button = QPushButton("Evaluate")
        self.eval_button.setStyleSheet("QPushButton{font-weight:600; padding:6px 18px;}")
        self.eval_button.clicked.connect(self._on_evaluate_clicked)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        self.export_button = QPushButton("Export report…")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self._on_export_clicked)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m images")
        self.status_label = QLabel("Choose a model and a dataset folder, then Evaluate.")
        self.status_label.setWordWrap(True)

        mrow = QHBoxLayout()
        mrow.addWidget(self.model_combo, 1)
        mrow.addWidget(model_browse)
        frow = QHBoxLayout()
        frow.addWidget(self.folder_edit, 1)
        frow.addWidget(folder_browse)
        grow = QHBoxLayout()
        grow.addWidget(self.good_dir_combo, 1)
        grow.addWidget(self.every_check)
        form = QFormLayout()
        form.addRow("Model", mrow)
        form.addRow("", self.model_label)
        form.addRow("Dataset", frow)
        form.addRow("Good folder", grow)
        buttons = QHBoxLayout()
        buttons.addWidget(self.eval_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.export_button)

        self.report_view = ReportView()
        self.calibration = CalibrationView()
        self.calibration.threshold_stored.connect(self._on_threshold_stored)
        self.results = QTabWidget()
        self.results.addTab(self.report_view, "Report")
        self.results.addTab(self.calibration, "Calibration")
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.status_label)
        lay.addWidget(self.results, 1)
        self.refresh_models()

    # --- public API -------------------------------------------------------------------------------

    def refresh_models(self) -> None:
        """List the model files in weights_dir() (read in a worker)."""
        self._probe("models", list_models, weights_dir(), on_ready=self._on_models_listed)

    def is_probing(self) -> bool:
        """True while a model header, the models folder or a dataset folder is being read."""
        return bool(self._probes)

    def set_model(self, path: str) -> None:
        self.model_combo.setCurrentText(str(path))

    def set_dataset_folder(self, folder: str, *, good_dir: str | None = None) -> None:
        """Choose the dataset folder; its sub-folders are listed in a worker for the good-folder choice."""
        self.folder_edit.setText(str(folder))
        self.good_dir_combo.clear()
        self._good_dir_wanted = good_dir
        self._probe("folder", list_subfolders, str(folder), on_ready=self._on_subfolders_listed)

    def start_evaluation(self) -> bool:
        """Start evaluating in a worker (as the Evaluate button does); False when it did not start."""
        if self._worker.busy() or self._export.busy():
            return False
        if self.is_probing():
            self._status("Still reading the model file or dataset folder; press Evaluate again in a moment.", error=True)
            return False
        model, folder = self.model_combo.currentText().strip(), self.folder_edit.text().strip()
        if not model or not folder:
            self._status("Choose a model file and a dataset folder first.", error=True)
            return False
        self.done = None
        self.report_view.clear()
        self.calibration.set_model_path(None)
        self.export_button.setEnabled(False)
        self._outcome = ""
        self._t0 = time.perf_counter()
        self._worker.start(
            evaluate_job, model, folder, self.good_dir_combo.currentText().strip() or "good",
            self.every_check.isChecked(), self.gallery_limit,
            on_event=self._on_worker_event, on_failed=self._on_worker_failed,
            on_cancelled=self._on_worker_cancelled, on_finished=self._on_worker_finished,
        )
        self._set_running(True)
        self._status("Loading the model and indexing the dataset…")
        return True

    def export_report(self, path: str) -> bool:
        """Write the shown report as a self-contained HTML file (or PDF for a .pdf path) in a worker; report_exported follows."""
        if self.done is None or self._export.busy() or self._worker.busy():
            return False
        report = self.report_view.report or self.done.report
        gallery = self.report_view.gallery.entries()
        self.export_button.setEnabled(False)
        self._status(f"Writing {path}…")
        self._export.start(
            export_report_job, path, report, self.done.meta, gallery, self.done.how, self.report_view.box_recall_threshold(),
            on_event=self._on_exported, on_failed=self._on_worker_failed,
            on_cancelled=lambda: None, on_finished=self._on_export_finished,
        )
        return True

    def cancel(self) -> None:
        self._worker.stop()

    def is_busy(self) -> bool:
        return self._worker.busy() or self._export.busy() or self.calibration.is_busy()

    def shutdown(self, ms: int = 10_000) -> bool:
        return all([self._worker.wait(ms), self._export.wait(ms), self.calibration.shutdown(ms), self._workers.wait(ms)])

    # --- slots ------------------------------------------------------------------------------------

    def _on_model_changed(self, text: str) -> None:
        self._meta = None
        if not text.strip():
            self.model_label.setText("")
            return
        self.model_label.setText("Reading the model file…")
        self._probe("model", probe_model, text.strip(), on_ready=self._on_model_probed)

    def _on_model_probed(self, probe: ModelProbe) -> None:
        """Describe the chosen model; propose its own dataset when no folder is chosen yet."""
        if probe.path != self.model_combo.currentText().strip():
            return
        meta = self._meta = probe.meta
        if meta is not None and self.done is not None and Path(self.done.model_path) == Path(probe.path):
            self.done = replace(self.done, meta=meta)
        if meta is None:
            self.model_label.setText(probe.error or "")
            return
        self.model_label.setText(meta.describe() + f"; threshold {meta.threshold:.4f}")
        if probe.dataset_present and not self.folder_edit.text().strip():
            self.set_dataset_folder(meta.dataset["root"], good_dir=meta.dataset.get("good_dir"))

    def _on_subfolders_listed(self, listed) -> None:
        """Offer the folder's sub-folders as the good-image folder, with the best guess chosen."""
        folder, names = listed
        if folder != self.folder_edit.text().strip():
            return
        own = self._meta.dataset.get("good_dir") if self._meta is not None else None
        self.good_dir_combo.clear()
        self.good_dir_combo.addItems(names)
        self.good_dir_combo.setCurrentText(self._good_dir_wanted or own or ("good" if "good" in names else ""))

    def _on_models_listed(self, paths: list) -> None:
        """Fill the model list, keeping what was typed or chosen."""
        current = self.model_combo.currentText()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItems(paths)
        self.model_combo.setCurrentText(current)
        self.model_combo.blockSignals(False)

    def _probe(self, key: str, fn, *args, on_ready) -> None:
        """Read an input in a worker; only the newest read of each kind is used."""
        old = self._probes.get(key)
        if old is not None:
            old.stop()
        worker = Worker(fn, *args)
        worker.event_ready.connect(lambda item, w=worker: self._probes.get(key) is w and on_ready(item))
        worker.failed.connect(self._on_worker_failed)
        worker.finished.connect(lambda w=worker: self._on_probe_finished(key, w))
        self._probes[key] = self._workers.start(worker)

    def _on_probe_finished(self, key: str, worker: Worker) -> None:
        if self._probes.get(key) is worker:
            del self._probes[key]

    def _on_model_browse_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", str(weights_dir()), f"VisInspect model (*{MODEL_SUFFIX})")
        if path:
            self.set_model(path)

    def _on_folder_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Dataset folder", self.folder_edit.text() or str(Path.home()))
        if folder:
            self.set_dataset_folder(folder)

    def _on_evaluate_clicked(self) -> None:
        self.start_evaluation()

    def _on_cancel_clicked(self) -> None:
        self.cancel()

    def _on_export_clicked(self) -> None:
        if self.done is None:
            return
        default = Path(self.done.data_dir).parent / f"{self.done.meta.product}-report.html"
        path = ask_report_path(self, default)
        if path:
            self.export_report(path)

    def _on_worker_event(self, event: object) -> None:
        if isinstance(event, GalleryEntry):
            self.report_view.add_gallery_entry(event)
        elif isinstance(event, EvalProgress):
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.done)
        elif isinstance(event, EvalStarted):
            self.progress.setRange(0, max(1, event.n))
            self.progress.setValue(0)
            self._status(f"Evaluating {event.meta.product} on {event.how}…")
        elif isinstance(event, EvalDone):
            self._on_evaluated(event)

    def _on_evaluated(self, done: EvalDone) -> None:
        self.done = done
        self.report_view.set_report(done.report, title=f"{done.meta.product} on {Path(done.data_dir).name}")
        labels, scores = scores_arrays(done.report)
        self.calibration.set_data(labels, scores, threshold=done.meta.threshold, model_path=done.model_path,
                                  source=done.how, data=done.data_dir)
        skipped = f" {len(done.errors)} unreadable files skipped." if done.errors else ""
        self._status(f"Evaluated {done.report.n} images ({done.how}).{skipped} Building the gallery…")

    def _on_worker_failed(self, message: str) -> None:
        self._outcome = "failed"
        self._status(message, error=True)

    def _on_worker_cancelled(self) -> None:
        self._outcome = "cancelled"
        self._status("Evaluation cancelled." if self.done is None else "Gallery stopped.")

    def _on_worker_finished(self) -> None:
        self._set_running(False)
        if self.done is not None and not self._outcome:
            r = self.done.report
            self._status(f"{self.done.how}: accuracy {fmt_pct(r.accuracy)}, balanced {fmt_pct(r.balanced_accuracy)}, "
                         f"missed {r.fn}, false rejects {r.fp} ({time.perf_counter() - self._t0:.1f} s).")
        self.evaluation_finished.emit()

    def _on_exported(self, path: str) -> None:
        self._status(f"Report written to {path}")
        self.report_exported.emit(path)

    def _on_export_finished(self) -> None:
        self.export_button.setEnabled(self.done is not None)

    def _on_threshold_stored(self, path: str, threshold: float) -> None:
        if self.done is not None:
            meta = self.done.meta
            self.report_view.apply_threshold(threshold, box_threshold=meta.box_threshold,
                                             min_area_fraction=meta.min_area_fraction)
            self.done = replace(self.done, meta=replace(meta, threshold=threshold))
            self.model_label.setText(meta.describe() + f"; threshold {threshold:.4f}")
            self._probe("model", probe_model, path, on_ready=self._on_model_probed)  # the file's new calibration record
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
        text = html.escape(text, quote=False)
        self.status_label.setText(f"<span style='color:#ff8a80'>{text}</span>" if error else text)

