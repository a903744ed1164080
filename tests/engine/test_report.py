"""The HTML report: one self-contained file with the numbers, confusion matrix, calibration and thumbnails."""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.data.preprocess import Preprocess
from engine.evaluation.metrics import EvalReport, SampleScore, image_metrics
from engine.evaluation.report import (
    GalleryEntry,
    calibration_overlap,
    gallery_order,
    pick_scores,
    shrink,
    thumbnail,
    write_html_report,
)
from engine.modelfile import ModelMeta
from engine.thresholds import Thresholds
from engine.types import Box, Inspection, Verdict


def _inspection(p: float, shape=(120, 160), boxes=()) -> Inspection:
    heat = np.zeros(shape, np.float32)
    heat[40:60, 50:80] = 1.0
    return Inspection(p, Thresholds(0.5), heat, tuple(boxes))


def _report(labels, probs) -> EvalReport:
    m = image_metrics(labels, probs, 0.5)
    scores = tuple(
        SampleScore(f"/data/{'good' if y == 0 else 'crack'}/{i:03d}.png", "good" if y == 0 else "crack", y, p, int(p >= 0.5))
        for i, (y, p) in enumerate(zip(labels, probs, strict=True))
    )
    return EvalReport(**m, pixel_auroc=0.8766, box_recall=0.625, n_masks=3, scores=scores)


def test_report_has_the_numbers_and_one_thumbnail_per_gallery_image(tmp_path: Path) -> None:
    labels = [0, 0, 0, 0, 1, 1, 1]
    probs = [0.1, 0.2, 0.7, 0.3, 0.9, 0.4, 0.8]  # one false reject, one miss
    report = _report(labels, probs)
    meta = ModelMeta(
        product="widget<&>",
        backbone="vgg16_bn",
        backbone_weights={"kind": "none", "detail": "random init"},
        preprocess=Preprocess(64).to_dict(),
        dataset={"root": "/data", "layout": "folders"},
    )
    rng = np.random.default_rng(0)
    gallery = [
        GalleryEntry(
            rng.integers(0, 255, (120, 160, 3), dtype=np.uint8),
            _inspection(s.p_anomaly, boxes=(Box(50, 40, 80, 60, 0.9),) if s.p_anomaly >= 0.5 else ()),
            s.label,
            s.path,
        )
        for s in report.scores
    ]
    out = write_html_report(tmp_path / "sub" / "report.html", report, meta, gallery, source="the held-out split")
    text = out.read_text(encoding="utf-8")
    assert out.is_file() and text.startswith("<!DOCTYPE html>")
    assert text.count("data:image/jpeg;base64,") == len(gallery)
    assert "src=\"http" not in text and "<link" not in text  # self-contained
    assert "widget&lt;&amp;&gt;" in text  # escaped
    for number in (f"{report.accuracy:.1%}", f"{report.balanced_accuracy:.1%}", f"{report.image_auroc:.3f}", "0.877", "0.625"):
        assert number in text
    confusion = re.search(r'<table class="cm">(.*?)</table>', text).group(1)
    assert [int(v) for v in re.findall(r"<td class=\"\w+\">(\d+)<small>", confusion)] == [report.tn, report.fp, report.fn, report.tp]
    assert "no-miss" in text and "balanced" in text and "max-false-reject:5" in text
    # misclassified first: the false reject (p 0.7) and the miss (p 0.4) lead the gallery
    cards = re.findall(r'<div class="card( wrong)?">', text)
    assert [bool(c) for c in cards] == [True, True] + [False] * (len(gallery) - 2)
    assert "MISSED" in text and "FALSE REJECT" in text and "the held-out split" in text


def test_report_without_meta_or_gallery_and_one_class_only(tmp_path: Path) -> None:
    report = _report([0, 0, 0], [0.1, 0.2, 0.3])
    text = write_html_report(tmp_path / "r.html", report, None, []).read_text()
    assert "No calibration table" in text and "data:image" not in text and "100.0%" in text


def test_gallery_order_and_pick_put_errors_first() -> None:
    pairs = [(0, 0.1), (1, 0.2), (0, 0.95), (1, 0.55)]
    entries = [GalleryEntry(np.zeros((8, 8, 3), np.uint8), _inspection(p, (8, 8)), y, f"{i}") for i, (y, p) in enumerate(pairs)]
    assert [e.path for e in gallery_order(entries)] == ["2", "1", "3", "0"]
    scores = [SampleScore(str(i), "x", y, p, int(p >= 0.5)) for i, (y, p) in enumerate(pairs)]
    assert [s.path for s in pick_scores(scores, 3, thresholds=Thresholds(0.5))] == ["2", "1", "3"]
    assert [e.inspection.verdict for e in (entries[3].at(Thresholds(0.6)), entries[3])] == [Verdict.GOOD, Verdict.ANOMALY]


def test_shrink_scales_heatmap_and_boxes_and_thumbnail_fits() -> None:
    image = np.zeros((400, 600, 3), np.uint8)
    insp = _inspection(0.9, (400, 600), boxes=(Box(300, 200, 600, 400, 0.9),))
    small, s_insp = shrink(image, insp, 150)
    assert small.shape == (100, 150, 3) and s_insp.heatmap.shape == (100, 150)
    assert s_insp.boxes[0].as_list()[:4] == [75, 50, 150, 100]
    assert max(thumbnail(image, insp, 90).shape[:2]) == 90


def test_header_gives_this_reports_figures_and_warns_when_calibrated_on_its_images(tmp_path: Path) -> None:
    labels = [0, 0, 0, 0, 1, 1, 1]
    probs = [0.1, 0.2, 0.7, 0.3, 0.9, 0.4, 0.8]
    report = _report(labels, probs)
    data = tmp_path / "widget"
    data.mkdir()
    meta = ModelMeta(
        product="widget", backbone="vgg16_bn", backbone_weights={"kind": "none"}, preprocess=Preprocess(64).to_dict(),
        threshold=0.5, metrics={"accuracy": 0.123456, "balanced_accuracy": 0.2},  # the training-time figures, stale now
        calibration={"threshold": 0.5, "target": "balanced", "source": "the model's 7 held-out images", "data": str(data)},
    )
    text = write_html_report(tmp_path / "r.html", report, meta, [], data_dir=str(data)).read_text()
    header = re.search(r"<p class='sub'>(.*?)</p>", text).group(1)
    assert f"accuracy {report.accuracy:.1%}" in header and "12.3%" not in text
    warning = re.search(r"<p class='warn'>(.*?)</p>", text).group(1)
    assert "calibrated (balanced) on the model&#x27;s 7 held-out images of widget" in warning and "optimistic" in warning
    other = tmp_path / "other"
    other.mkdir()
    assert "class='warn'" not in write_html_report(tmp_path / "o.html", report, meta, [], data_dir=str(other)).read_text()
    rejudged = replace(meta, threshold=0.45)  # a threshold set by hand afterwards was not chosen on these images
    assert calibration_overlap(rejudged, data, 0.45) == ""
    assert calibration_overlap(meta, data, 0.5).startswith("The threshold 0.5000 was calibrated")
