"""The Review tab: inspect a whole folder, sort and filter the verdicts, look at any file, export CSV and annotated images."""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from engine.data.decode import read_image
from engine.results import ResultsLog
from engine.sources import list_images
from engine.types import ANOMALY, ERROR, GOOD, Box, Inspection
from visinspect_gui.widgets.common import ListTableModel, elide_middle, glyph_icon, hint
from visinspect_gui.widgets.viewer import ImageViewer
from visinspect_gui.workers import Worker, WorkerGroup

COLUMNS = ("File", "Verdict", "p(anomaly)", "Boxes", "Error")
CSV_HEADER = ("file", "verdict", "p_anomaly", "threshold", "boxes", "error")
VERDICT_COLOURS = {GOOD: QColor(72, 200, 110), ANOMALY: QColor(240, 96, 96), ERROR: QColor(230, 170, 40)}
MIN_ANNOTATED_SIDE = 512  # small images are enlarged before drawing so labels stay legible


@dataclass(frozen=True)
class ReviewRow:
    """One reviewed file: its verdict and score, or the reason it could not be inspected."""

    path: str
    verdict: str
    p_anomaly: float | None = None
    threshold: float | None = None
    boxes: tuple[Box, ...] = ()
    error: str | None = None
    boxes_known: bool = True  # False after a lower threshold made it an ANOMALY: boxes are found when it is opened


def rejudged(row: ReviewRow, threshold: float) -> ReviewRow:
    """The row as it would be judged at threshold (from its stored p(anomaly); errors stay errors)."""
    if row.p_anomaly is None or row.threshold == threshold:
        return row
    verdict = ANOMALY if row.p_anomaly >= threshold else GOOD
    if verdict == row.verdict:
        return replace(row, threshold=threshold)
    if verdict == GOOD:
        return replace(row, verdict=GOOD, threshold=threshold, boxes=(), boxes_known=True)
    return replace(row, verdict=ANOMALY, threshold=threshold, boxes=(), boxes_known=False)


@dataclass(frozen=True)
class ReviewStarted:
    """The folder is listed: how many images it has, and how many an earlier run of this review already did."""

    total: int
    folder: str
    resumed: int = 0


@dataclass(frozen=True)
class ReviewChunk:
    """Rows inspected since the last chunk, and how far the review is."""

    rows: tuple[ReviewRow, ...]
    done: int
    total: int


@dataclass(frozen=True)
class Shown:
    """One file re-inspected for display."""

    path: str
    image: object
    inspection: Inspection


@dataclass(frozen=True)
class Saved:
    """One annotated image written."""

    done: int
    total: int
    path: str | None


# -- worker bodies (no Qt) ------------------------------------------------------------------------


def review_run_id(inspector, folder: str, recursive: bool) -> str:
    """The same run id each time this model reviews this folder, so an interrupted review can be resumed."""
    from engine.results import resumable_run_id

    scope = "recursive" if recursive else "top-level"
    inputs = [str(Path(folder).resolve()), scope, f"threshold {inspector.threshold:.6f}"]
    return resumable_run_id("review", inspector.loaded.sha256, inputs)


def earlier_rows(results: ResultsLog, run_id: str, paths: list[str]) -> dict[str, ReviewRow]:
    """Verdicts an earlier run of this review logged, for files not changed since; keyed by path."""
    from engine.results.log import storable_text

    logged = results.finished_rows(run_id)
    out: dict[str, ReviewRow] = {}
    for path in paths:
        row = logged.get(storable_text(path))
        if row is None:
            continue
        try:
            if os.stat(path).st_mtime > row.time:
                continue  # replaced since it was inspected: inspect it again
        except OSError:
            continue  # gone or unreadable: the new run reports it
        out[path] = ReviewRow(path, row.verdict, row.p_anomaly, row.threshold, row.boxes)
    return out


