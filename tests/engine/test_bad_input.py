"""Bad input (tests/engine/badfiles.py): each file is inspected correctly or is one ERROR with a one-line
reason, every other file of the same run still gets its verdict, and no traceback reaches the user -
through read_image, Inspector.inspect_files, the `predict` CLI and FolderSource + stream_frames."""

from __future__ import annotations

import csv
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import engine.data.decode as decode
from engine.data.decode import read_image
from engine.errors import ImageReadError
from engine.inference import Inspector
from engine.results.log import storable_text
from engine.sources import FolderSource, SourceEvent, list_images, stream_frames
from engine.types import Frame, Verdict
from tests.engine import badfiles
from tests.engine.badfiles import MARKER, SKIPPED, VANISHING, Expect, make_corpus, texture, unlock


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """(folder, {name: Expect}) for the corpus; module scope, so tests must not change it (see fresh_corpus)."""
    root = tmp_path_factory.mktemp("bad input") / "corpus ü"
    cases = make_corpus(root)
    yield root, cases
    unlock(root)


@pytest.fixture
def fresh_corpus(tmp_path):
    root = tmp_path / "corpus"
    cases = make_corpus(root)
    yield root, cases
    unlock(root)


@pytest.fixture(scope="module")
def inspector(model_file):
    return Inspector.from_file(model_file, device="cpu")


def _check_error(name: str, message: str | None, expect: Expect) -> None:
    assert not expect.ok, f"{name}: expected to be inspected, got error {message!r}"
    assert message and "\n" not in message and "Traceback" not in message, (name, message)
    assert re.search(expect.reason, message), (name, message, expect.reason)


def _rel(root: Path, path: str | os.PathLike) -> str:
    return Path(path).relative_to(root).as_posix()


# -- decoding ------------------------------------------------------------------------------------


def test_corpus_lists_every_file_case_and_nothing_else(corpus):
    root, cases = corpus
    listed = [_rel(root, p) for p in list_images(root)]
    assert sorted(listed) == sorted(cases)  # not the folder named folder.png, not through 'loop dir/up'
    assert len(cases) >= 25
    print("corpus cases skipped here:", SKIPPED or "none")


def test_read_image_gives_rgb_or_one_clear_error_for_every_file(fresh_corpus):
    root, cases = fresh_corpus
    (root / VANISHING).unlink()  # listed (cases), then gone before reading
    for name, expect in cases.items():
        try:
            image = read_image(root / name)
        except ImageReadError as exc:
            _check_error(name, str(exc), expect)
            assert name.split("/")[-1] in storable_text(exc) or "\\x" in storable_text(exc)
            continue
        assert expect.ok, f"{name} should be an error ({expect.reason}) but decoded to {image.shape}"
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, name
        assert image.shape[:2] == expect.shape, name
        assert image.flags.c_contiguous, name


def test_odd_pixel_formats_decode_to_the_same_pixels(corpus):
    root, _ = corpus
    good = texture()
    assert np.array_equal(read_image(root / "good.png"), good)
    assert np.array_equal(read_image(root / "rgba.png"), good)  # transparent, colour kept
    assert np.array_equal(read_image(root / "deep16_rgb.png"), good)  # 16-bit scaled down, not clipped
    assert np.array_equal(read_image(root / "deep16.png"), np.repeat(good[:, :, :1], 3, axis=2))
    assert np.array_equal(read_image(root / "grey.png"), np.repeat(good[:, :, :1], 3, axis=2))
    assert np.array_equal(read_image(root / "wrong_suffix.png"), read_image(root / "good_jpeg.jpg"))
    cmyk = read_image(root / "cmyk.jpg").reshape(-1, 3).mean(axis=0)
    assert cmyk[0] > 230 and cmyk[1] < 25 and cmyk[2] < 25  # red, not inverted or cyan
    assert read_image(root / "tiny_1x1.png").tolist() == [[[200, 200, 200]]]


