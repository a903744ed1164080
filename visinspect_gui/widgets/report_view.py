"""Shared held-out report widgets: confusion grid, metrics panel, per-type table, prediction gallery."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QBrush, QColor, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QGridLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.evaluation.metrics import EvalReport
from engine.evaluation.report import GalleryEntry, gallery_order, rethreshold, thumbnail
from engine.thresholds import Thresholds
from visinspect_gui.widgets.common import format_threshold

OK_BG, BAD_BG, ZERO_BG = "#1f4a33", "#6b2626", "#2b2e33"
WRONG_ITEM_BG = "#4a2424"
OK_FG, BAD_FG = "#7ee2a8", "#ff8a80"
ICON_SIDE = 150


def rgb_pixmap(rgb: np.ndarray) -> QPixmap:
    """QPixmap copy of an RGB uint8 HxWx3 array (GUI thread only)."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QPixmap.fromImage(QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy())


def square_pixmap(rgb: np.ndarray, side: int) -> QPixmap:
    """The image centred on a transparent side x side canvas, so gallery captions line up."""
    canvas = QPixmap(side, side)
    canvas.fill(Qt.GlobalColor.transparent)
    pix = rgb_pixmap(rgb)
    painter = QPainter(canvas)
    painter.drawPixmap((side - pix.width()) // 2, (side - pix.height()) // 2, pix)
    painter.end()
    return canvas


def fmt_pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1%}"


def fmt_num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


class ConfusionGrid(QWidget):
    """2x2 confusion matrix: rows are the truth (Good, Anomaly), columns the verdict (Good, Anomaly)."""

    CELLS = {"tn": (0, 0, "correct accept", True), "fp": (0, 1, "false reject", False),
             "fn": (1, 0, "missed", False), "tp": (1, 1, "caught", True)}

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setSpacing(4)
        grid.setContentsMargins(0, 0, 0, 0)
        head = QLabel("verdict →\ntruth ↓")
        head.setAlignment(Qt.AlignmentFlag.AlignCenter)
        head.setStyleSheet("color: #9aa0a6; font-size: 11px;")
        grid.addWidget(head, 0, 0)
        for col, text in enumerate(("Good", "Anomaly"), start=1):
            lab = QLabel(text)
            lab.setAlignment(Qt.AlignmentFlag.AlignCenter)
            lab.setStyleSheet("font-weight: 600;")
            grid.addWidget(lab, 0, col)
        for row, text in enumerate(("Good", "Anomaly"), start=1):
            lab = QLabel(text)
            lab.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            lab.setStyleSheet("font-weight: 600;")
            grid.addWidget(lab, row, 0)
        self._cells: dict[str, QLabel] = {}
        for key, (r, c, _caption, _ok) in self.CELLS.items():
            cell = QLabel()
            cell.setAlignment(Qt.AlignmentFlag.AlignCenter)
            cell.setMinimumSize(104, 58)
            cell.setObjectName(f"confusion_{key}")
            grid.addWidget(cell, r + 1, c + 1)
            self._cells[key] = cell
        self._counts = dict.fromkeys(self.CELLS, 0)
        self.clear()

    def clear(self) -> None:
        for key in self.CELLS:
            self._render(key, None)
        self._counts = dict.fromkeys(self.CELLS, 0)

    def set_counts(self, tp: int, fn: int, fp: int, tn: int) -> None:
        self._counts = {"tp": int(tp), "fn": int(fn), "fp": int(fp), "tn": int(tn)}
        for key, value in self._counts.items():
            self._render(key, value)

    def counts(self) -> dict[str, int]:
        """The shown counts: {'tp', 'fn', 'fp', 'tn'}."""
        return dict(self._counts)

    def _render(self, key: str, value: int | None) -> None:
        _, _, caption, ok = self.CELLS[key]
        if value is None:
            bg, fg, text = ZERO_BG, "#9aa0a6", "–"
        elif ok:
            bg, fg, text = OK_BG, OK_FG, str(value)
        else:
            bg, fg, text = (BAD_BG, BAD_FG, str(value)) if value else (ZERO_BG, "#c8ccd0", "0")
        cell = self._cells[key]
        cell.setText(f"<div style='font-size:20px;font-weight:600;color:{fg}'>{text}</div>"
                     f"<div style='font-size:11px;color:#c8ccd0'>{caption}</div>")
        cell.setStyleSheet(f"background:{bg}; border-radius:4px; padding:4px;")


