"""The Review table: the review job's rows in folder order, each judged at the threshold in force when the loaded
model gave it, sorted in the model (one Python sort, not a Qt comparison per pair) and filtered by a proxy."""

from __future__ import annotations

import bisect
import os
from collections import Counter

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor

from engine.jobs.review import ReviewRow, same_model
from engine.types import ModelRef, Verdict
from visinspect_gui.widgets import verdict_style
from visinspect_gui.widgets.common import ListTableModel

COLUMNS = ("File", "Verdict", "p(anomaly)", "Boxes", "Model", "Error")
FILE, VERDICT, P_ANOMALY, BOXES, MODEL, ERROR = range(len(COLUMNS))
VERDICT_COLOURS = verdict_style.VERDICT_COLOURS  # one colour per verdict, as the Live view shows it
OTHER_MODEL_COLOUR = QColor(140, 140, 140)


def model_name(model: ModelRef | None) -> str:
    """A model's file name, as the Model column shows it."""
    return "" if model is None else os.path.basename(model.path) or model.path


class ReviewModel(ListTableModel):
    """Rows of a review; holds only small fields, so 10,000+ files stay light (images are re-read on click).

    `rows` is the order shown (folder order until a column is sorted); the loaded model's rows follow the
    threshold slider, rows another model gave keep their own verdict.
    """

    columns = COLUMNS

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[ReviewRow] = []
        self.root = ""
        self.decision: float | None = None  # the threshold the loaded model's rows are judged at (None: their own)
        self.current: ModelRef | None = None  # the loaded model
        self.sort_column, self.sort_order = -1, Qt.SortOrder.AscendingOrder
        self._seq: dict[int, int] = {}  # id(row) -> its place in folder order
        self._names: dict[str, str] = {}  # path -> casefolded relative path, for the text filter
        self._counts: Counter = Counter()
        self._keys: list | None = None  # the sort keys of rows, in their order, while a column is sorted

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row, col = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == FILE:
                return self.relative(row.path)
            if col == VERDICT:
                return row.verdict.value
            if col == P_ANOMALY:
                return "" if row.p_anomaly is None else f"{row.p_anomaly:.4f}"
            if col == BOXES:
                return "" if row.verdict is Verdict.ERROR else str(len(row.boxes))
            if col == MODEL:
                return model_name(row.model)
            return row.error or ""
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == VERDICT:
                return VERDICT_COLOURS.get(row.verdict)
            if col == MODEL and not self.is_current(row):
                return OTHER_MODEL_COLOUR
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == MODEL and row.model is not None:
                other = "" if self.is_current(row) else "\nNot the loaded model: this row keeps its own verdict"
                return f"{row.model.path}\nsha256 {row.model.id or '(in memory)'}{other}"
            return row.error if col == ERROR and row.error else row.path
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (P_ANOMALY, BOXES):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def relative(self, path: str) -> str:
        """A path relative to the reviewed folder, for a readable File column."""
        if self.root and path.startswith(self.root):
            return path[len(self.root) :].lstrip("/\\")
        return path

    def name_key(self, row: ReviewRow) -> str:
        """The row's relative path, casefolded once, for the text filter."""
        key = self._names.get(row.path)
        if key is None:
            key = self._names[row.path] = self.relative(row.path).casefold()
        return key

    def is_current(self, row: ReviewRow) -> bool:
        """True when the loaded model gave this row (an unreadable file is nobody's: it counts as current)."""
        return row.model is None or self.current is None or same_model(row.model, self.current)

    # -- changes -------------------------------------------------------------------------------

    def add_rows(self, rows) -> None:
        """Append rows as a review goes (in folder order), the loaded model's judged at the threshold in force."""
        if not rows:
            return
        if self.decision is not None:
            rows = [r.at(self.decision) if self.is_current(r) else r for r in rows]
        for row in rows:
            self._seq[id(row)] = len(self._seq)
        self._counts.update(r.verdict for r in rows)
        if self.sort_column < 0:  # folder order, which is the order rows arrive in
            first = len(self.rows)
            self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
            self.rows.extend(rows)
            self.endInsertRows()
            return
        key = self._sort_key()  # sorted: each row goes to its place, without re-sorting (and re-filtering) the rest
        if self._keys is None or len(self._keys) != len(self.rows):
            self._keys = [key(r) for r in self.rows]
        keys = self._keys
        for row in rows:
            k = key(row)
            i = bisect.bisect_right(keys, k)
            self.beginInsertRows(QModelIndex(), i, i)
            self.rows.insert(i, row)
            keys.insert(i, k)
            self.endInsertRows()

    def set_decision(self, threshold: float) -> int:
        """Judge the loaded model's rows at threshold (errors stay errors; regions are kept, so moving back restores
        them); rows of other models keep their verdicts. Returns how many rows were left as they were."""
        self.decision = float(threshold)
        left = 0
        rows = []
        for r in self.rows:
            if self.is_current(r):
                r2 = r.at(self.decision)
            else:
                r2, left = r, left + 1
            self._seq[id(r2)] = self._seq.pop(id(r))
            rows.append(r2)
        self.rows, self._keys = rows, None
        self._counts = Counter(r.verdict for r in rows)
        if rows:
            self.dataChanged.emit(self.index(0, VERDICT), self.index(len(rows) - 1, BOXES))
            if self.sort_column in (VERDICT, BOXES):
                self._resort()
        return left

    def set_current(self, model: ModelRef | None) -> None:
        """The loaded model: its rows follow the slider, others are shown muted."""
        self.current = model
        if self.rows:
            self.dataChanged.emit(self.index(0, MODEL), self.index(len(self.rows) - 1, MODEL))

    def clear(self, root: str = "") -> None:
        """Empty the table for a new review of root."""
        self.beginResetModel()
        self.rows, self._seq, self._names, self._counts, self._keys = [], {}, {}, Counter(), None
        self.root = root
        self.endResetModel()

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:  # noqa: D102 - Qt API
        self.sort_column, self.sort_order = column, order
        self._resort()

    def _resort(self) -> None:
        """Order rows by the sort column (-1: folder order) in one Python sort; selections follow their rows."""
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        held = [self.rows[i.row()] for i in old]
        keys = list(map(self._sort_key(), self.rows))
        order = sorted(range(len(keys)), key=keys.__getitem__)  # stable: ties keep their folder order
        self.rows = [self.rows[i] for i in order]
        self._keys = [keys[i] for i in order] if self.sort_column >= 0 else None
        if old:
            place = {id(r): i for i, r in enumerate(self.rows)}
            self.changePersistentIndexList(old, [self.index(place[id(r)], i.column()) for r, i in zip(held, old)])
        self.layoutChanged.emit()

    def _sort_key(self):
        """The key that orders rows as shown: the sort column's value (reversed when descending), else folder order."""
        if self.sort_column < 0:
            return lambda r: self._seq[id(r)]
        pick = _SORT_KEYS[self.sort_column]
        if self.sort_order == Qt.SortOrder.DescendingOrder:
            return lambda r: _Descending(pick(self, r))
        return lambda r: pick(self, r)

    # -- questions -----------------------------------------------------------------------------

    def counts(self) -> dict[Verdict, int]:
        """How many rows per verdict."""
        return {v: self._counts.get(v, 0) for v in Verdict}

    def in_folder_order(self) -> list[ReviewRow]:
        """Every row in the review's input order, whatever the sort."""
        return sorted(self.rows, key=lambda r: self._seq[id(r)])

    def other_model_rows(self) -> list[ReviewRow]:
        """Rows that a model other than the loaded one gave (they are not re-judged by the slider)."""
        return [r for r in self.rows if not self.is_current(r)]