def test_exif_rotated_jpeg_is_returned_upright(corpus):
    root, _ = corpus
    image = read_image(root / "exif_rot6.jpg")
    stored_h, stored_w = badfiles.EXIF_STORED_SHAPE
    assert image.shape[:2] == (stored_w, stored_h)  # transposed: 30 wide x 40 high upright
    # Orientation 6 = rotate 90 degrees clockwise: the stored top-left corner is the viewer's top-right.
    top_right = image[:6, -6:].reshape(-1, 3).mean(axis=0)
    top_left = image[:6, :6].reshape(-1, 3).mean(axis=0)
    assert np.allclose(top_right, MARKER, atol=30), top_right
    assert top_left.max() < 80, top_left


# decode.py silences PIL's 89 Mpx warning process-wide, but pytest's per-test capture resets the filters.
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bomb_is_refused_quickly_and_never_decoded(corpus, monkeypatch):
    root, _ = corpus
    assert (root / "bomb.png").stat().st_size < 200
    decoded = []
    real = decode.cv2.imdecode
    monkeypatch.setattr(decode.cv2, "imdecode", lambda *a, **k: decoded.append(1) or real(*a, **k))
    started = time.perf_counter()
    with pytest.raises(ImageReadError, match=r"declares 2,500,000,000 pixels, over the limit of 100,000,000; not decoded"):
        read_image(root / "bomb.png")
    assert time.perf_counter() - started < 0.5
    assert decoded == []  # refused from the header alone
    # Just over our limit yet under PIL's own bomb limit: still refused from the header.
    with pytest.raises(ImageReadError, match="declares 12000x9000 pixels"):
        decode.decode_image(badfiles.bomb_png(12_000, 9_000), name="big")
    assert decoded == []
    # A header PIL cannot parse (PAM) reaches OpenCV, whose own limit refuses it as one clear error.
    started = time.perf_counter()
    with pytest.raises(ImageReadError, match="not decoded"):
        read_image(root / "bomb_pam.png")
    assert time.perf_counter() - started < 0.5


