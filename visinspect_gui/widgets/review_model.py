"""The Review table: the review job's rows, judged at the decision threshold in force, sortable and filterable."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor

from engine.jobs.review import ReviewRow
from engine.types import Verdict
from visinspect_gui.widgets.common import ListTableModel

COLUMNS = ("File", "Verdict", "p(anomaly)", "Boxes", "Error")
VERDICT_COLOURS = {Verdict.GOOD: QColor(72, 200, 110), Verdict.ANOMALY: QColor(240, 96, 96), Verdict.ERROR: QColor(230, 170, 40)}


class ReviewModel(ListTableModel):
    """Rows of a review; holds only small fields, so 10,000+ files stay light (images are re-read on click)."""

    columns = COLUMNS

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[ReviewRow] = []
        self.root = ""
        self.decision: float | None = None  # the threshold rows are judged at (None: each row's own)
        self._index: dict[str, int] = {}

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row, col = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return self._relative(row.path)
            if col == 1:
                return row.verdict.value
            if col == 2:
                return "" if row.p_anomaly is None else f"{row.p_anomaly:.4f}"
            if col == 3:
                return "" if row.verdict is Verdict.ERROR else str(len(row.boxes))
            return row.error or ""
        if role == Qt.ItemDataRole.UserRole:  # sort key
            return (
                self._relative(row.path),
                row.verdict.value,
                -1.0 if row.p_anomaly is None else row.p_anomaly,
                -1 if row.verdict is Verdict.ERROR else len(row.boxes),
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
        """Append rows as a review goes, judged at the threshold in force (the proxy re-sorts and re-filters them)."""
        if not rows:
            return
        if self.decision is not None:
            rows = [r.at(self.decision) for r in rows]
        first = len(self.rows)
        self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
        for i, row in enumerate(rows, start=first):
            self._index[row.path] = i
        self.rows.extend(rows)
        self.endInsertRows()

    def set_decision(self, threshold: float) -> None:
        """Judge every row at threshold (errors stay errors); a row's regions are kept, so moving back restores it."""
        self.decision = float(threshold)
        self.rows = [r.at(self.decision) for r in self.rows]
        if self.rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.rows) - 1, len(self.columns) - 1))

    def find(self, path: str) -> int | None:
        """The row of a file, or None."""
        return self._index.get(path)

    def clear(self, root: str = "") -> None:
        """Empty the table for a new review of root."""
        self.beginResetModel()
        self.rows = []
        self._index = {}
        self.root = root
        self.endResetModel()

    def counts(self) -> dict[Verdict, int]:
        """How many rows per verdict."""
        out = dict.fromkeys(Verdict, 0)
        for r in self.rows:
            out[r.verdict] += 1
        return out


class ReviewFilter(QSortFilterProxyModel):
    """Shows rows of one verdict (or all) whose file path contains the filter text."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.verdict: Verdict | None = None
        self.text = ""
        self.setSortRole(Qt.ItemDataRole.UserRole)

    def set_filter(self, *, verdict: Verdict | None | str = "", text: str | None = None) -> None:
        """Change the verdict filter (None: all) and/or the text filter and re-filter; "" keeps the verdict filter."""
        if hasattr(self, "beginFilterChange"):  # Qt 6.9+: invalidateFilter is deprecated
            self.beginFilterChange()
        if verdict != "":
            self.verdict = None if verdict is None else Verdict.parse(verdict)
        if text is not None:
            self.text = text.casefold()
        if hasattr(self, "endFilterChange"):
            self.endFilterChange()
        else:
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex) -> bool:  # noqa: N802 - Qt API
        row = self.sourceModel().rows[source_row]
        if self.verdict is not None and row.verdict is not self.verdict:
            return False
        return not self.text or self.text in row.path.casefold()

    def shown_rows(self) -> list[ReviewRow]:
        """The rows shown, in the order shown."""
        model = self.sourceModel()
        return [model.rows[self.mapToSource(self.index(r, 0)).row()] for r in range(self.rowCount())]
