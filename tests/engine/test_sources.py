"""Frame sources and the stream loop: real files and videos, plus a fake camera that fails on cue."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.errors import ImageReadError, SourceError
from engine.sources import (
    CameraSource,
    FolderSource,
    FrameReadError,
    FrameSource,
    ImageFilesSource,
    SourceEvent,
    VideoSource,
    camera_spec,
    natural_key,
    open_source,
    stream_frames,
)
from engine.types import Frame


def _png(path: Path, value: int = 100, size: tuple[int, int] = (12, 16)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((*size, 3), value, np.uint8))
    return path


def _video(path: Path, frames: int = 5, size: tuple[int, int] = (32, 24)) -> Path:
    """An MJPG .avi of pure red frames (written as BGR, so red is channel 2)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    assert writer.isOpened()
    red = np.zeros((size[1], size[0], 3), np.uint8)
    red[:, :, 2] = 255
    for _ in range(frames):
        writer.write(red)
    writer.release()
    return path


def _drain(source: FrameSource, **options) -> list[Frame | SourceEvent]:
    return list(stream_frames(source, stop=threading.Event(), sleep=lambda _s: None, **options))


# -- video ---------------------------------------------------------------------------------------


def test_video_source_reads_every_frame_as_rgb(tmp_path):
    source = VideoSource(_video(tmp_path / "line.avi", frames=5))
    with source:
        frames = []
        while (frame := source.read()) is not None:
            frames.append(frame)
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    image = frames[0].image
    assert image.shape == (24, 32, 3)
    assert image.dtype == np.uint8
    assert image[..., 0].mean() > 200
    assert image[..., 2].mean() < 50
    assert frames[0].source_id == str(tmp_path / "line.avi")
    assert not source.is_live


def test_video_source_loops_with_increasing_indices(tmp_path):
    source = VideoSource(_video(tmp_path / "line.avi", frames=3), loop=True)
    with source:
        indices = [source.read().index for _ in range(8)]
    assert indices == list(range(8))


def test_a_stopped_file_source_goes_on_where_it_stopped(tmp_path):
    """start_at (set by the station for a folder, image list or video it stopped) skips what was already read."""
    video = VideoSource(_video(tmp_path / "line.avi", frames=6))
    video.start_at = 4
    with video:
        assert [video.read().index, video.read().index, video.read()] == [4, 5, None]
    files = [_png(tmp_path / f"p{i}.png", 10 * i) for i in range(4)]
    listed = ImageFilesSource(files)
    listed.start_at = 2
    with listed:
        assert [f.path for f in (listed.read(), listed.read())] == [str(files[2]), str(files[3])]
        assert listed.read() is None
    looping = ImageFilesSource(files, loop=True)
    looping.start_at = 6  # past the end of a looping list: it wraps around
    with looping:
        frame = looping.read()
    assert frame.path == str(files[2]) and frame.index == 6
    done = ImageFilesSource(files)
    done.start_at = 9  # past the end, not looping: from the start again
    with done:
        assert done.read().path == str(files[0])


def test_video_source_missing_or_corrupt_file_is_source_error(tmp_path):
    with pytest.raises(SourceError, match="file not found"):
        VideoSource(tmp_path / "missing.avi").open()
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video at all")
    with pytest.raises(SourceError, match="could not be opened"):
        VideoSource(junk).open()


# -- files and folders ---------------------------------------------------------------------------


def test_natural_sort_puts_img2_before_img10():
    names = ["img10.png", "img2.png", "IMG1.png", "img2b.png"]
    assert sorted(names, key=natural_key) == ["IMG1.png", "img2.png", "img2b.png", "img10.png"]


def test_folder_reads_good_images_and_reports_bad_ones_in_order(tmp_path):
    _png(tmp_path / "img1.png")
    (tmp_path / "img2.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    _png(tmp_path / "img3.png")
    (tmp_path / "img4.jpg").write_bytes(b"")
    _png(tmp_path / "sub" / "img5.png")
    (tmp_path / "notes.txt").write_text("ignored")

    items = _drain(FolderSource(tmp_path))

    kinds = [i.kind if isinstance(i, SourceEvent) else "frame" for i in items]
    assert kinds == ["frame", "file_error", "frame", "file_error", "frame", "ended"]
    assert [Path(i.path).name for i in items if isinstance(i, Frame)] == ["img1.png", "img3.png", "img5.png"]
    errors = [i for i in items if isinstance(i, SourceEvent) and i.kind == "file_error"]
    assert [(Path(e.path).name, e.index) for e in errors] == [("img2.png", 1), ("img4.jpg", 3)]
    assert "empty file" in errors[1].message


def test_folder_non_recursive_skips_subfolders(tmp_path):
    _png(tmp_path / "a.png")
    _png(tmp_path / "sub" / "b.png")
    source = FolderSource(tmp_path, recursive=False)
    with source:
        assert source.read().path == str(tmp_path / "a.png")
        assert source.read() is None


def test_file_error_leaves_source_advanced_and_is_an_image_read_error(tmp_path):
    good = _png(tmp_path / "img2.png")
    gone = _png(tmp_path / "img1.png")
    source = FolderSource(tmp_path)
    source.open()
    gone.unlink()  # deleted between listing and reading
    with pytest.raises(FrameReadError) as caught:
        source.read()
    assert isinstance(caught.value, ImageReadError)
    assert (caught.value.path, caught.value.index) == (str(gone), 0)
    assert source.read().path == str(good)
    assert source.read() is None


def test_folder_loop_restarts_at_first_file(tmp_path):
    for n in (1, 2):
        _png(tmp_path / f"img{n}.png")
    source = FolderSource(tmp_path, loop=True)
    with source:
        frames = [source.read() for _ in range(5)]
    assert [Path(f.path).name for f in frames] == ["img1.png", "img2.png"] * 2 + ["img1.png"]
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]