class MetricsPanel(QWidget):
    """Held-out numbers as a two-column form."""

    ROWS = ("images", "threshold", "accuracy", "balanced accuracy", "miss rate", "false-reject rate",
            "image AUROC", "pixel AUROC", "box recall", "needs review", "not product")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setHorizontalSpacing(14)
        form.setVerticalSpacing(3)
        self._values: dict[str, QLabel] = {}
        for name in self.ROWS:
            value = QLabel("–")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setStyleSheet("font-weight: 600;")
            form.addRow(name, value)
            self._values[name] = value

    def text(self, name: str) -> str:
        return self._values[name].text()

    def set_report(self, report: EvalReport | None, *, box_recall_note: str = "") -> None:
        if report is None:
            for v in self._values.values():
                v.setText("–")
            return
        n_anom, n_good = report.tp + report.fn, report.fp + report.tn
        values = {
            "images": f"{report.n}  ({n_good} good, {n_anom} defective)",
            "threshold": format_threshold(report.threshold),
            "accuracy": fmt_pct(report.accuracy),
            "balanced accuracy": fmt_pct(report.balanced_accuracy),
            "miss rate": f"{fmt_pct(report.fn / n_anom if n_anom else None)}  ({report.fn} of {n_anom})",
            "false-reject rate": f"{fmt_pct(report.fp / n_good if n_good else None)}  ({report.fp} of {n_good})",
            "image AUROC": fmt_num(report.image_auroc),
            "pixel AUROC": fmt_num(report.pixel_auroc) + (f"  ({report.n_masks} masks)" if report.pixel_auroc is not None else "  (no masks)"),
            "box recall": fmt_num(report.box_recall) + (f"  {box_recall_note}" if box_recall_note and report.box_recall is not None else ""),
            "needs review": "–  (no review band)" if report.accept is None else f"{fmt_pct(report.review_rate)}  ({report.review} of {report.n})",
            "not product": "–  (guard off)" if report.ood_limit is None else f"{fmt_pct(report.not_product_rate)}  ({report.not_product} of {report.n})",
        }
        for k, v in values.items():
            self._values[k].setText(v)