def test_device_files_and_oversized_files_are_not_read(tmp_path, monkeypatch):
    if os.path.exists("/dev/zero"):
        with pytest.raises(ImageReadError, match="not a regular file"):
            read_image("/dev/zero")  # would otherwise read forever
    big = tmp_path / "huge.jpg"
    big.write_bytes(b"\xff\xd8" + b"\0" * 2000)
    monkeypatch.setattr(decode, "MAX_FILE_BYTES", 1000)
    with pytest.raises(ImageReadError, match="over the 1,000-byte limit; not read"):
        read_image(big)
    with pytest.raises(ImageReadError, match="is a folder"):
        read_image(tmp_path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads files whatever their permissions, so chmod 000 cannot make one unreadable")
def test_unreadable_file_is_permission_denied(tmp_path):
    path = tmp_path / "locked.png"
    path.write_bytes(b"\x89PNG")
    path.chmod(0)
    try:
        with pytest.raises(ImageReadError, match="permission denied"):
            read_image(path)
    finally:
        path.chmod(0o644)


# -- the Inspector -------------------------------------------------------------------------------


def test_inspect_files_gives_every_file_a_verdict_or_one_error(fresh_corpus, inspector):
    root, cases = fresh_corpus
    paths = list_images(root)
    (root / VANISHING).unlink()  # deleted between listing and reading
    results = list(inspector.inspect_files(paths, batch_size=4, workers=2))
    assert [r.path for r in results] == [str(p) for p in paths]  # one result per file, in order
    by_name = {}
    for r in results:
        name = _rel(root, r.path)
        expect = cases[name]
        if r.inspection is None:
            _check_error(name, r.error, expect)
            continue
        assert expect.ok, f"{name} should be an error ({expect.reason}), got {r.inspection.verdict}"
        insp = r.inspection
        assert insp.verdict in (Verdict.GOOD, Verdict.ANOMALY) and 0.0 <= insp.p_anomaly <= 1.0
        assert insp.heatmap.shape == expect.shape, name  # heatmap in the upright image's pixels
        assert np.isfinite(insp.heatmap).all() and 0 <= insp.heatmap.min() and insp.heatmap.max() <= 1
        h, w = expect.shape
        for b in insp.boxes:
            assert 0 <= b.x0 < b.x1 <= w and 0 <= b.y0 < b.y1 <= h and 0 <= b.score <= 1, (name, b)
        by_name[name] = insp
    assert len(by_name) == sum(e.ok for e in cases.values())  # every readable file (the deleted one is an error)
    # The same pixels get the same verdict whatever the container, name or position in the batch.
    p = by_name["good.png"].p_anomaly
    for same in ("rgba.png", "deep16_rgb.png", "Ünïcödé 日本 名前.png"):
        assert by_name[same].p_anomaly == pytest.approx(p, abs=1e-4), same
    assert by_name["wrong_suffix.png"].p_anomaly == pytest.approx(by_name["good_jpeg.jpg"].p_anomaly, abs=1e-4)


# -- the command line ----------------------------------------------------------------------------


def test_cli_predict_reports_each_bad_file_in_one_row_and_inspects_the_rest(corpus, model_file, tmp_path):
    root, cases = corpus
    out, db = tmp_path / "out.csv", tmp_path / "results.sqlite3"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    r = subprocess.run(
        [sys.executable, "-m", "engine.cli", "predict", str(model_file), str(root), "--csv", str(out), "--log", str(db),
         "--device", "cpu", "--batch-size", "4"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert r.returncode == 1, r.stderr  # some inputs failed, the run finished
    assert "Traceback" not in r.stderr and "Error:" not in r.stderr, r.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    # A subprocess cannot be paused between listing and reading: the vanishing file is read normally.
    expected = {storable_text(root / n): (Expect(True, e.shape) if n == VANISHING else e) for n, e in cases.items()}
    assert sorted(row["path"] for row in rows) == sorted(expected)  # exactly one row per file
    n_error = 0
    for row in rows:
        expect = expected[row["path"]]
        if row["verdict"] == "ERROR":
            n_error += 1
            _check_error(row["path"], row["error"], expect)
        else:
            assert expect.ok, (row["path"], row["verdict"])
            assert row["verdict"] in (Verdict.GOOD, Verdict.ANOMALY) and 0.0 <= float(row["p_anomaly"]) <= 1.0
            assert not row["error"]
    assert n_error == sum(not e.ok for e in expected.values())
    assert f"{len(expected)} inputs:" in r.stderr and f"{n_error} ERROR" in r.stderr
    # The results log holds the same, including the file name that is not valid UTF-8.
    with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True) as conn:
        items = sorted(i for (i,) in conn.execute("SELECT item FROM results"))
    assert items == sorted(expected)


# -- frame sources -------------------------------------------------------------------------------


def test_folder_source_streams_frames_and_one_file_error_per_bad_file(fresh_corpus):
    root, cases = fresh_corpus
    source = FolderSource(root)
    source.open()  # lists the folder
    (root / VANISHING).unlink()
    source.open = lambda: None  # stream_frames opens again; keep the listing made before the delete
    started = time.monotonic()
    items = list(stream_frames(source, stop=threading.Event(), sleep=lambda _s: None))
    assert time.monotonic() - started < 10
    assert isinstance(items[-1], SourceEvent) and items[-1].kind == "ended"
    seen: list[str] = []
    for item in items[:-1]:
        if isinstance(item, Frame):
            name = _rel(root, item.path)
            assert cases[name].ok and item.image.shape[:2] == cases[name].shape, name
        else:
            assert item.kind == "file_error", item
            name = _rel(root, item.path)
            _check_error(name, item.message, cases[name])
        seen.append(name)
    assert sorted(seen) == sorted(cases)  # each file exactly once, frame or error
