"""History's plant view: every station's results from the central PostgreSQL, newest first, a page at a time in a
worker, filtered by station and recipe (and verdict and time, as the local view)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from functools import partial

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

from engine.central.plant import PlantFilter, PlantReader, PlantRow
from engine.central.target import CentralTarget
from engine.types import Verdict
from visinspect_gui.widgets.common import table_font_metrics
from visinspect_gui.widgets.history_model import LazyRowsModel, Page, item_label
from visinspect_gui.widgets.review_model import VERDICT_COLOURS

COLUMNS = ("Time", "Station", "Verdict", "p(anomaly)", "Recipe", "Item")
_ALIGN_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


def plant_page(target: CentralTarget, where: PlantFilter, offset: int, limit: int) -> Page:
    """One page of the plant's rows, newest first (run in a worker; a connection per page, so an outage heals)."""
    with PlantReader(target) as plant:
        rows = plant.query(where, limit=limit, offset=offset)
    return Page(rows, partial(plant_page, target, where))


def first_plant_page(target: CentralTarget, where: PlantFilter, limit: int) -> Page:
    """The first page and the count of the rows the server held when asked: later pages do not shift as stations send."""
    with PlantReader(target) as plant:
        snapshot = replace(where, arrived_by=plant.now())
        total = plant.count(snapshot)
        rows = plant.query(snapshot, limit=limit)
    return Page(rows, partial(plant_page, target, snapshot), total)


def plant_choices(target: CentralTarget) -> tuple[list[str], list[str]]:
    """The stations and recipes the plant's rows name, for the combo boxes (run in a worker)."""
    with PlantReader(target) as plant:
        return plant.stations(), plant.recipes()


class PlantModel(LazyRowsModel):
    """The plant's rows matching a filter, newest first (the server sorts; the columns cannot be re-sorted)."""

    columns = COLUMNS

    def __init__(self, target: CentralTarget, parent=None) -> None:
        super().__init__(parent)
        self.target = target
        self.where: PlantFilter | None = None

    def query(self, where: PlantFilter) -> None:
        self.where = where
        self.restart(partial(first_plant_page, self.target, where))

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row: PlantRow = self.rows[index.row()]
        r, col = row.result, index.column()
        known = row.known_verdict
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                datetime.fromtimestamp(r.time).strftime("%m-%d %H:%M:%S"),
                row.station_id,
                f"{row.verdict} · {len(r.boxes)}" if known is Verdict.ANOMALY else row.verdict,
                "" if r.p_anomaly is None else f"{r.p_anomaly:.4f}",
                row.recipe or "",
                item_label(r.source, r.item),
            )[col]
        if role == Qt.ItemDataRole.ForegroundRole and col == 2:
            return VERDICT_COLOURS.get(known)
        if role == Qt.ItemDataRole.ToolTipRole:
            return (
                f"{r.time_iso}\nstation {row.station_id}" + (f", part {row.part_id}" if row.part_id else "")
                + f"\n{r.item}\nsource {r.source}\nrun {r.run_id}\nmodel {r.model_path or '–'}"
                + (f"\nframe {r.frame_path}" if r.frame_path else "") + (f"\n{r.error}" if r.error else "")
            )  # fmt: skip
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 3:
            return _ALIGN_RIGHT
        return None


def plant_table(model: PlantModel) -> QTableView:
    """The plant rows' table: one row selected at a time, long items elided in the middle, Item takes the rest."""
    table = QTableView()
    table.setObjectName("PlantTable")
    table.setModel(model)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    table.verticalHeader().hide()
    table.verticalHeader().setDefaultSectionSize(24)
    header = table.horizontalHeader()
    fm, label_fm = table_font_metrics(table)
    for col, sample in {0: "11-30 23:59:59", 1: "line3-cam1-4f2a", 2: "ANOMALY · 00", 3: "0.0000", 4: "hazelnut"}.items():
        label = label_fm.horizontalAdvance(COLUMNS[col]) + 2 * 8 + 4  # the style sheet pads 8 px either side
        header.resizeSection(col, max(label, fm.horizontalAdvance(sample) + 14))
    header.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
    return table


def plant_detail(row: PlantRow) -> str:
    """The selected plant row in a few lines."""
    r = row.result
    p = f"  ·  p(anomaly) {r.p_anomaly:.4f}" if r.p_anomaly is not None else ""
    recipe = f"  ·  {row.recipe}" if row.recipe else ""
    return f"{row.station_id}{recipe}\n{r.time_iso}  ·  {row.verdict}{p}\n{r.item}" + (f"\n{r.error}" if r.error else "")