class PerTypeTable(QTableWidget):
    """Images and correct verdicts per defect type."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 3, parent)
        self.setHorizontalHeaderLabels(["type", "images", "correct"])
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.horizontalHeader().setStretchLastSection(True)
        self._natural_width = 240

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        """As wide as its columns need (the last one stretches into any room beyond)."""
        return QSize(self._natural_width, super().sizeHint().height())

    def set_report(self, report: EvalReport | None) -> None:
        groups: dict[str, list[int]] = {}
        for s in report.scores if report is not None else ():
            g = groups.setdefault(s.defect_type, [0, 0])
            g[0] += 1
            g[1] += int(s.predicted == s.label)
        self.setRowCount(len(groups))
        for row, kind in enumerate(sorted(groups, key=lambda k: (k != "good", k))):
            n, ok = groups[kind]
            for col, text in enumerate((kind, str(n), f"{ok}  ({ok / n:.0%})")):
                item = QTableWidgetItem(text)
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if col == 2 and ok < n:
                    item.setForeground(QBrush(QColor(BAD_FG)))
                self.setItem(row, col, item)
        self.resizeColumnsToContents()
        self._natural_width = sum(self.columnWidth(c) for c in range(self.columnCount())) + 2 * self.frameWidth() + 4
        self.updateGeometry()
        rows = max(1, self.rowCount())
        self.setFixedHeight(min(260, self.horizontalHeader().sizeHint().height() + rows * self.verticalHeader().defaultSectionSize() + 4))


class Gallery(QListWidget):
    """Thumbnails of held-out predictions with heatmap and boxes; misclassified ones first and outlined red."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setIconSize(QSize(ICON_SIDE, ICON_SIDE))
        self.setGridSize(QSize(ICON_SIDE + 24, ICON_SIDE + 54))
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setWordWrap(True)
        self.setUniformItemSizes(True)
        self.setSpacing(4)
        self.setMinimumHeight(ICON_SIDE + 54 + 16)  # at least one row of thumbnails, however little room the page has
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self._entries: list[GalleryEntry] = []

    def entries(self) -> list[GalleryEntry]:
        return list(self._entries)

    def clear_entries(self) -> None:
        self._entries = []
        self.clear()

    def add_entry(self, entry: GalleryEntry) -> None:
        self._entries.append(entry)
        self._add_item(entry)

    def set_entries(self, entries: Sequence[GalleryEntry]) -> None:
        self._entries = gallery_order(list(entries))
        self.clear()
        for e in self._entries:
            self._add_item(e)

    def _add_item(self, entry: GalleryEntry) -> None:
        insp = entry.inspection
        wrong = entry.misclassified
        name = Path(entry.path).name
        tag = ("MISSED" if entry.label == 1 else "FALSE REJECT") if wrong else ""
        item = QListWidgetItem(QIcon(square_pixmap(thumbnail(entry.image, insp, ICON_SIDE), ICON_SIDE)),
                               f"{insp.verdict.value}  {insp.p_anomaly:.3f}\n{tag or Path(entry.path).parent.name}\n{name}")
        item.setToolTip(f"{entry.path}\ntruth: {'anomaly' if entry.label else 'good'}; verdict {insp.verdict.value} "
                        f"(p {insp.p_anomaly:.4f}, threshold {format_threshold(insp.threshold)}); {len(insp.boxes)} boxes")
        item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        if wrong:
            item.setBackground(QBrush(QColor(WRONG_ITEM_BG)))
            item.setForeground(QBrush(QColor("#ffd6d2")))
        item.setData(Qt.ItemDataRole.UserRole, entry.path)
        self.addItem(item)


