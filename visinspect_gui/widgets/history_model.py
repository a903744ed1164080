"""Table models over the results log that load a page at a time in a worker as the view scrolls, never all rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import PurePath

from PySide6.QtCore import QModelIndex, Qt, Signal

from engine.results import NEWEST_FIRST, ResultFilter, ResultOrder, ResultRow, ResultsLog, SortKey
from engine.types import Verdict
from visinspect_gui.widgets.common import ListTableModel
from visinspect_gui.widgets.review_model import VERDICT_COLOURS
from visinspect_gui.workers import Latest, call

PAGE_ROWS = 500
COLUMNS = ("Time", "Verdict", "p(anomaly)", "Source", "Item", "Error")  # an anomaly's boxes: "ANOMALY · 2"
SORT_KEYS = (SortKey.TIME, SortKey.VERDICT, SortKey.P_ANOMALY, SortKey.SOURCE, SortKey.ITEM, SortKey.ERROR)
_ALIGN_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


@dataclass(frozen=True)
class Page:
    """Rows of one query page, how to fetch the next ones (offset, limit), and the total when it was counted."""

    rows: list
    more: Callable[[int, int], Page]
    total: int | None = None


def results_page(results: ResultsLog, where: ResultFilter, order: ResultOrder, offset: int, limit: int) -> Page:
    """One sorted page of matching rows (run in a worker)."""
    rows = results.query(where, order=order, limit=limit, offset=offset)
    return Page(rows, partial(results_page, results, where, order))


def first_results_page(results: ResultsLog, where: ResultFilter, order: ResultOrder, limit: int) -> Page:
    """The first page and the count, of the rows written so far: later rows do not shift the pages that follow."""
    snapshot = replace(where, through_id=results.last_id())
    total = results.count(snapshot)
    return replace(results_page(results, snapshot, order, 0, limit), total=total)


def source_label(source: str) -> str:
    """A source named briefly: its kind and the last folder of its path ('review /data/big' -> 'review · big')."""
    kind, _, rest = source.partition(" ")
    rest = rest.split(" (", 1)[0]  # "folder /line (6 images)"
    if "/" not in rest and "\\" not in rest:
        return source
    return f"{kind} · {PurePath(rest).name or rest}"


def item_label(source: str, item: str) -> str:
    """The item as a path under the folder its source names (sub-folders kept), else as logged."""
    path = PurePath(item)
    for parent in path.parents:
        if len(parent.parts) < 2:
            break  # ".", "/" or a drive: not a folder a source would name
        folder = str(parent)
        at = source.find(folder)
        while at >= 0:
            end = at + len(folder)
            if (at == 0 or source[at - 1] == " ") and (end == len(source) or source[end] == " "):
                return str(path.relative_to(parent))
            at = source.find(folder, at + 1)
    return item


class LazyRowsModel(ListTableModel):
    """Rows of a query, fetched PAGE_ROWS at a time in a worker when the view scrolls near the end (fetchMore)."""

    page_loaded = Signal(int)  # rows loaded so far
    failed = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.total: int | None = None
        self._more: Callable[[int, int], Page] | None = None
        self._fetching = False
        self._pages = Latest()

    def restart(self, first: Callable[[int], Page]) -> None:
        """Drop the rows shown and load the first page of a new query; a page of the old query is ignored."""
        self._pages.stop()
        self.beginResetModel()
        self.rows, self.total, self._more = [], None, None
        self.endResetModel()
        self._fetching = True
        self._pages.start(call, first, PAGE_ROWS, on_event=self._on_page, on_failed=self._on_failed)

    @property
    def loading(self) -> bool:
        """True while a page is being fetched."""
        return self._fetching

    @property
    def complete(self) -> bool:
        """True when every row of the query is loaded."""
        return self._more is None and not self._fetching

    def canFetchMore(self, parent=QModelIndex()) -> bool:  # noqa: N802 - Qt API
        return not parent.isValid() and self._more is not None and not self._fetching

    def fetchMore(self, parent=QModelIndex()) -> None:  # noqa: N802 - Qt API
        if self.canFetchMore(parent):
            self._fetching = True
            self._pages.start(call, self._more, len(self.rows), PAGE_ROWS, on_event=self._on_page, on_failed=self._on_failed)

    def stop(self) -> None:
        """Stop fetching (window close)."""
        self._pages.stop()

    def _on_page(self, page: Page) -> None:
        self._fetching = False
        if page.total is not None:
            self.total = page.total
        if page.rows:
            self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows) + len(page.rows) - 1)
            self.rows.extend(page.rows)
            self.endInsertRows()
        self._more = page.more if len(page.rows) == PAGE_ROWS else None
        self.page_loaded.emit(len(self.rows))

    def _on_failed(self, message: str) -> None:
        self._fetching = False
        self._more = None
        self.failed.emit(message)


class ResultsModel(LazyRowsModel):
    """Rows of the results log matching a filter, sorted by the database (a click on a column header)."""

    columns = COLUMNS

    def __init__(self, results: ResultsLog, parent=None) -> None:
        super().__init__(parent)
        self.results = results
        self.where: ResultFilter | None = None  # None until the first query
        self.order = NEWEST_FIRST

    def query(self, where: ResultFilter) -> None:
        """List the rows matching `where`, in the current order."""
        self.where = where
        self.restart(partial(first_results_page, self.results, where, self.order))

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        """Sort by a column, in SQL, and list from the first row again."""
        new = ResultOrder(SORT_KEYS[column], descending=order == Qt.SortOrder.DescendingOrder)
        if new != self.order:
            self.order = new
            if self.where is not None:
                self.query(self.where)

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row: ResultRow = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                datetime.fromtimestamp(row.time).strftime("%m-%d %H:%M:%S"),  # the year: in the tooltip
                f"{row.verdict.value} · {len(row.boxes)}" if row.verdict is Verdict.ANOMALY else row.verdict.value,
                "" if row.p_anomaly is None else f"{row.p_anomaly:.4f}",
                source_label(row.source),
                item_label(row.source, row.item),
                row.error or "",
            )[col]
        if role == Qt.ItemDataRole.ForegroundRole and col == 1:
            return VERDICT_COLOURS.get(row.verdict)
        if role == Qt.ItemDataRole.ToolTipRole:
            boxes = f"{len(row.boxes)} box(es)\n" if row.verdict is Verdict.ANOMALY else ""
            return (
                f"{row.time_iso}\n{boxes}{row.item}\nsource {row.source}\nrun {row.run_id}\nmodel {row.model_path or '–'}"
                + (f"\n{row.error}" if row.error else "")
            )
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 2:
            return _ALIGN_RIGHT
        return None
