"""Held-out gallery entries and a self-contained HTML report (metrics, confusion, calibration, thumbnails)."""
from __future__ import annotations

import base64
import html
import math
import os
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import cv2
import numpy as np

from engine.errors import Cancelled
from engine.evaluation.calibrate import Calibration, at_threshold, calibration_table
from engine.evaluation.metrics import EvalReport, SampleScore, image_metrics
from engine.render import encode_image, render_overlay
from engine.thresholds import Thresholds
from engine.types import Box, Inspection, Verdict

if TYPE_CHECKING:
    from engine.inference.inspector import Inspector
    from engine.modelfile import ModelMeta

GALLERY_LIMIT = 96
GALLERY_SIDE = 192  # longest side of the images kept per gallery entry
THUMB_SIDE = 180  # longest side of a thumbnail in the HTML report


class GalleryEntry(NamedTuple):
    """One held-out prediction for a gallery: the (downscaled) RGB image, its inspection, true label, file path."""

    image: np.ndarray
    inspection: Inspection
    label: int
    path: str

    @property
    def misclassified(self) -> bool:
        return int(self.inspection.is_anomaly) != int(self.label)


    def at(self, thresholds: Thresholds) -> GalleryEntry:
        """The entry with its verdict and boxes judged at other thresholds."""
        return self._replace(inspection=self.inspection.at(thresholds))


def gallery_order(entries: Sequence[GalleryEntry]) -> list[GalleryEntry]:
    """Misclassified first (most confident errors first), then the rest, closest to the threshold first."""

    def key(e: GalleryEntry):
        margin = abs(e.inspection.p_anomaly - e.inspection.threshold)
        return (0, -margin, str(e.path)) if e.misclassified else (1, margin, str(e.path))

    return sorted(entries, key=key)


def pick_scores(scores: Sequence[SampleScore], limit: int = GALLERY_LIMIT, *, thresholds: Thresholds) -> list[SampleScore]:
    """The held-out images worth showing: every misclassified one first, then the most borderline, up to limit."""

    def key(s: SampleScore):
        margin = abs(s.p_anomaly - thresholds.decision)
        wrong = int(thresholds.verdict(s.p_anomaly) is Verdict.ANOMALY) != s.label
        return (0, -margin, s.path) if wrong else (1, margin, s.path)

    return sorted(scores, key=key)[: max(0, limit)]


def shrink(image: np.ndarray, inspection: Inspection, max_side: int = GALLERY_SIDE) -> tuple[np.ndarray, Inspection]:
    """Downscale an image and its inspection's heatmap and boxes so the longest side is at most max_side."""
    h, w = image.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s >= 1.0:
        return image, inspection
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    heat = cv2.resize(inspection.heatmap, (nw, nh), interpolation=cv2.INTER_AREA)
    regions = tuple(
        Box(
            min(nw - 1, int(b.x0 * s)),
            min(nh - 1, int(b.y0 * s)),
            max(min(nw, math.ceil(b.x1 * s)), min(nw - 1, int(b.x0 * s)) + 1),
            max(min(nh, math.ceil(b.y1 * s)), min(nh - 1, int(b.y0 * s)) + 1),
            b.score,
        )
        for b in inspection.regions
    )
    return small, replace(inspection, heatmap=heat.astype(np.float32), regions=regions)


def iter_gallery(
    inspector: Inspector,
    scores: Sequence[SampleScore],
    *,
    limit: int = GALLERY_LIMIT,
    max_side: int = GALLERY_SIDE,
    thresholds: Thresholds | None = None,
    stop: threading.Event | None = None,
) -> Iterator[GalleryEntry]:
    """Inspect the held-out images worth showing (misclassified first) and yield downscaled gallery entries."""
    thresholds = inspector.thresholds if thresholds is None else thresholds
    chosen = pick_scores(scores, limit, thresholds=thresholds)
    labels = {s.path: s.label for s in chosen}
    for result in inspector.inspect_files([s.path for s in chosen], keep_images=True, stop=stop, thresholds=thresholds):
        if stop is not None and stop.is_set():
            raise Cancelled("the gallery was cancelled")
        if result.inspection is None or result.image is None:
            continue
        image, insp = shrink(result.image, result.inspection, max_side)
        yield GalleryEntry(image, insp, labels[result.path], result.path)


