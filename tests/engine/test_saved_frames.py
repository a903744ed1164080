"""An anomaly frame from a JPEG file is saved as that file, byte for byte (no second lossy encode, no encoding time);
a frame that is not the file's pixels as stored (a PNG, an EXIF-rotated JPEG, an ROI crop) is encoded as before."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from engine.data.decode import read_image
from engine.data.preprocess import Preprocess
from engine.inference import Inspector
from engine.inference.live import LiveResult
from engine.jobs.live import InspectorSlot, live_job
from engine.model import build_model
from engine.modelfile import ModelMeta, save_model
from engine.results import ResultsLog
from engine.types import Verdict


@pytest.fixture(scope="module")
def every_part_an_anomaly(tmp_path_factory) -> Inspector:
    """A random-init model at 32 px with threshold 0: every part is an ANOMALY, so every frame is saved."""
    import torch

    torch.manual_seed(4)
    model, _ = build_model(backbone="vgg16_bn", backbone_weights="none")
    meta = ModelMeta(product="frames", backbone="vgg16_bn", backbone_weights={"kind": "none", "detail": "random init"},
                     preprocess=Preprocess(32).to_dict(), threshold=0.0)  # fmt: skip
    path = save_model(tmp_path_factory.mktemp("frames-model") / "frames.safetensors", model, meta)
    return Inspector.from_file(path, device="cpu")


@pytest.fixture(scope="module")
def line(tmp_path_factory) -> Path:
    """Two plain JPEGs, a PNG and a JPEG whose EXIF says to rotate it a quarter turn, all 40 x 64."""
    folder = tmp_path_factory.mktemp("line")
    rng = np.random.default_rng(2)
    for i, name in enumerate(("a-plain.jpg", "b-plain.jpeg", "c-lossless.png", "d-rotated.jpg")):
        pixels = rng.integers(0, 255, (40, 64, 3), dtype=np.uint8)
        pixels[:, : 8 * (i + 1)] = 30
        image = Image.fromarray(pixels)
        if name.startswith("d-"):
            exif = Image.Exif()
            exif[0x0112] = 6  # rotate 90 degrees clockwise to display
            image.save(folder / name, exif=exif, quality=85)
        else:
            image.save(folder / name, **({"quality": 85} if name.endswith(("jpg", "jpeg")) else {}))
    return folder


def _run(spec, inspector: Inspector, log: ResultsLog, **kw) -> list[LiveResult]:
    items = live_job(spec, InspectorSlot(inspector, "run-frames"), log, stop=threading.Event(), **kw)
    return [item for item in items if isinstance(item, LiveResult)]


def test_an_anomaly_from_a_plain_jpeg_is_saved_as_the_file_itself(every_part_an_anomaly, line, tmp_path):
    with ResultsLog(tmp_path / "results.sqlite3") as log:
        results = _run(str(line), every_part_an_anomaly, log)
        rows = {Path(row.item).name: row for row in log.query()}
    assert len(results) == 4 and all(r.inspection.verdict is Verdict.ANOMALY for r in results)
    for name in ("a-plain.jpg", "b-plain.jpeg"):
        assert Path(rows[name].frame_path).read_bytes() == (line / name).read_bytes()
    png = read_image(rows["c-lossless.png"].frame_path)
    assert Path(rows["c-lossless.png"].frame_path).read_bytes()[:3] == b"\xff\xd8\xff" and png.shape == (40, 64, 3)
    rotated = rows["d-rotated.jpg"]
    assert Path(rotated.frame_path).read_bytes() != (line / "d-rotated.jpg").read_bytes()
    # Any viewer, EXIF-aware (OpenCV) or not (PIL without exif_transpose), sees the frame as it was inspected.
    assert cv2.imread(rotated.frame_path).shape == (64, 40, 3) == read_image(line / "d-rotated.jpg").shape
    with Image.open(rotated.frame_path) as plain:
        assert plain.size == (40, 64)  # width x height: the stored pixels are already upright


def test_an_roi_crop_is_saved_as_the_crop_not_as_the_file(every_part_an_anomaly, line, tmp_path):
    roi = (8, 4, 32, 24)  # x, y, width, height
    with ResultsLog(tmp_path / "results.sqlite3") as log:
        _run([str(line / "a-plain.jpg")], every_part_an_anomaly, log, roi=roi)
        (row,) = log.query()
    assert read_image(row.frame_path).shape == (24, 32, 3)