_SORT_KEYS = {
    FILE: lambda m, r: m.name_key(r),
    VERDICT: lambda m, r: r.verdict.value,
    P_ANOMALY: lambda m, r: -1.0 if r.p_anomaly is None else r.p_anomaly,
    BOXES: lambda m, r: -1 if r.verdict is Verdict.ERROR else len(r.boxes),
    MODEL: lambda m, r: model_name(r.model).casefold(),
    ERROR: lambda m, r: r.error or "",
}


class _Descending:
    """A sort key ordered backwards (a stable descending sort, and bisect, for keys of any type)."""

    __slots__ = ("value",)

    def __init__(self, value) -> None:
        self.value = value

    def __lt__(self, other: _Descending) -> bool:
        return other.value < self.value


class ReviewFilter(QSortFilterProxyModel):
    """Shows rows of one verdict (or all) whose path under the folder contains the filter text; sorting is passed to
    the review model, which sorts all rows in one go."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.verdict: Verdict | None = None
        self.text = ""
        self.setDynamicSortFilter(False)

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:  # noqa: D102 - Qt API
        self.sourceModel().sort(column, order)

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

    @property
    def active(self) -> bool:
        """True when a filter hides rows that may match another one."""
        return self.verdict is not None or bool(self.text)

    def describe(self) -> str:
        """The filters in force in words ("" when none), for the summary and the exported CSV."""
        parts = []
        if self.verdict is not None:
            parts.append(f"verdict {self.verdict.value}")
        if self.text:
            parts.append(f"name contains '{self.text}'")
        return "; ".join(parts)

    def accepts(self, row: ReviewRow) -> bool:
        """True when row passes the filters."""
        if self.verdict is not None and row.verdict is not self.verdict:
            return False
        return not self.text or self.text in self.sourceModel().name_key(row)

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex) -> bool:  # noqa: N802 - Qt API
        return self.accepts(self.sourceModel().rows[source_row])

    def shown_rows(self) -> list[ReviewRow]:
        """The rows shown, in the order shown (the proxy keeps the model's order)."""
        return [r for r in self.sourceModel().rows if self.accepts(r)]