def thumbnail(image: np.ndarray, inspection: Inspection, max_side: int = THUMB_SIDE) -> np.ndarray:
    """RGB thumbnail with the heatmap blended and the boxes drawn, longest side at most max_side."""
    image, inspection = shrink(image, inspection, max_side)
    return render_overlay(image, inspection, opacity=0.4)


def _data_uri(rgb: np.ndarray) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(encode_image(".jpg", rgb, quality=82)).decode("ascii")


def _num(v: float | None, fmt: str = "{:.3f}") -> str:
    return "n/a" if v is None else fmt.format(v)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1%}"


PRINT_COLUMNS = 4  # gallery cards per row in the print (PDF) layout
_CSS = """
body{font:14px/1.45 -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:24px;color:#1d1f23;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#5b6068;margin:0 0 16px}
table{border-collapse:collapse} td,th{padding:4px 10px;border:1px solid #d5d8dc;text-align:right}
th{background:#f1f3f5;text-align:left} td.l{text-align:left}
.cm td{width:110px;height:48px;text-align:center;font-size:18px;font-weight:600}
.cm .ok{background:#d8f0de} .cm .bad{background:#f8d7d5}
.cm small{display:block;font-size:11px;font-weight:400;color:#5b6068}
.grid{display:flex;flex-wrap:wrap;gap:10px}
.card{width:190px;border:1px solid #d5d8dc;border-radius:4px;padding:5px;font-size:12px}
.card.wrong{border:2px solid #c0392b;background:#fdf1f0}
.card img{display:block;max-width:180px;max-height:180px;margin:0 auto 4px}
.v-ANOMALY{color:#c0392b;font-weight:600} .v-GOOD{color:#1e8449;font-weight:600} .v-REVIEW{color:#d35400;font-weight:600} .v-NOT_PRODUCT{color:#7d3cbf;font-weight:600}
.tag{display:inline-block;padding:0 4px;border-radius:3px;background:#c0392b;color:#fff;font-size:11px}
.path{color:#5b6068;word-break:break-all}
.flex{display:flex;gap:40px;flex-wrap:wrap;align-items:flex-start}
td.cell{border:none;text-align:left;vertical-align:top;padding:4px 8px}
.warn{background:#fff3cd;border:1px solid #e0b84c;padding:6px 10px;color:#5c4300}
"""

# Qt's rich-text engine lets a cell's text-align reach every block in it (headings, nested tables): print
# layouts align numbers left instead.
_PRINT_CSS = _CSS.replace("border:1px solid #d5d8dc;text-align:right}", "border:1px solid #d5d8dc}")
_CELL = "<td class='cell' style='text-align:left' valign='top'"  # a layout cell of the print layout (left open)


def _confusion_html(tp: int, fn: int, fp: int, tn: int) -> str:
    return (
        '<table class="cm"><tr><th></th><th>predicted Good</th><th>predicted Anomaly</th></tr>'
        f'<tr><th>actual Good</th><td class="ok">{tn}<small>correct accept</small></td>'
        f'<td class="bad">{fp}<small>false reject</small></td></tr>'
        f'<tr><th>actual Anomaly</th><td class="bad">{fn}<small>missed</small></td>'
        f'<td class="ok">{tp}<small>caught</small></td></tr></table>'
    )


def _metrics_html(report: EvalReport, box_recall_threshold: float | None = None) -> str:
    n_anom, n_good = report.tp + report.fn, report.fp + report.tn
    rows = [
        ("images", f"{report.n} ({n_good} good, {n_anom} defective)"),
        ("decision threshold", f"{report.threshold:.4f}"),
        ("accuracy", _pct(report.accuracy)),
        ("balanced accuracy", _pct(report.balanced_accuracy)),
        ("miss rate", _pct(report.fn / n_anom) if n_anom else "n/a"),
        ("false-reject rate", _pct(report.fp / n_good) if n_good else "n/a"),
        ("image AUROC", _num(report.image_auroc)),
        ("pixel AUROC", _num(report.pixel_auroc) + (f" ({report.n_masks} masks)" if report.n_masks else "")),
        ("box recall", _num(report.box_recall) + (
            f" (measured at threshold {box_recall_threshold:.4f})"
            if box_recall_threshold is not None and report.box_recall is not None and abs(box_recall_threshold - report.threshold) > 1e-12
            else ""
        )),
    ]
    body = "".join(f'<tr><th>{html.escape(k)}</th><td class="l">{html.escape(v)}</td></tr>' for k, v in rows)
    return f"<table>{body}</table>"


