"""Report export: HTML, or PDF drawn by Qt's rich-text engine (no browser needed); safe in a worker thread."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from PySide6.QtCore import QMarginsF
from PySide6.QtGui import QPageLayout, QPageSize, QPdfWriter, QTextDocument

RESOLUTION_DPI = 150


def write_pdf(path: str | os.PathLike, html: str, *, title: str = "VisInspect report") -> Path:
    """Lay out html on A4 pages and write it as a PDF, atomically (a temp file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    writer = QPdfWriter(str(tmp))
    writer.setTitle(title)
    writer.setCreator("VisInspect")
    writer.setResolution(RESOLUTION_DPI)
    writer.setPageLayout(
        QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait, QMarginsF(12, 12, 12, 12), QPageLayout.Unit.Millimeter)
    )
    doc = QTextDocument()
    doc.setHtml(html)
    doc.print_(writer)
    del writer  # finishes the file
    os.replace(tmp, path)
    return path


def export_report(path: str, report, meta, gallery: list, source: str, box_at, *, data_dir: str | None = None, stop) -> Iterator[str]:
    """Worker body: write a held-out report as HTML, or as PDF (Qt's rich-text engine) when path ends in .pdf."""
    from engine.evaluation.report import report_html, write_html_report

    if Path(path).suffix.lower() == ".pdf":
        text = report_html(report, meta, gallery, source=source, box_recall_threshold=box_at, for_print=True, data_dir=data_dir)
        product = meta.product if meta is not None else "model"
        yield str(write_pdf(path, text, title=f"VisInspect report: {product}"))
    else:
        yield str(write_html_report(path, report, meta, gallery, source=source, box_recall_threshold=box_at, data_dir=data_dir))