def review_folder(folder: str, recursive: bool, inspector, results: ResultsLog | None, run_id: str, resume: bool = False, *, stop):
    """List the folder, inspect every image (or those an earlier run did not finish) in batches, log each verdict, yield chunks of rows."""
    paths = [str(p) for p in list_images(folder, recursive=recursive)]
    earlier = earlier_rows(results, run_id, paths) if resume and results is not None else {}
    yield ReviewStarted(total=len(paths), folder=folder, resumed=len(earlier))
    done = len(earlier)
    if earlier:
        yield ReviewChunk(tuple(earlier.values()), done, len(paths))
    todo = [p for p in paths if p not in earlier]
    chunk: list[ReviewRow] = []
    last = time.monotonic()
    source = f"review {folder}"
    for fr in inspector.inspect_files(todo, batch_size=8, keep_images=results is not None, stop=stop):
        done += 1
        if fr.inspection is None:
            row = ReviewRow(path=fr.path, verdict=ERROR, error=fr.error or "could not be inspected")
            if results is not None:
                results.log_error(run_id=run_id, source=source, item=fr.path, model_path=inspector.path, model_hash=inspector.model_id, message=row.error)
        else:
            insp = fr.inspection
            row = ReviewRow(fr.path, insp.verdict, insp.p_anomaly, insp.threshold, insp.boxes)
            if results is not None:
                results.log_inspection(
                    run_id=run_id, source=source, item=fr.path, model_path=inspector.path,
                    model_hash=inspector.model_id, inspection=insp, image=fr.image,
                )  # fmt: skip
        chunk.append(row)
        now = time.monotonic()
        if now - last >= 0.1 or len(chunk) >= 256:
            yield ReviewChunk(tuple(chunk), done, len(paths))
            chunk, last = [], now
    if chunk or not todo:
        yield ReviewChunk(tuple(chunk), done, len(paths))