def _per_type_html(scores: Sequence[SampleScore]) -> str:
    groups: dict[str, list[SampleScore]] = defaultdict(list)
    for s in scores:
        groups[s.defect_type].append(s)
    if not groups:
        return ""
    rows = []
    for kind in sorted(groups, key=lambda k: (k != "good", k)):
        g = groups[kind]
        right = sum(1 for s in g if s.predicted == s.label)
        what = "accepted" if kind == "good" else "caught"
        rows.append(
            f'<tr><td class="l">{html.escape(kind)}</td><td>{len(g)}</td><td>{right} {what}</td><td>{right / len(g):.1%}</td></tr>'
        )
    return "<table><tr><th>type</th><th>images</th><th>correct</th><th>rate</th></tr>" + "".join(rows) + "</table>"


def _calibration_html(rows: Sequence[Calibration]) -> str:
    if not rows:
        return "<p>No calibration table: the held-out images are all of one class.</p>"
    head = (
        "<tr><th>target</th><th>threshold</th><th>missed</th><th>miss rate</th><th>false rejects</th>"
        "<th>false-reject rate</th><th>accuracy</th><th>balanced accuracy</th></tr>"
    )
    body = "".join(
        f'<tr><td class="l">{html.escape(c.target)}</td><td>{c.threshold:.4f}</td><td>{c.fn}/{c.n_anomaly}</td>'
        f"<td>{c.miss_rate:.1%}</td><td>{c.fp}/{c.n_good}</td><td>{c.false_reject_rate:.1%}</td>"
        f"<td>{c.accuracy:.1%}</td><td>{c.balanced_accuracy:.1%}</td></tr>"
        for c in rows
    )
    return f"<table>{head}{body}</table>"


def calibration_overlap(meta: ModelMeta | None, data_dir: str | os.PathLike | None, threshold: float) -> str:
    """A warning when the threshold in force was calibrated on images of the folder a report scores ('' otherwise).

    Calibrating chooses the threshold that does best on its images, so a report on those same images
    (or on a set that contains them) looks better than the line will do.
    """
    record = meta.calibration if meta is not None else {}
    if not record or not record.get("data") or not data_dir:
        return ""
    same = os.path.normpath(os.path.abspath(str(record["data"]))) == os.path.normpath(os.path.abspath(data_dir))  # no disk access
    if not same or abs(float(record.get("threshold", meta.threshold)) - float(threshold)) > 1e-9:
        return ""
    what = str(record.get("source") or "images")
    target = str(record.get("target") or "a target")
    return (
        f"The threshold {threshold:.4f} was calibrated ({target}) on {what} of {Path(data_dir).name}, the images this "
        "report scores: its figures here are optimistic. Judge it on images neither training nor calibration used."
    )


def _card_html(entry: GalleryEntry, defect_type: str | None) -> str:
    image, insp, label, path = entry
    wrong = entry.misclassified
    tag = ""
    if wrong:
        tag = ' <span class="tag">MISSED</span>' if label == 1 else ' <span class="tag">FALSE REJECT</span>'
    truth = defect_type or ("good" if label == 0 else "defective")
    name = Path(str(path)).name
    parent = Path(str(path)).parent.name
    return (
        f'<div class="card{" wrong" if wrong else ""}"><img alt="{html.escape(name)}" src="{_data_uri(thumbnail(image, insp))}">'
        f'<span class="v-{insp.verdict.value}">{insp.verdict.value}</span> p={insp.p_anomaly:.3f}{tag}<br>'
        f'truth: {html.escape(truth)}<br><span class="path">{html.escape(parent)}/{html.escape(name)}</span></div>'
    )