def test_looping_over_only_unreadable_files_ends_instead_of_spinning(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"junk")
    items = _drain(FolderSource(tmp_path, loop=True))
    assert [i.kind for i in items] == ["file_error", "ended"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks here")
def test_symlink_loop_in_folder_does_not_hang(tmp_path):
    _png(tmp_path / "a" / "img1.png")
    try:
        os.symlink(tmp_path, tmp_path / "a" / "back", target_is_directory=True)
    except OSError:
        pytest.skip("cannot create symlinks here")
    started = time.monotonic()
    frames = [i for i in _drain(FolderSource(tmp_path)) if isinstance(i, Frame)]
    assert len(frames) == 1
    assert time.monotonic() - started < 5


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="needs POSIX, not root")
def test_unreadable_subfolder_is_skipped(tmp_path):
    _png(tmp_path / "img1.png")
    locked = tmp_path / "locked"
    _png(locked / "img2.png")
    locked.chmod(0)
    try:
        frames = [i for i in _drain(FolderSource(tmp_path)) if isinstance(i, Frame)]
    finally:
        locked.chmod(0o755)
    assert [Path(f.path).name for f in frames] == ["img1.png"]


def test_missing_folder_is_source_error(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        FolderSource(tmp_path / "nope").open()


def test_image_files_source_keeps_given_order(tmp_path):
    b, a = _png(tmp_path / "b.png", 10), _png(tmp_path / "a.png", 200)
    source = ImageFilesSource([b, a])
    with source:
        assert [source.read().image[0, 0, 0] for _ in range(2)] == [10, 200]
        assert source.read() is None


# -- open_source ---------------------------------------------------------------------------------


def test_open_source_dispatches_on_the_spec(tmp_path):
    image = _png(tmp_path / "one.png")
    video = _video(tmp_path / "clip.avi")
    assert isinstance(open_source("0"), CameraSource)
    assert open_source("0").target == 0
    url_source = open_source("rtsp://user:secret@10.0.0.5/stream")
    assert isinstance(url_source, CameraSource)
    assert url_source.is_live
    assert "secret" not in url_source.description
    assert isinstance(open_source(str(tmp_path)), FolderSource)
    assert isinstance(open_source(str(video), loop=True), VideoSource)
    single = open_source(str(image))
    assert isinstance(single, ImageFilesSource)
    assert single.paths == [image]
    assert all(isinstance(open_source(s), FrameSource) for s in ("1", str(tmp_path), str(video)))


def test_a_camera_spec_can_ask_for_a_resolution():
    camera = open_source("0@1920x1080")
    assert isinstance(camera, CameraSource) and camera.target == 0
    assert (camera._width, camera._height) == (1920, 1080)
    assert camera.description == "camera 0 at 1920x1080"
    assert open_source(" 2 @ 640 x 480 ")._width == 640
    assert camera_spec("0@1920x1080") == (0, 1920, 1080) and camera_spec("rtsp://cam/1") == ("rtsp://cam/1", None, None)
    assert camera_spec("/data/line 3") is None and camera_spec("0@big") is None
    with pytest.raises(SourceError, match="width and height of 1 or more"):
        open_source("0@0x720")


@pytest.mark.parametrize("spec", ["", "   ", "does/not/exist.png", "notes.txt"])
def test_open_source_rejects_anything_else_naming_what_is_accepted(tmp_path, monkeypatch, spec):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(SourceError) as caught:
        open_source(spec)
    message = str(caught.value)
    for accepted in ("camera index", "URL", "folder", ".mp4", ".png"):
        assert accepted in message


# -- camera --------------------------------------------------------------------------------------


def test_camera_that_does_not_exist_is_source_error_quickly():
    started = time.monotonic()
    with pytest.raises(SourceError, match="camera 99 could not be opened"):
        CameraSource(99, timeout_s=1.0).open()
    assert time.monotonic() - started < 5


def test_camera_rejects_bad_options():
    with pytest.raises(ValueError, match="width"):
        CameraSource(0, width=0)
    with pytest.raises(ValueError, match="camera index"):
        CameraSource(-1)


# -- stream_frames with a fake live source -------------------------------------------------------


class FakeCamera:
    """A live source following a script: (h, w) is a frame, "fail" raises SourceError, "empty" a 0x0 frame."""

    is_live = True
    description = "fake camera"

    def __init__(self, script, *, reopen_failures: int = 0):
        self.script = list(script)
        self.reopen_failures = reopen_failures
        self.opens = 0
        self.closes = 0
        self.index = 0

    def open(self):
        self.opens += 1
        if self.opens > 1 and self.reopen_failures:
            self.reopen_failures -= 1
            raise SourceError("fake camera could not be opened")

    def read(self):
        step = self.script.pop(0) if self.script else (8, 8)
        if step == "fail":
            raise SourceError("fake camera stopped delivering frames")
        image = np.zeros((0, 0, 3), np.uint8) if step == "empty" else np.zeros((*step, 3), np.uint8)
        self.index += 1
        return Frame(image=image, index=self.index - 1, timestamp=time.time(), source_id="fake")

    def close(self):
        self.closes += 1

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()


def _kinds(items):
    return [
        i.kind if isinstance(i, SourceEvent) else f"frame{i.image.shape[1]}x{i.image.shape[0]}" for i in items
    ]


def test_stream_reports_lost_recovered_resolution_and_empty_frames():
    camera = FakeCamera([(8, 8), "fail", "fail", (8, 8), "empty", (16, 12), (16, 12)])
    assert isinstance(camera, FrameSource)
    slept: list[float] = []
    stop = threading.Event()
    items = []
    for item in stream_frames(camera, stop=stop, backoff=(0.5, 1), sleep=slept.append):
        items.append(item)
        if len(items) == 7:
            stop.set()
    assert _kinds(items) == [
        "frame8x8",
        "lost",
        "recovered",
        "frame8x8",
        "empty_frame",
        "resolution_changed",
        "frame12x16",
    ]
    assert sum(slept) == pytest.approx(0.5 + 1.0)
    assert max(slept) <= 0.1 + 1e-9
    assert camera.opens == 3
    assert camera.closes == 3
    changed = items[5]
    assert "8x8" in changed.message
    assert "12x16" in changed.message


def test_stream_keeps_backing_off_while_reopen_fails_then_gives_up():
    camera = FakeCamera(["fail"], reopen_failures=100)
    slept: list[float] = []
    gen = stream_frames(
        camera, stop=threading.Event(), max_retries=3, backoff=(0.5, 1, 2), sleep=slept.append
    )
    assert next(gen).kind == "lost"
    with pytest.raises(SourceError, match="gave up after 3"):
        next(gen)
    assert sum(slept) == pytest.approx(0.5 + 1 + 2)
    assert camera.opens == 4
    assert camera.closes == 4


def test_stream_recovers_after_failed_reopens():
    camera = FakeCamera([(8, 8), "fail", (8, 8)], reopen_failures=2)
    slept: list[float] = []
    stop = threading.Event()
    items = []
    for item in stream_frames(camera, stop=stop, backoff=(0.5, 1, 2, 5), sleep=slept.append):
        items.append(item)
        if len(items) == 4:
            stop.set()
    assert _kinds(items) == ["frame8x8", "lost", "recovered", "frame8x8"]
    assert sum(slept) == pytest.approx(0.5 + 1 + 2)


def test_stop_during_backoff_ends_promptly_and_closes():
    camera = FakeCamera(["fail"])
    stop = threading.Event()
    naps: list[float] = []

    def sleep(seconds):
        naps.append(seconds)
        if len(naps) == 3:
            stop.set()

    items = list(stream_frames(camera, stop=stop, backoff=(60,), sleep=sleep))
    assert [i.kind for i in items] == ["lost"]
    assert len(naps) == 3  # noticed within one short nap, not after 60 s
    assert camera.closes >= 1


def test_stop_between_frames_ends_generator_and_closes_source():
    camera = FakeCamera([])  # endless 8x8 frames
    stop = threading.Event()
    frames = 0
    for _ in stream_frames(camera, stop=stop, sleep=lambda _s: None):
        frames += 1
        if frames == 3:
            stop.set()
    assert frames == 3
    assert camera.closes == 1


def test_abandoned_generator_closes_source():
    camera = FakeCamera([])
    gen = stream_frames(camera, stop=threading.Event())
    next(gen)
    gen.close()
    assert camera.closes == 1


def test_source_error_from_a_file_source_is_raised(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        _drain(FolderSource(tmp_path / "gone"))


def test_stream_rejects_bad_options():
    with pytest.raises(ValueError, match="backoff"):
        _drain(FakeCamera([]), backoff=())
    with pytest.raises(ValueError, match="max_retries"):
        _drain(FakeCamera([]), max_retries=-1)