def write_review_csv(path: str, rows: list[ReviewRow], *, stop):
    """Worker body: the rows as CSV (boxes left empty where a lower threshold flagged a file not yet opened)."""
    tmp = Path(path).with_name(f".{Path(path).name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_HEADER)
        for row in rows:
            writer.writerow((
                row.path, row.verdict,
                "" if row.p_anomaly is None else f"{row.p_anomaly:.6f}",
                "" if row.threshold is None else f"{row.threshold:.6f}",
                json.dumps([b.as_list() for b in row.boxes]) if row.boxes_known else "", row.error or "",
            ))  # fmt: skip
    os.replace(tmp, path)
    yield len(rows), path


def inspect_one(path: str, inspector, *, stop):
    """Read one file and inspect it again, for display with its heatmap."""
    image = read_image(path)
    yield Shown(path, image, inspector.inspect([image])[0])


def annotate(image, inspection: Inspection, *, opacity: float, colormap: int):
    """The image with heatmap and labelled boxes drawn in, enlarged first when it is small."""
    from engine.render import render_overlay

    side = max(image.shape[:2])
    if side < MIN_ANNOTATED_SIDE:
        k = math.ceil(MIN_ANNOTATED_SIDE / side)
        h, w = image.shape[:2]
        image = cv2.resize(image, (w * k, h * k), interpolation=cv2.INTER_CUBIC)
        inspection = replace(
            inspection,
            heatmap=cv2.resize(inspection.heatmap, (w * k, h * k), interpolation=cv2.INTER_LINEAR),
            boxes=tuple(Box(b.x0 * k, b.y0 * k, b.x1 * k, b.y1 * k, b.score) for b in inspection.boxes),
        )
    return render_overlay(image, inspection, opacity=opacity, colormap=colormap)


def save_annotated(paths: list[str], root: str, out_dir: str, inspector, opacity: float, colormap: int, *, stop):
    """Write heatmap-and-box images of paths into out_dir (names keep their sub-folders); yield progress."""
    from engine.render import encode_image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(paths, start=1):
        if stop.is_set():
            return
        image = read_image(path)
        insp = inspector.inspect([image])[0]
        try:
            rel = Path(path).relative_to(root)
        except ValueError:
            rel = Path(Path(path).name)
        target = out / ("__".join(rel.with_suffix("").parts) + "_annotated.png")
        target.write_bytes(encode_image(".png", annotate(image, insp, opacity=opacity, colormap=colormap)))
        yield Saved(i, len(paths), str(target))


# -- table -----------------------------------------------------------------------------------------


class ReviewModel(ListTableModel):
    """Rows of a review; holds only small fields, so 10,000+ files stay light (images are re-read on click)."""

    columns = COLUMNS

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[ReviewRow] = []
        self.root = ""

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row, col = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return self._relative(row.path)
            if col == 1:
                return row.verdict
            if col == 2:
                return "" if row.p_anomaly is None else f"{row.p_anomaly:.4f}"
            if col == 3:
                return "" if row.verdict == ERROR else str(len(row.boxes)) if row.boxes_known else "–"
            return row.error or ""
        if role == Qt.ItemDataRole.UserRole:  # sort key
            return (
                self._relative(row.path),
                row.verdict,
                -1.0 if row.p_anomaly is None else row.p_anomaly,
                -1 if row.verdict == ERROR else len(row.boxes),
                row.error or "",
            )[col]
        if role == Qt.ItemDataRole.ForegroundRole and col == 1:
            return VERDICT_COLOURS.get(row.verdict)
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.error if col == 4 and row.error else row.path
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (2, 3):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _relative(self, path: str) -> str:
        """A path relative to the reviewed folder, for a readable File column."""
        if self.root and path.startswith(self.root):
            return path[len(self.root) :].lstrip("/\\")
        return path

    def add_rows(self, rows) -> None:
        """Append rows as a review goes (the proxy re-sorts and re-filters them)."""
        if not rows:
            return
        first = len(self.rows)
        self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
        self.rows.extend(rows)
        self.endInsertRows()

    def rejudge(self, threshold: float) -> int:
        """Re-judge every row at threshold; returns how many changed verdict."""
        changed = 0
        for i, row in enumerate(self.rows):
            new = rejudged(row, threshold)
            changed += new.verdict != row.verdict
            self.rows[i] = new
        if self.rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.rows) - 1, len(self.columns) - 1))
        return changed

    def set_row(self, i: int, row: ReviewRow) -> None:
        """Put an updated row (e.g. with its boxes found) in place of row i."""
        self.rows[i] = row
        self.dataChanged.emit(self.index(i, 0), self.index(i, len(self.columns) - 1))

    def clear(self, root: str = "") -> None:
        """Empty the table for a new review of root."""
        self.beginResetModel()
        self.rows = []
        self.root = root
        self.endResetModel()

    def counts(self) -> dict[str, int]:
        """How many rows per verdict."""
        out = {GOOD: 0, ANOMALY: 0, ERROR: 0}
        for r in self.rows:
            out[r.verdict] += 1
        return out


