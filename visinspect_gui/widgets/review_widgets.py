"""The Review tab's table view and its run options, built here so the tab itself only wires them."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QCheckBox, QHeaderView, QTableView

from visinspect_gui.widgets.review_model import BOXES, ERROR, FILE, MODEL, P_ANOMALY, VERDICT, ReviewFilter


def review_table(proxy: ReviewFilter) -> QTableView:
    """A sortable one-row-at-a-time table over the filtered review rows: File stretches, Model and Error resize."""
    table = QTableView()
    table.setObjectName("ReviewTable")
    table.setModel(proxy)
    table.setSortingEnabled(True)
    table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # folder order until a column is clicked
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setAlternatingRowColors(True)
    table.verticalHeader().hide()
    table.verticalHeader().setDefaultSectionSize(24)
    header = table.horizontalHeader()
    header.setSectionResizeMode(FILE, QHeaderView.ResizeMode.Stretch)
    for col, width in ((VERDICT, 90), (P_ANOMALY, 100), (BOXES, 60)):
        header.setSectionResizeMode(col, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(col, width)
    for col, width in ((MODEL, 130), (ERROR, 160)):
        header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(col, width)
    return table


def option_boxes() -> tuple[QCheckBox, QCheckBox, QCheckBox, QCheckBox]:
    """Include sub-folders, Resume, Retry errors, Save anomaly frames: how the next review runs."""
    recursive = QCheckBox("Include sub-folders")
    recursive.setChecked(True)
    resume = QCheckBox("Resume")
    resume.setChecked(True)
    resume.setToolTip(
        "Files this model already reviewed in this folder (and that have not changed since) are shown from the\n"
        "results log, judged at the threshold in force, instead of being inspected again; files that could not be\n"
        "read stay errors unless 'Retry errors' is ticked."
    )
    retry = QCheckBox("Retry errors")
    frames = QCheckBox("Save anomaly frames")
    frames.setToolTip(
        "Also save a JPEG copy of every ANOMALY beside the results log (History shows them); the review is slower\n"
        "and takes disk space, which is shown when it ends. The reviewed files themselves stay where they are."
    )
    return recursive, resume, retry, frames