def write_html_report(
    path: str | os.PathLike,
    report: EvalReport,
    meta: ModelMeta | None,
    gallery: Sequence[GalleryEntry],
    *,
    title: str | None = None,
    source: str = "",
    calibration: Sequence[Calibration] | None = None,
    box_recall_threshold: float | None = None,
    data_dir: str | os.PathLike | None = None,
) -> Path:
    """Write a self-contained HTML report; gallery holds (image RGB, Inspection, label, path), misclassified shown first."""
    path = Path(path)
    text = report_html(
        report, meta, gallery, title=title, source=source, calibration=calibration, box_recall_threshold=box_recall_threshold,
        data_dir=data_dir,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def report_html(
    report: EvalReport,
    meta: ModelMeta | None,
    gallery: Sequence[GalleryEntry],
    *,
    title: str | None = None,
    source: str = "",
    calibration: Sequence[Calibration] | None = None,
    box_recall_threshold: float | None = None,
    for_print: bool = False,
    data_dir: str | os.PathLike | None = None,
) -> str:
    """The report as one HTML document; for_print lays it out in tables (for renderers without flexbox, e.g. PDF).

    The header gives this report's own figures at its threshold (never the training-time ones), and warns
    when that threshold was calibrated on the images scored here (data_dir: the folder they came from).
    """
    product = meta.product if meta is not None else "model"
    title = title or f"VisInspect held-out report: {product}"
    labels = [s.label for s in report.scores]
    probs = [s.p_anomaly for s in report.scores]
    if calibration is None:
        calibration = []
        if len(set(labels)) == 2:
            calibration = [at_threshold(labels, probs, report.threshold, target="current threshold")]
            calibration += calibration_table(labels, probs)
    kinds = {s.path: s.defect_type for s in report.scores}
    ordered = gallery_order(list(gallery))
    n_wrong = sum(1 for e in ordered if e.misclassified)

    model_lines = [
        f"<b>at threshold {report.threshold:.4f}: accuracy {_pct(report.accuracy)}, balanced accuracy "
        f"{_pct(report.balanced_accuracy)}, {report.fn} missed, {report.fp} false rejects</b>"
    ]
    if meta is not None:
        model_lines.append(html.escape(replace(meta, metrics={}).describe()))  # without the training-time accuracy
        ds = meta.dataset or {}
        if ds.get("root"):
            model_lines.append(f"trained on {html.escape(str(ds.get('root')))} ({html.escape(str(ds.get('layout', '')))} layout)")
        if meta.calibration:
            c = meta.calibration
            model_lines.append(
                f"stored threshold {meta.threshold:.4f} (calibrated: {html.escape(str(c.get('target', '?')))}, "
                f"{html.escape(str(c.get('created', ''))[:16].replace('T', ' '))})"
            )
    if source:
        model_lines.append(f"evaluated on {html.escape(source)}")
    model_lines.append(f"report written {datetime.now().strftime('%Y-%m-%d %H:%M')}")

    warning = calibration_overlap(meta, data_dir, report.threshold)
    cards = [_card_html(e, kinds.get(str(e[3]))) for e in ordered]
    if for_print:
        top = (f"<table><tr>{_CELL}><h2>Metrics</h2>", f"</td>{_CELL}><h2>Confusion matrix</h2>",
               f"</td></tr><tr>{_CELL} colspan='2'><h2>Per type</h2>", "</td></tr></table>")  # fmt: skip
        rows = [cards[i : i + PRINT_COLUMNS] for i in range(0, len(cards), PRINT_COLUMNS)]
        grid = "<table>" + "".join("<tr>" + "".join(f"{_CELL}>{c}</td>" for c in row) + "</tr>" for row in rows) + "</table>"
    else:
        top = ("<div class='flex'><div><h2>Metrics</h2>", "</div><div><h2>Confusion matrix</h2>",
               "</div><div><h2>Per type</h2>", "</div></div>")  # fmt: skip
        grid = "<div class='grid'>" + "".join(cards) + "</div>"
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_PRINT_CSS if for_print else _CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p class='sub'>{'<br>'.join(model_lines)}</p>",
        f"<p class='warn'>&#9888; {html.escape(warning)}</p>" if warning else "",
        top[0],
        _metrics_html(report, box_recall_threshold),
        top[1],
        _confusion_html(report.tp, report.fn, report.fp, report.tn),
        top[2],
        _per_type_html(report.scores),
        top[3],
        "<h2>Calibration: thresholds for each target</h2>",
        _calibration_html(calibration),
        f"<h2>Gallery: {len(ordered)} held-out images, {n_wrong} misclassified (shown first)</h2>",
        grid,
        "</body></html>",
    ]
    return "".join(parts)


def rethreshold(report: EvalReport, threshold: float) -> EvalReport:
    """The same held-out scores judged at another threshold (box recall and pixel AUROC are kept as measured)."""
    labels = [s.label for s in report.scores]
    probs = [s.p_anomaly for s in report.scores]
    predicted = Thresholds(decision=threshold).verdicts(probs)
    scores = tuple(replace(s, predicted=int(v)) for s, v in zip(report.scores, predicted))
    return replace(report, **image_metrics(labels, probs, threshold), scores=scores)