class ReviewFilter(QSortFilterProxyModel):
    """Shows rows of one verdict (or all) whose file path contains the filter text."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.verdict = ""
        self.text = ""
        self.setSortRole(Qt.ItemDataRole.UserRole)

    def set_filter(self, *, verdict: str | None = None, text: str | None = None) -> None:
        """Change the verdict and/or text filter and re-filter."""
        if hasattr(self, "beginFilterChange"):  # Qt 6.9+: invalidateFilter is deprecated
            self.beginFilterChange()
        if verdict is not None:
            self.verdict = verdict
        if text is not None:
            self.text = text.casefold()
        if hasattr(self, "endFilterChange"):
            self.endFilterChange()
        else:
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex) -> bool:  # noqa: N802 - Qt API
        row = self.sourceModel().rows[source_row]
        if self.verdict and row.verdict != self.verdict:
            return False
        return not self.text or self.text in row.path.casefold()


# -- the tab -------------------------------------------------------------------------------------


class ReviewTab(QWidget):
    """Batch review of a folder; all file work runs in workers, the table fills as results arrive."""

    review_finished = Signal(str)  # "done", "cancelled" or "failed"
    csv_exported = Signal(int, str)  # rows written, path
    failed = Signal(str)

    def __init__(self, results: ResultsLog | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.results = results
        self.inspector = None
        self.folder: str | None = None
        self.run_id: str | None = None
        self.opacity, self.colormap, self.heatmap_on = 0.45, cv2.COLORMAP_JET, True
        self._batch: Worker | None = None
        self._shower: Worker | None = None
        self._saver: Worker | None = None
        self._workers = WorkerGroup()
        self._t0 = self._t_listed = 0.0
        self._resumed = 0
        self._end_state = "done"

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)

        bar = QHBoxLayout()
        self.folder_button = QPushButton("Choose folder…")
        self.folder_button.clicked.connect(self._on_choose_folder_clicked)
        self.folder_label = QLabel("No folder chosen")
        self.folder_label.setObjectName("FolderLabel")
        self.recursive_box = QCheckBox("Include sub-folders")
        self.recursive_box.setChecked(True)
        self.resume_box = QCheckBox("Resume")
        self.resume_box.setChecked(True)
        self.resume_box.setToolTip(
            "Files this model already reviewed in this folder (and that have not changed since) are shown from the\n"
            "results log instead of being inspected again, so an interrupted review goes on where it stopped."
        )
        self.run_button = QPushButton("Inspect folder")
        self.run_button.setIcon(glyph_icon("play"))
        self.run_button.setObjectName("StartButton")
        self.run_button.clicked.connect(self._on_run_clicked)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        bar.addWidget(self.folder_button)
        bar.addWidget(self.folder_label, 1)
        bar.addWidget(self.recursive_box)
        bar.addWidget(self.resume_box)
        bar.addWidget(self.run_button)
        bar.addWidget(self.cancel_button)
        layout.addLayout(bar)

        progress = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(8)
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("ProgressLabel")
        self.progress_label.setMinimumWidth(300)
        progress.addWidget(self.progress, 1)
        progress.addWidget(self.progress_label)
        layout.addLayout(progress)

        split = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        filters = QHBoxLayout()
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by file name…")
        self.filter_edit.setClearButtonEnabled(True)
        self.verdict_combo = QComboBox()
        for label, value in (("All verdicts", ""), ("GOOD", GOOD), ("ANOMALY", ANOMALY), ("ERROR", ERROR)):
            self.verdict_combo.addItem(label, value)
        self.summary = QLabel("")
        self.summary.setObjectName("Summary")
        filters.addWidget(self.filter_edit, 1)
        filters.addWidget(self.verdict_combo)
        left_layout.addLayout(filters)

        self.model = ReviewModel(self)
        self.proxy = ReviewFilter(self)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setObjectName("ReviewTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col, width in ((1, 90), (2, 100), (3, 60)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Fixed)
            header.resizeSection(col, width)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(4, 160)
        self.table.selectionModel().currentRowChanged.connect(self._on_row_selected)
        left_layout.addWidget(self.table, 1)
        self.filter_edit.textChanged.connect(lambda t: self.proxy.set_filter(text=t))
        self.verdict_combo.currentIndexChanged.connect(lambda _i: self.proxy.set_filter(verdict=self.verdict_combo.currentData()))

        actions = QHBoxLayout()
        actions.addWidget(self.summary, 1)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("Save the rows shown (filters apply) as a CSV file")
        self.export_button.clicked.connect(self._on_export_clicked)
        self.save_button = QPushButton("Save annotated anomalies…")
        self.save_button.setToolTip("Write every ANOMALY image with its heatmap and boxes drawn in to a folder")
        self.save_button.clicked.connect(self._on_save_clicked)
        actions.addWidget(self.export_button)
        actions.addWidget(self.save_button)
        left_layout.addLayout(actions)
        split.addWidget(left)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        self.viewer = ImageViewer(placeholder="Select a row to see the image with its heatmap and boxes.")
        self.detail = hint("")
        self.detail.setObjectName("ReviewDetail")
        right_layout.addWidget(self.viewer, 1)
        right_layout.addWidget(self.detail)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([700, 520])
        layout.addWidget(split, 1)
        self._update_buttons()

    # -- public --------------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        """True while a folder is being reviewed."""
        return self._batch is not None

    def set_inspector(self, inspector) -> None:
        """The model reviews and re-inspections use."""
        self.inspector = inspector
        self._update_buttons()

    def set_overlay(self, *, heatmap_on: bool, opacity: float, colormap: int) -> None:
        """How the heatmap is drawn in the viewer and in annotated exports."""
        self.heatmap_on, self.opacity, self.colormap = heatmap_on, opacity, colormap
        self.viewer.set_overlay(heatmap_on=heatmap_on, opacity=opacity, colormap=colormap)

    def set_folder(self, folder: str) -> None:
        """The folder the next review inspects."""
        self.folder = folder
        self.folder_label.setText(elide_middle(folder, 80))
        self.folder_label.setToolTip(folder)
        self._update_buttons()

    def start(self, folder: str | None = None) -> bool:
        """Review folder (or the chosen one); False with failed when there is no model or folder."""
        if folder is not None:
            self.set_folder(folder)
        if self.inspector is None:
            self.failed.emit("No model is loaded: choose a model in the Model panel first.")
            return False
        if not self.folder or self._batch is not None:
            return False
        recursive = self.recursive_box.isChecked()
        self.run_id = review_run_id(self.inspector, self.folder, recursive)
        root = str(Path(self.folder))
        self.model.clear(root=root + os.sep)
        self.viewer.clear()
        self.detail.setText("")
        self.progress.setRange(0, 0)
        self.progress_label.setText("Listing images…")
        self._t0 = self._t_listed = time.monotonic()
        self._resumed = 0
        resume = self.resume_box.isChecked()
        worker = Worker(review_folder, self.folder, recursive, self.inspector, self.results, self.run_id, resume)
        worker.event_ready.connect(self._on_batch_event)
        worker.failed.connect(self._on_batch_failed)
        worker.cancelled.connect(self._on_batch_cancelled)
        worker.finished.connect(self._on_batch_finished)
        self._batch = worker
        self._end_state = "done"
        self._workers.start(worker)
        self._update_buttons()
        return True

    def cancel(self) -> None:
        """Stop the review or the annotated export; the rows so far stay."""
        for w in (self._batch, self._saver):
            if w is not None:
                w.stop()

    def export_csv(self, path: str | os.PathLike) -> int:
        """Write the rows shown, in the order shown, to a CSV file in a worker; returns how many, csv_exported follows."""
        rows = [self.model.rows[self.proxy.mapToSource(self.proxy.index(r, 0)).row()] for r in range(self.proxy.rowCount())]
        worker = Worker(write_review_csv, str(path), rows)
        worker.event_ready.connect(self._on_csv_written)
        worker.failed.connect(self.failed)
        self._workers.start(worker)
        return len(rows)

    def _on_csv_written(self, written: tuple) -> None:
        """The CSV is on disk: say so."""
        n, path = written
        self.progress_label.setText(f"Exported {n:,} rows to {elide_middle(path, 40)}")
        self.csv_exported.emit(n, path)

    def save_annotated(self, out_dir: str) -> bool:
        """Write annotated copies of every ANOMALY row to out_dir in a worker; False when there is nothing to do."""
        paths = [r.path for r in self.model.rows if r.verdict == ANOMALY]
        if not paths or self.inspector is None or self._saver is not None:
            return False
        worker = Worker(save_annotated, paths, self.model.root, out_dir, self.inspector, self.opacity, self.colormap)
        worker.event_ready.connect(self._on_saved)
        worker.failed.connect(self.failed)
        worker.finished.connect(self._on_save_finished)
        self._saver = worker
        self.progress.setRange(0, len(paths))
        self.progress.setValue(0)
        self.progress_label.setText(f"Saving annotated images to {elide_middle(out_dir, 40)}…")
        self._workers.start(worker)
        self._update_buttons()
        return True

    def rejudge(self, threshold: float) -> None:
        """Show every verdict as it would be at threshold (the slider moved), without inspecting again."""
        if not self.model.rows:
            return
        changed = self.model.rejudge(threshold)
        self.proxy.set_filter()  # a verdict filter may now show other rows
        self._update_summary()
        unknown = sum(not r.boxes_known for r in self.model.rows)
        note = f"; boxes of {unknown:,} newly flagged file(s) are found when you open them" if unknown else ""
        self.progress_label.setText(f"Re-judged at threshold {threshold:.3f}: {changed:,} verdict(s) changed{note}")

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Stop and wait for this tab's workers (window close)."""
        self._workers.wait(timeout_ms)

    # -- batch events --------------------------------------------------------------------------

    def _on_batch_event(self, event) -> None:
        """Add the new rows and update progress, speed and ETA."""
        if self.sender() is not self._batch:
            return
        if isinstance(event, ReviewStarted):
            self.progress.setRange(0, max(1, event.total))
            self.progress.setValue(event.resumed)
            self._resumed = event.resumed
            self._t_listed = time.monotonic()
            if event.resumed:
                self.progress_label.setText(f"Resuming: {event.resumed:,} of {event.total:,} files were already reviewed")
            else:
                self.progress_label.setText(f"0 / {event.total:,}")
        elif isinstance(event, ReviewChunk):
            self.model.add_rows(event.rows)
            self.progress.setValue(event.done)
            elapsed = time.monotonic() - self._t_listed
            inspected = event.done - self._resumed
            if inspected > 0:  # the first chunk of a resumed review is the earlier run's rows: no speed yet
                rate = inspected / elapsed if elapsed > 0 else 0.0
                left = (event.total - event.done) / rate if rate > 0 else 0.0
                eta = f" · ETA {int(left // 60)}:{int(left % 60):02d}" if event.done < event.total else ""
                self.progress_label.setText(f"{event.done:,} / {event.total:,} · {rate:.1f} images/s{eta}")
            self._update_summary()
            if self.results is not None and self.results.last_error:
                self.failed.emit(f"Results are not being saved: {self.results.last_error}")

    def _on_batch_failed(self, message: str) -> None:
        """The review stopped on an error (e.g. the folder vanished): say so."""
        if self.sender() is self._batch:
            self._end_state = "failed"
            self.progress_label.setText(message)
            self.failed.emit(message)

    def _on_batch_cancelled(self) -> None:
        """The review ended because it was cancelled."""
        if self.sender() is self._batch:
            self._end_state = "cancelled"

    def _on_batch_finished(self) -> None:
        """Summarise how the review ended and re-enable the controls."""
        if self.sender() is not self._batch:
            return
        self._batch = None
        state = self._end_state
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        if state == "done":
            self.progress.setValue(self.progress.maximum())
            elapsed = time.monotonic() - self._t0
            earlier = f" ({self._resumed:,} from the earlier run)" if self._resumed else ""
            self.progress_label.setText(f"Done: {len(self.model.rows):,} files in {elapsed:.1f} s{earlier}")
        elif state == "cancelled":
            self.progress_label.setText(f"Cancelled after {len(self.model.rows):,} files")
        self._update_summary()
        self._update_buttons()
        self.review_finished.emit(state)

    def _on_saved(self, event: Saved) -> None:
        """Progress of the annotated export."""
        self.progress.setValue(event.done)
        self.progress_label.setText(f"Saved {event.done} / {event.total} annotated images")

    def _on_save_finished(self) -> None:
        """The annotated export ended."""
        self._saver = None
        self._update_buttons()

    # -- showing one file ----------------------------------------------------------------------

    def _on_row_selected(self, current: QModelIndex, _previous: QModelIndex) -> None:
        """Show the file of the row the operator selected."""
        if not current.isValid():
            return
        row = self.model.rows[self.proxy.mapToSource(current).row()]
        self.show_row(row)

    def show_row(self, row: ReviewRow) -> None:
        """Re-inspect one file in a worker and show it with heatmap and boxes (or its error)."""
        if row.verdict == ERROR:
            self.viewer.clear()
            self.viewer.set_placeholder(f"{Path(row.path).name}\n{row.error}")
            self.detail.setText(f"{row.path}: {row.error}")
            return
        if self.inspector is None:
            return
        if self._shower is not None:
            self._shower.stop()
        worker = Worker(inspect_one, row.path, self.inspector)
        worker.event_ready.connect(self._on_shown)
        worker.failed.connect(self._on_show_failed)
        self._shower = worker
        self.detail.setText(f"Loading {Path(row.path).name}…")
        self._workers.start(worker)

    def _on_shown(self, shown: Shown) -> None:
        """Show the re-inspected file with its heatmap and boxes (the newest request only)."""
        if self.sender() is not self._shower:
            return
        insp = shown.inspection
        i = next((i for i, r in enumerate(self.model.rows) if r.path == shown.path), None)
        row = None if i is None else self.model.rows[i]
        if row is not None and not row.boxes_known and insp.threshold == row.threshold:
            self.model.set_row(i, replace(row, verdict=insp.verdict, boxes=insp.boxes, boxes_known=True))
        self.viewer.show_image(shown.image, insp)
        self.detail.setText(
            f"{shown.path}\n{insp.verdict}  ·  p(anomaly) {insp.p_anomaly:.4f}  ·  threshold {insp.threshold:.3f}"
            f"  ·  {len(insp.boxes)} box(es)"
        )

    def _on_show_failed(self, message: str) -> None:
        """The file could not be read again: say so in the viewer."""
        if self.sender() is self._shower:
            self.viewer.clear()
            self.viewer.set_placeholder(message)
            self.detail.setText(message)

    # -- helpers -------------------------------------------------------------------------------

    def _update_summary(self) -> None:
        """Counts per verdict under the table."""
        c = self.model.counts()
        total = sum(c.values())
        self.summary.setText(f"{total:,} files  ·  {c[GOOD]:,} good  ·  {c[ANOMALY]:,} anomaly  ·  {c[ERROR]:,} error")

    def _update_buttons(self) -> None:
        """Enable only what makes sense now (no second review while one runs)."""
        busy = self._batch is not None
        self.run_button.setEnabled(not busy and bool(self.folder) and self.inspector is not None)
        self.cancel_button.setEnabled(busy or self._saver is not None)
        self.folder_button.setEnabled(not busy)
        self.resume_box.setEnabled(not busy)
        has_rows = bool(self.model.rows)
        self.export_button.setEnabled(has_rows and not busy)
        self.save_button.setEnabled(has_rows and not busy and self._saver is None)

    def _on_choose_folder_clicked(self) -> None:
        """Pick the folder to review."""
        folder = QFileDialog.getExistingDirectory(self, "Folder to review", self.folder or "")
        if folder:
            self.set_folder(folder)

    def _on_run_clicked(self) -> None:
        """Review the chosen folder."""
        self.start()

    def _on_export_clicked(self) -> None:
        """Ask where to write the CSV of the rows shown, then write it."""
        path, _ = QFileDialog.getSaveFileName(self, "Export review as CSV", "review.csv", "CSV files (*.csv)")
        if path:
            self.export_csv(path)

    def _on_save_clicked(self) -> None:
        """Ask for a folder and write annotated copies of the anomalies there."""
        folder = QFileDialog.getExistingDirectory(self, "Folder for annotated images")
        if folder:
            self.save_annotated(folder)