class ReportView(QWidget):
    """The held-out report: headline, metrics, confusion grid, per-type table and the prediction gallery."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report: EvalReport | None = None
        self._title, self._box_note, self._box_threshold = "Held-out report", "", 0.5
        self.headline = QLabel("No report yet.")
        self.headline.setWordWrap(True)
        self.headline.setStyleSheet("font-size: 14px; font-weight: 600;")
        self.warning = QLabel("")
        self.warning.setWordWrap(True)
        self.warning.setObjectName("ReportWarning")
        self.warning.setStyleSheet("background:#4a3b12; color:#ffd98a; border:1px solid #a8852c; border-radius:3px; padding:4px 8px;")
        self.warning.hide()
        self.metrics = MetricsPanel()
        self.confusion = ConfusionGrid()
        self.per_type = PerTypeTable()
        self.per_type.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.gallery = Gallery()
        self.gallery_label = QLabel("Gallery")
        self.gallery_label.setWordWrap(True)
        self.gallery_label.setStyleSheet("color: #9aa0a6;")

        self.top = QGridLayout()
        self.top.setHorizontalSpacing(24)
        self.top.setVerticalSpacing(12)
        self._columns = 0
        lay = QVBoxLayout(self)
        lay.addWidget(self.headline)
        lay.addWidget(self.warning)
        lay.addLayout(self.top)
        lay.addWidget(self.gallery_label)
        lay.addWidget(self.gallery, 1)
        self._fit_top()
        margins = lay.contentsMargins()
        self.setMinimumWidth(max(w.minimumSizeHint().width() for w in (self.metrics, self.confusion, self.per_type))
                             + margins.left() + margins.right())  # fmt: skip

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self._fit_top()

    def top_columns(self) -> int:
        """How many of metrics, confusion grid and per-type table sit side by side (3, 2 or 1)."""
        return self._columns

    def _fit_top(self) -> None:
        """Metrics, confusion grid and per-type table side by side where they fit; else two, then one, per row."""
        margins = self.layout().contentsMargins()
        room = self.width() - margins.left() - margins.right()
        widths = [w.sizeHint().width() for w in (self.metrics, self.confusion, self.per_type)]
        gap = self.top.horizontalSpacing()
        columns = 3 if sum(widths) + 2 * gap <= room else 2 if widths[0] + widths[1] + gap <= room else 1
        if columns == self._columns:
            return
        self._columns = columns
        top = Qt.AlignmentFlag.AlignTop
        for w in (self.metrics, self.confusion, self.per_type):
            self.top.removeWidget(w)
        for c in range(3):
            self.top.setColumnStretch(c, 0)
        if columns == 3:
            self.top.addWidget(self.metrics, 0, 0, top)
            self.top.addWidget(self.confusion, 0, 1, top)
            self.top.addWidget(self.per_type, 0, 2, top)
            self.top.setColumnStretch(2, 1)
        elif columns == 2:
            self.top.addWidget(self.metrics, 0, 0, top)
            self.top.addWidget(self.confusion, 0, 1, top)
            self.top.addWidget(self.per_type, 1, 0, 1, 2)
            self.top.setColumnStretch(1, 1)
        else:
            for row, w in enumerate((self.metrics, self.confusion, self.per_type)):
                self.top.addWidget(w, row, 0)

    def set_warning(self, text: str) -> None:
        """A caution shown under the headline (e.g. the threshold was calibrated on these images); '' hides it."""
        self.warning.setText(f"⚠ {text}" if text else "")
        self.warning.setVisible(bool(text))

    def warning_text(self) -> str:
        return self.warning.text()

    def clear(self) -> None:
        self.report = None
        self.set_warning("")
        self.headline.setText("No report yet.")
        self.metrics.set_report(None)
        self.confusion.clear()
        self.per_type.set_report(None)
        self.gallery.clear_entries()
        self.gallery_label.setText("Gallery")

    def set_report(self, report: EvalReport, *, title: str = "Held-out report", box_recall_note: str = "") -> None:
        """Show a report's numbers (the gallery is filled separately)."""
        self.report = report
        self._title = title
        if not box_recall_note:
            self._box_note, self._box_threshold = "", report.threshold
        wrong = report.fn + report.fp
        self.headline.setText(f"{title}: {report.n} images at threshold {format_threshold(report.threshold)}  —  "
                              f"accuracy {fmt_pct(report.accuracy)}, balanced {fmt_pct(report.balanced_accuracy)}, "
                              f"{wrong} misclassified")
        self.metrics.set_report(report, box_recall_note=box_recall_note)
        self.confusion.set_counts(report.tp, report.fn, report.fp, report.tn)
        self.per_type.set_report(report)
        self._fit_top()
        self._update_gallery_label()

    def apply_thresholds(self, thresholds: Thresholds) -> None:
        """Re-judge the shown report and gallery at new thresholds (no model run)."""
        if self.report is None:
            return
        threshold = thresholds.decision
        measured = self.report.threshold if not self._box_note else self._box_threshold
        self._box_threshold = measured
        self._box_note = f"(measured at threshold {format_threshold(measured)})" if abs(measured - threshold) > 1e-12 else ""
        self.set_report(rethreshold(self.report, threshold), title=self._title, box_recall_note=self._box_note)
        self.gallery.set_entries([e.at(thresholds) for e in self.gallery.entries()])
        self._update_gallery_label()

    def box_recall_threshold(self) -> float | None:
        """The threshold box recall was measured at (differs from the shown one after apply_threshold)."""
        return self._box_threshold if self.report is not None else None

    def add_gallery_entry(self, entry: GalleryEntry) -> None:
        self.gallery.add_entry(entry)
        self._update_gallery_label()

    def _update_gallery_label(self) -> None:
        entries = self.gallery.entries()
        wrong = sum(1 for e in entries if e.misclassified)
        total = self.report.n if self.report is not None else len(entries)
        self.gallery_label.setText(
            f"Gallery: {len(entries)} of {total} held-out images, {wrong} misclassified shown first "
            "(heatmap and boxes drawn; hover for the file)"
        )
