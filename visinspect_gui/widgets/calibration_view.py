"""Calibration view: score histograms, a draggable threshold, live confusion, targets, and storing the threshold."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.evaluation.calibrate import (
    Calibration,
    CalibrationError,
    at_threshold,
    calibrate,
    parse_target,
)
from engine.jobs.calibrate import CalibrationDone, calibrate_job
from visinspect_gui.widgets.common import QWIDGETSIZE_MAX, THRESHOLD_DECIMALS, format_threshold, wheel_only_when_focused
from visinspect_gui.widgets.report_view import ConfusionGrid, fmt_pct
from visinspect_gui.widgets.scored_images import ScoredImages, table_rows
from visinspect_gui.workers import Latest

PLOT_BG = "#1e2024"
GOOD_RGB = (70, 190, 120)
ANOMALY_RGB = (235, 95, 80)
LINE_RGB = (255, 210, 60)
N_BINS = 40
SIDE_WIDTH = 360  # the controls beside the plot


class CalibrationView(QWidget):
    """Pick a decision threshold on held-out scores and store it in the model file."""

    threshold_changed = Signal(float)
    threshold_stored = Signal(str, float)
    calibration_stored = Signal(object)  # the CalibrationDone, just before threshold_stored
    store_failed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._labels = np.zeros(0, int)
        self._scores = np.zeros(0, float)
        self._images: ScoredImages | None = None
        self._source = ""
        self._target = "manual"
        self._stored_threshold: float | None = None
        self._updating = False
        self._store = Latest()

        self.plot = pg.PlotWidget(background=PLOT_BG)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setLabel("bottom", "anomaly probability (p ≥ threshold → ANOMALY)")
        self.plot.setLabel("left", "held-out images")
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setXRange(0, 1, padding=0.02)
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.addLegend(offset=(-10, 10), labelTextColor="#d0d3d8", brush=pg.mkBrush(30, 32, 36, 200))
        self.good_hist = pg.PlotDataItem(
            stepMode="center", fillLevel=0, pen=pg.mkPen(*GOOD_RGB, width=2), brush=pg.mkBrush(*GOOD_RGB, 90), name="good"
        )
        self.anomaly_hist = pg.PlotDataItem(
            stepMode="center", fillLevel=0, pen=pg.mkPen(*ANOMALY_RGB, width=2), brush=pg.mkBrush(*ANOMALY_RGB, 90),
            name="defective",
        )
        self.plot.addItem(self.good_hist)
        self.plot.addItem(self.anomaly_hist)
        self.line = pg.InfiniteLine(
            pos=0.5, angle=90, movable=True, bounds=(0.0, 1.0),
            pen=pg.mkPen(*LINE_RGB, width=2), hoverPen=pg.mkPen(255, 255, 255, width=3),
            label=f"threshold {{value:.{THRESHOLD_DECIMALS}f}}", labelOpts={"position": 0.93, "color": LINE_RGB, "fill": (30, 32, 36, 200)},
        )
        self.plot.addItem(self.line)
        self.line.sigPositionChanged.connect(self._on_line_moved)

        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setDecimals(THRESHOLD_DECIMALS)
        self.threshold_spin.setRange(0.0, 1.0001)
        self.threshold_spin.setSingleStep(0.01)
        self.threshold_spin.setValue(0.5)
        self.threshold_spin.valueChanged.connect(self._on_spin_changed)
        self.confusion = ConfusionGrid()
        self.rates = QLabel("–")
        self.rates.setWordWrap(True)
        self.rates.setTextFormat(Qt.TextFormat.RichText)

        self.no_miss_button = QPushButton("No miss")
        self.no_miss_button.setToolTip("Largest threshold that misses no defective held-out image")
        self.no_miss_button.clicked.connect(lambda: self.apply_target("no-miss"))
        self.balanced_button = QPushButton("Balanced")
        self.balanced_button.setToolTip("Threshold with the best balanced accuracy")
        self.balanced_button.clicked.connect(lambda: self.apply_target("balanced"))
        self.false_reject_button = QPushButton("Max false reject")
        self.false_reject_button.setToolTip("Fewest misses while rejecting at most N % of good images")
        self.false_reject_button.clicked.connect(self._on_false_reject_clicked)
        self.false_reject_spin = QDoubleSpinBox()
        self.false_reject_spin.setRange(0.0, 100.0)
        self.false_reject_spin.setDecimals(1)
        self.false_reject_spin.setSuffix(" %")
        self.false_reject_spin.setValue(2.0)
        self.false_reject_spin.valueChanged.connect(self._on_false_reject_percent_changed)
        wheel_only_when_focused(self.threshold_spin, self.false_reject_spin)

        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(["target", "threshold", "missed", "false rejects", "accuracy", "balanced"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setToolTip("Click a row to use its threshold")
        self.table.cellClicked.connect(self._on_table_row_clicked)

        self.store_button = QPushButton("Store threshold in model")
        self.store_button.clicked.connect(lambda: self.store())
        self.status = QLabel("")
        self.status.setWordWrap(True)

        targets = QGroupBox("Targets")
        tg = QGridLayout(targets)
        tg.addWidget(self.no_miss_button, 0, 0)
        tg.addWidget(self.balanced_button, 0, 1)
        tg.addWidget(self.false_reject_button, 1, 0)
        tg.addWidget(self.false_reject_spin, 1, 1)

        side = QWidget()
        sl = QVBoxLayout(side)
        sl.setContentsMargins(0, 0, 0, 0)
        form = QFormLayout()
        form.addRow("Threshold", self.threshold_spin)
        sl.addLayout(form)
        sl.addWidget(self.confusion)
        sl.addWidget(self.rates)
        sl.addWidget(targets)
        sl.addWidget(self.store_button)
        sl.addWidget(self.status)
        sl.addStretch(1)
        side.setMaximumWidth(SIDE_WIDTH)

        upper = self._upper = QSplitter(Qt.Orientation.Horizontal)
        upper.addWidget(self.plot)
        upper.addWidget(side)
        upper.setStretchFactor(0, 1)
        lay = QVBoxLayout(self)
        self.title = QLabel("No held-out scores yet.")
        self.title.setStyleSheet("font-weight: 600;")
        self.title.setWordWrap(True)
        lay.addWidget(self.title)
        vsplit = QSplitter(Qt.Orientation.Vertical)
        vsplit.addWidget(upper)
        vsplit.addWidget(self.table)
        vsplit.setStretchFactor(0, 1)
        vsplit.setStretchFactor(1, 0)
        self.table.setMinimumHeight(self.table.horizontalHeader().sizeHint().height() + 5 * 26 + 6)
        lay.addWidget(vsplit, 1)
        self._set_enabled(False)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        """Plot beside the controls where there is room for both, else above them (the page scrolls)."""
        super().resizeEvent(event)
        wide = self.width() >= 2 * SIDE_WIDTH
        self._upper.setOrientation(Qt.Orientation.Horizontal if wide else Qt.Orientation.Vertical)
        self._upper.widget(1).setMaximumWidth(SIDE_WIDTH if wide else QWIDGETSIZE_MAX)
        self.plot.setMinimumHeight(0 if wide else 240)

    # --- public API ------------------------------------------------------------------------------

    def set_data(self, labels: Sequence[int], scores: Sequence[float], *, threshold: float = 0.5,
                 images: ScoredImages | None = None, source: str = "held-out images", one_class: bool = False) -> None:  # fmt: skip
        """Show held-out labels (1 = anomaly) and p_anomaly scores, starting at the model's threshold; for a good-only
        (one_class) model or images without defects, at the max-false-reject target (the only one without defects)."""
        self._labels = np.asarray(labels, dtype=int)
        self._scores = np.asarray(scores, dtype=float)
        self._source = source
        self._stored_threshold = float(threshold)
        n_good, n_anom = int((self._labels == 0).sum()), int((self._labels == 1).sum())
        top = max(1.0, float(self._scores.max()) if len(self._scores) else 1.0)
        self.line.setBounds((0.0, float(np.nextafter(np.float32(top), np.float32(2.0)))))
        clipped = np.clip(self._scores, 0.0, 1.0)
        lo, hi = (float(clipped.min()), float(clipped.max())) if len(clipped) else (0.0, 1.0)
        pad = max(0.02, 0.08 * (hi - lo))
        lo, hi = max(0.0, lo - pad), min(1.0, hi + pad)  # zoom on the scores: separation is what matters
        edges = np.linspace(lo, hi, N_BINS + 1)
        self.plot.setXRange(lo, hi, padding=0.02)
        self.good_hist.setData(edges, np.histogram(clipped[self._labels == 0], bins=edges)[0].astype(float))
        self.anomaly_hist.setData(edges, np.histogram(clipped[self._labels == 1], bins=edges)[0].astype(float))
        self._rename_legend(f"good ({n_good})", f"defective ({n_anom})")
        how = ("Drag the yellow line or pick a target." if n_anom else
               "No defective images: set the share of good parts you accept rejecting (Max false reject), then store.")
        self.title.setText(f"Calibration on {source}: {n_good} good and {n_anom} defective images. {how}")  # fmt: skip
        self._fill_table()
        self._set_enabled(len(self._scores) > 0)
        self.set_images(images)
        self.set_threshold(threshold, target="model threshold")
        self.status.setText(f"The model's threshold is {format_threshold(threshold)}.")
        self._offer_targets(n_anom > 0)
        if len(self._scores) and (one_class or not n_anom):
            self._apply_false_reject_default(threshold, "good-only model" if one_class else "no defective images")

    def set_images(self, images: ScoredImages | None) -> None:
        """The model file Store writes to and the images it scores again; without them, storing is disabled."""
        self._images = images
        self._update_store_button()

    def model_path(self) -> str | None:
        return self._images.model_path if self._images is not None else None

    def threshold(self) -> float:
        return float(self.line.value())

    def set_threshold(self, value: float, *, target: str = "manual") -> None:
        """Move the threshold line (and spin box) to value."""
        self._updating = True
        try:
            self.line.setValue(float(value))
        finally:
            self._updating = False
        self._target = target
        self._refresh()

    def current(self) -> Calibration:
        """What the shown threshold does on the held-out scores."""
        return at_threshold(self._labels, self._scores, self.threshold(), target=self._target)

    def apply_target(self, target: str) -> Calibration | None:
        """Move the threshold to a target's choice; shows the reason in the status when none can be chosen."""
        try:
            cal = calibrate(self._labels, self._scores, target)
        except CalibrationError as exc:
            self.status.setText(f"<span style='color:#ff8a80'>{exc}</span>")
            return None
        self.set_threshold(cal.threshold, target=cal.target)
        self.status.setText(f"{cal.target}: threshold {format_threshold(cal.threshold)}. Store it to use it on the line.")
        return cal

    def store(self) -> bool:
        """Store the shown threshold (or the target chosen) in a worker, scored as the line will run; threshold_stored follows.

        The calibrate job scores the images again in the precision the line runs at that threshold, and
        chooses the target's threshold on those scores, so the stored value can differ slightly from the one shown.
        """
        images = self._images
        if images is None or self._store.busy() or not len(self._scores):
            return False
        try:
            target = parse_target(self._target).text
        except CalibrationError:
            target = None
        threshold = None if target else self.threshold()
        self.store_button.setEnabled(False)
        what = target or f"threshold {format_threshold(threshold)}"
        self.status.setText(f"Storing {what} in {Path(images.model_path).name} (scoring the images as the line will)…")
        self._store.start(
            calibrate_job, images.model_path, images.data_dir, target=target, threshold=threshold, runtime=images.runtime,
            layout=images.layout, good_dir=images.good_dir, every_image=images.every_image,
            on_event=self._on_store_event, on_failed=self._on_store_failed, on_finished=self._update_store_button,
        )  # fmt: skip
        return True

    def is_busy(self) -> bool:
        return self._store.busy()

    def shutdown(self) -> None:
        self._store.stop()

    # --- slots ------------------------------------------------------------------------------------

    def _on_line_moved(self) -> None:
        if self._updating:
            return
        self._target = "manual"
        self._refresh()

    def _on_spin_changed(self, value: float) -> None:
        if self._updating:
            return
        self._target = "manual"
        self.line.setValue(value)

    def _on_false_reject_clicked(self) -> None:
        self.apply_target(f"max-false-reject:{self.false_reject_spin.value():g}")

    def _on_false_reject_percent_changed(self, _value: float) -> None:
        self._fill_table()
        if self._target.startswith("max-false-reject"):  # the target shown follows its percentage
            self._on_false_reject_clicked()

    def _on_table_row_clicked(self, row: int, _col: int) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            self.apply_target(item.text())

    def _on_store_event(self, done: CalibrationDone) -> None:
        """The threshold is in the model file: show it, and what changed on the way."""
        if not isinstance(done, CalibrationDone):
            return
        cal = done.calibration
        self._stored_threshold = cal.threshold
        self.set_threshold(cal.threshold, target=cal.target)
        notes = "".join(f"<br>{n}" for n in done.notes)
        self.status.setText(
            f"Stored threshold {format_threshold(cal.threshold)} in {done.model_path} (it was {format_threshold(done.previous_threshold)}); "
            f"scored in {done.precision}: missed {cal.fn} of {cal.n_anomaly}, false rejects {cal.fp} of {cal.n_good}.{notes}"
        )
        self.calibration_stored.emit(done)
        self.threshold_stored.emit(done.model_path, cal.threshold)

    def _on_store_failed(self, message: str) -> None:
        self.status.setText(f"<span style='color:#ff8a80'>Could not store the threshold: {message}</span>")
        self.store_failed.emit(message)

    # --- helpers ----------------------------------------------------------------------------------

    def _offer_targets(self, with_defects: bool) -> None:
        """No miss and Balanced need defective images; without them only the false-reject target is offered."""
        reason = "" if with_defects else " (needs defective images; with good images only, use Max false reject)"
        for button, text in ((self.no_miss_button, "Largest threshold that misses no defective held-out image"),
                             (self.balanced_button, "Threshold with the best balanced accuracy")):  # fmt: skip
            button.setEnabled(with_defects and len(self._scores) > 0)
            button.setToolTip(text + reason)

    def _apply_false_reject_default(self, threshold: float, why: str) -> None:
        """Start at the false-reject target: the share of good parts one accepts rejecting is what a good-only line sets."""
        cal = self.apply_target(f"max-false-reject:{self.false_reject_spin.value():g}")
        if cal is not None:
            self.status.setText(f"{cal.target} ({why}): threshold {format_threshold(cal.threshold)}, {cal.fp} of {cal.n_good} "
                                f"good rejected (the model's: {format_threshold(threshold)}). Store it to use it on the line.")  # fmt: skip

    def _set_enabled(self, on: bool) -> None:
        for w in (self.threshold_spin, self.no_miss_button, self.balanced_button, self.false_reject_button,
                  self.false_reject_spin, self.table):
            w.setEnabled(on)
        self.line.setMovable(on)
        self._update_store_button()

    def _update_store_button(self) -> None:
        ok = self._images is not None and len(self._scores) > 0 and not self._store.busy()
        self.store_button.setEnabled(ok)
        self.store_button.setToolTip("" if self._images is not None else "Save the model first")

    def _rename_legend(self, good: str, anomaly: str) -> None:
        legend = self.plot.plotItem.legend
        if legend is None:
            return
        for sample, label in legend.items:
            if sample.item is self.good_hist:
                label.setText(good)
            elif sample.item is self.anomaly_hist:
                label.setText(anomaly)

    def _fill_table(self) -> None:
        unique = table_rows(self._labels, self._scores, self.false_reject_spin.value())
        self.table.setRowCount(len(unique))
        for r, c in enumerate(unique):
            cells = (c.target, format_threshold(c.threshold), f"{c.fn}/{c.n_anomaly}  ({c.miss_rate:.1%})",
                     f"{c.fp}/{c.n_good}  ({c.false_reject_rate:.1%})", f"{c.accuracy:.1%}", f"{c.balanced_accuracy:.1%}")
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, col, item)
        self.table.resizeColumnsToContents()

    def _refresh(self) -> None:
        value = self.threshold()
        self._updating = True
        try:
            self.threshold_spin.setValue(value)
        finally:
            self._updating = False
        if not len(self._scores):
            self.confusion.clear()
            self.rates.setText("–")
            return
        cal = self.current()
        self.confusion.set_counts(cal.tp, cal.fn, cal.fp, cal.tn)
        stored = "" if self._stored_threshold is None else f"<br>model file: {format_threshold(self._stored_threshold)}"
        self.rates.setText(
            f"miss rate <b>{fmt_pct(cal.miss_rate)}</b> ({cal.fn} of {cal.n_anomaly})<br>"
            f"false-reject rate <b>{fmt_pct(cal.false_reject_rate)}</b> ({cal.fp} of {cal.n_good})<br>"
            f"accuracy {fmt_pct(cal.accuracy)}, balanced {fmt_pct(cal.balanced_accuracy)}{stored}"
        )
        self.threshold_changed.emit(value)
