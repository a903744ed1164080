"""Learn from the operator: label buttons on Live, label menus on Review and History, and retrain-and-compare on Train.

Labelling is allowed in operator mode (it is the operator's feedback) and recorded with who gave it. The disk
and database work runs in workers; the window only wires this controller in.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, fields
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QTableView, QWidget

from engine.feedback import DatasetTarget, LabelCounts, label_item, label_result, new_labels_since
from engine.jobs.compare import CompareDone, CompareStarted, compare_job
from engine.modelfile import MODEL_SUFFIX, ModelMeta
from engine.paths import weights_dir
from engine.results import ResultsLog
from engine.results.labels import Label, ResultLabel
from engine.training import TrainConfig
from visinspect_gui.widgets import label_actions
from visinspect_gui.widgets.label_actions import LabelBar, label_menu
from visinspect_gui.widgets.retrain_panel import RetrainPanel
from visinspect_gui.workers import Latest, call, start_worker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetFacts:
    """What the Train tab and the type question need: labels since the model, the dataset's defect types, its folder."""

    counts: LabelCounts
    types: tuple[str, ...]
    root: str


def dataset_facts(results: ResultsLog, meta: ModelMeta) -> DatasetFacts:
    """Read off the GUI thread: the model's dataset, its defect types and the labels added since the model."""
    target = DatasetTarget.of_model(meta, name="the model in use")
    return DatasetFacts(new_labels_since(results, meta), tuple(target.defect_types()), str(target.root))


def config_of(meta: ModelMeta) -> TrainConfig:
    """The training options a model was trained with (those it records), for retraining it the same way."""
    known = {f.name for f in fields(TrainConfig)} - {"device", "workers"}
    return TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta.training.items() if k in known})


def retrained_name(product: str, folder: Path) -> str:
    """product-2, product-3, ...: the first product name whose model file does not exist yet."""
    base = re.sub(r"-\d+$", "", product)[:60] or "product"
    n = 2
    while (folder / f"{base}-{n}{MODEL_SUFFIX}").exists():
        n += 1
    return f"{base}-{n}"


@dataclass
class _Retrain:
    old_path: str
    product: str
    started: bool = False
    new_path: str | None = None


class OperatorLabels(QObject):
    """Adds the labelling controls to the Live, Review and History tabs and the retrain box to the Train tab."""

    labelled = Signal(object)  # ResultLabel
    facts_changed = Signal(object)  # DatasetFacts, or None when the model in use has no dataset folder

    def __init__(self, window) -> None:
        super().__init__(window)
        self.w = window
        self.inspector = None
        self.facts: DatasetFacts | None = None
        self._retrain: _Retrain | None = None
        self._facts_worker, self._comparer = Latest(), Latest()
        self._labellers = []
        self.bar = LabelBar()
        window.live.findChild(QWidget, "LiveSide").layout().insertWidget(3, self.bar)  # under the verdict and its context
        self.panel = RetrainPanel()
        window.train.form_scroll.widget().layout().insertWidget(0, self.panel)
        self.bar.good_clicked.connect(lambda: self.label_live(Label.good()))
        self.bar.defect_clicked.connect(lambda: self._ask_then(self.label_live))
        for table, label in ((window.review.table, self.label_review_row), (window.history.table, self.label_history_row)):
            table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            table.customContextMenuRequested.connect(lambda pos, t=table, f=label: self._context_menu(t, f, pos))
        window.station.model_loaded.connect(self.set_model)
        window.station.result_ready.connect(lambda *_: self.bar.set_available(True))
        window.train.dataset_scanned.connect(self._on_dataset_scanned)
        window.train.model_saved.connect(self._on_model_saved)
        window.train.busy_changed.connect(self._on_train_busy)
        self.panel.retrain_requested.connect(self.retrain)
        self.panel.use_requested.connect(window.train.use_model_requested)

    # -- labelling -----------------------------------------------------------------------------

    def menu_for(self, table: QTableView, label_row):
        """The context menu of a Review or History row: Actually good / Actually defective…."""
        return label_menu(table, lambda: label_row(Label.good()), lambda: self._ask_then(label_row))

    def _context_menu(self, table: QTableView, label_row, pos) -> None:
        """Right-click on a row: make it the current row, then offer the two labels."""
        index = table.indexAt(pos)
        if index.isValid():
            table.setCurrentIndex(index)
            self.menu_for(table, label_row).exec(table.viewport().mapToGlobal(pos))

    def _ask_then(self, label_fn) -> None:
        """Ask for the defect type (the dataset's, or a new one), then label with it."""
        answer = label_actions.ask_defect_type(self.w, list(self.facts.types) if self.facts else [])
        if answer is None:
            return
        try:
            label = Label.defect(answer)
        except ValueError as exc:
            self._failed(f"Not labelled: {exc}.")
            return
        label_fn(label)

    def label_live(self, label: Label) -> None:
        """Label the verdict on the Live tab (the file it came from, or the frame in memory)."""
        result = self.w.live.result
        if result is None:
            self._failed("There is no current result to label.")
            return
        frame, insp = result.frame, result.inspection
        self._start(label_item, self.w.results, frame.path or frame.index, insp.model.sha256, insp.p_anomaly, label,
                    who=self.w.access.who, image=frame.image.copy())  # fmt: skip

    def label_review_row(self, label: Label) -> None:
        """Label the selected Review row (the file reviewed)."""
        review = self.w.review
        index = review.table.currentIndex()
        if not index.isValid():
            self._failed("Select a row to label first.")
            return
        row = review.model.rows[review.proxy.mapToSource(index).row()]
        if row.model is None or row.p_anomaly is None:
            self._failed("This file could not be inspected, so there is no verdict to correct.")
            return
        self._start(label_item, self.w.results, row.path, row.model.sha256, row.p_anomaly, label, who=self.w.access.who)

    def label_history_row(self, label: Label) -> None:
        """Label the selected History row."""
        history = self.w.history
        index = history.table.currentIndex()
        if not index.isValid():
            self._failed("Select a row to label first.")
            return
        row = history.model.rows[index.row()]
        self._start(label_result, self.w.results, row.id, label, who=self.w.access.who)

    def _start(self, fn, *args, **kwargs) -> None:
        worker = start_worker(call, fn, *args, on_event=self._on_labelled, on_failed=self._failed, **kwargs)
        self._labellers = [w for w in self._labellers if w.is_running()] + [worker]

    def _on_labelled(self, record: ResultLabel) -> None:
        folder = Path(record.copy_path).parent
        self.w.show_message(f"Result {record.result_id} marked {record.label.describe()} by {record.who}; "
                            f"image added to {folder.name} in {Path(record.dataset).name}.", "info")  # fmt: skip
        log.info("label: result %d %s by %s -> %s", record.result_id, record.label.describe(), record.who, record.copy_path)
        self.labelled.emit(record)
        self.refresh()

    def _failed(self, text: str) -> None:
        self.w.show_message(text, "warning")

    # -- counts and retraining -----------------------------------------------------------------

    def set_model(self, inspector) -> None:
        """The model in use changed: count the labels added since it was trained."""
        self.inspector = inspector
        self.bar.set_available(False)  # until it judges a frame
        self.refresh()

    def refresh(self) -> None:
        if self.inspector is None:
            return
        self._facts_worker.start(call, dataset_facts, self.w.results, self.inspector.meta, on_event=self._on_facts,
                                 on_failed=self._on_facts_failed)  # fmt: skip

    def _on_facts(self, facts: DatasetFacts) -> None:
        self.facts = facts
        text = f"{facts.counts.describe()}, in {facts.root}."
        self.panel.show_counts(text, can_retrain=facts.counts.total > 0 and self._retrain is None)
        self.facts_changed.emit(facts)

    def _on_facts_failed(self, message: str) -> None:
        self.facts = None
        self.panel.show_counts(f"Labelled images cannot be counted: {message}.", can_retrain=False)
        self.facts_changed.emit(None)

    def retrain(self) -> bool:
        """Train a new model of the product in use on its grown dataset, with the options it was trained with."""
        train = self.w.train
        if self.inspector is None or self.facts is None or train.is_busy() or self._retrain is not None:
            return False
        meta = self.inspector.meta
        try:
            config = config_of(meta)
        except (TypeError, ValueError) as exc:
            self.panel.say(f"The options of the model in use cannot be reused ({exc}); train it from the form instead.")
            return False
        product = retrained_name(meta.product, weights_dir())
        self._retrain = _Retrain(str(self.inspector.path), product)
        self.panel.clear_comparison()
        self.panel.retrain_button.setEnabled(False)
        self.panel.say(f"Retraining as {product} on {Path(self.facts.root).name}…")
        train.options.set_config(config)
        train.set_product(product)
        train.set_dataset_folder(self.facts.root, good_dir=meta.dataset.get("good_dir"))
        return True

    def _on_dataset_scanned(self, index) -> None:
        run = self._retrain
        if run is None or run.started:
            return
        if index is not None and self.w.train.is_scanning():  # the scan's result came; its worker ends a moment later
            QTimer.singleShot(50, lambda: self._on_dataset_scanned(self.w.train.dataset))
            return
        run.started = index is not None and self.w.train.start_training()
        if not run.started:
            self._retrain = None
            self.panel.say(f"Retraining did not start: {self.w.train.status_text()}")
            self.refresh()

    def _on_model_saved(self, path: str) -> None:
        if self._retrain is not None and self._retrain.started:
            self._retrain.new_path = path

    def _on_train_busy(self, busy: bool) -> None:
        """The retraining run ended (its gallery too): compare old and new, never two models' work at once."""
        run = self._retrain
        if busy or run is None or not run.started:
            return
        self._retrain = None
        if run.new_path is None:
            self.panel.say("Retraining ended without a new model; the model in use stays.")
            self.refresh()
            return
        self.panel.say("Scoring the old and the new model on the same held-out images…")
        self._comparer.start(compare_job, run.old_path, run.new_path, runtime=self.w.train.runtime,
                             on_event=self._on_compare_event, on_failed=lambda m: self.panel.say(f"The comparison failed: {m}"))  # fmt: skip

    def _on_compare_event(self, event) -> None:
        if isinstance(event, CompareStarted):
            self.panel.say(f"Scoring both models on {event.how}…")
        elif isinstance(event, CompareDone):
            self.panel.show_comparison(event)
            self.refresh()

    def shutdown(self) -> None:
        self._facts_worker.stop()
        self._comparer.stop()
