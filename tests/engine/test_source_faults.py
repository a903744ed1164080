"""Camera faults injected into a real OpenCV capture of an MJPG video, through stream_frames and live_inspect.

test_sources.py covers the stream loop with a scripted fake camera; here the frames come from a real
cv2.VideoCapture and the faults are the ones a line camera has: stalls (slow reads), dropped connections,
failed reconnects, empty frames, a resolution change mid-stream - and a stop request during any of them.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.errors import SourceError
from engine.inference.live import LiveResult, live_inspect
from engine.sources import SourceEvent, VideoSource, stream_frames
from engine.thresholds import Thresholds
from engine.types import Frame, Inspection

SIZE = (64, 48)  # video frame width, height
RESIZED = (96, 72)


def write_video(path: Path, frames: int = 12) -> Path:
    """An MJPG .avi whose frame i is red with brightness growing with i (BGR on disk, so red is channel 2)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, SIZE)
    assert writer.isOpened()
    for i in range(frames):
        image = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
        image[:, :, 2] = 100 + 10 * i
        writer.write(image)
    writer.release()
    return path


@pytest.fixture
def video(tmp_path) -> Path:
    return write_video(tmp_path / "line.avi")


class FaultyCamera:
    """A live FrameSource over a real looping VideoSource that misbehaves on cue.

    script maps a read number (counted over the whole run, reconnects included) to a fault:
    "error" raises SourceError (connection dropped), "empty" returns a 0x0 frame, "resize" makes every
    later frame RESIZED, ("stall", s) blocks s seconds before returning the frame. reopen_failures[k] is
    how many reopens fail after the k-th dropped connection (the camera is still unplugged).
    """

    is_live = True

    def __init__(self, video: Path, script: dict, *, reopen_failures=(), open_delay_s: float = 0.0) -> None:
        self.inner = VideoSource(video, loop=True)
        self.description = "camera (fault injector over a real video)"
        self.script = dict(script)
        self.reopen_failures = list(reopen_failures)
        self.open_delay_s = open_delay_s
        self.reads = self.opens = self.closes = self.failed_opens = self.outages = 0
        self.resized = False
        self.read_started = threading.Event()

    def open(self) -> None:
        self.opens += 1
        if self.opens > 1:
            time.sleep(self.open_delay_s)
            k = self.outages - 1
            if k < len(self.reopen_failures) and self.reopen_failures[k] > 0:
                self.reopen_failures[k] -= 1
                self.failed_opens += 1
                raise SourceError("camera could not be opened (still unplugged)")
        self.inner.open()

    def read(self) -> Frame:
        n = self.reads
        self.reads += 1
        self.read_started.set()
        fault = self.script.get(n)
        if fault == "error":
            self.outages += 1
            raise SourceError("camera stopped delivering frames")
        if isinstance(fault, tuple) and fault[0] == "stall":
            time.sleep(fault[1])
        frame = self.inner.read()
        if frame is None:
            raise SourceError("video ended unexpectedly")
        if fault == "empty":
            return Frame(np.zeros((0, 0, 3), np.uint8), frame.index, frame.timestamp, frame.source_id)
        if fault == "resize":
            self.resized = True
        if self.resized:
            image = cv2.resize(frame.image, RESIZED, interpolation=cv2.INTER_LINEAR)
            return Frame(image, frame.index, frame.timestamp, frame.source_id)
        return frame

    def close(self) -> None:
        self.closes += 1
        self.inner.close()

    @property
    def released(self) -> bool:
        return self.inner._cap is None

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()


def _kind(item) -> str:
    if isinstance(item, SourceEvent):
        return item.kind
    h, w = item.image.shape[:2]
    return f"frame{w}x{h}"


class SleepLog:
    """A real sleep that also records each nap, so backoff can be checked while time really passes."""

    def __init__(self) -> None:
        self.naps: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.naps.append(seconds)
        time.sleep(seconds)


def test_injected_faults_are_each_reported_retried_with_backoff_and_recovered(video):
    camera = FaultyCamera(
        video,
        {3: "error", 6: "empty", 9: "resize", 11: ("stall", 0.3), 13: "error"},
        reopen_failures=[0, 2],  # the second outage lasts three reconnect attempts
    )
    sleep = SleepLog()
    stop = threading.Event()
    items = []
    started = time.monotonic()
    for item in stream_frames(camera, stop=stop, backoff=(0.02, 0.04, 0.08), sleep=sleep, stall_s=0.2):
        items.append(item)
        if camera.reads == 15:
            stop.set()
    elapsed = time.monotonic() - started
    w, h = SIZE
    W, H = RESIZED
    assert [_kind(i) for i in items] == [
        f"frame{w}x{h}", f"frame{w}x{h}", f"frame{w}x{h}",
        "lost", "recovered", f"frame{w}x{h}", f"frame{w}x{h}",
        "empty_frame", f"frame{w}x{h}", f"frame{w}x{h}",
        "resolution_changed", f"frame{W}x{H}", f"frame{W}x{H}",
        "stalled", f"frame{W}x{H}", f"frame{W}x{H}",
        "lost", "recovered", f"frame{W}x{H}",
    ]  # fmt: skip
    frames = [i for i in items if isinstance(i, Frame)]
    assert all(f.image.dtype == np.uint8 and f.image[..., 0].mean() > 90 for f in frames)  # real red video, RGB
    assert frames[3].index == 0  # a reconnect reopened the capture from its first frame
    events = {i.kind: i for i in items if isinstance(i, SourceEvent)}
    assert "camera stopped delivering frames; reconnecting" in events["lost"].message
    assert "64x48 -> 96x72" in events["resolution_changed"].message
    assert "no frame for 0.3 s" in events["stalled"].message
    # Backoff starts over for each outage and grows while the camera stays away: 0.02 | 0.02, 0.04, 0.08.
    assert sleep.naps == pytest.approx([0.02, 0.02, 0.04, 0.08])
    assert camera.failed_opens == 2 and camera.opens == 1 + 1 + 3
    assert camera.closes == camera.opens and camera.released  # every open paired with a close, device released
    assert elapsed < 5


def test_camera_that_never_comes_back_gives_up_after_max_retries(video):
    camera = FaultyCamera(video, {1: "error"}, reopen_failures=[99])
    sleep = SleepLog()
    gen = stream_frames(camera, stop=threading.Event(), backoff=(0.01, 0.02), sleep=sleep, max_retries=4)
    assert _kind(next(gen)) == "frame64x48"
    assert next(gen).kind == "lost"
    with pytest.raises(SourceError, match="gave up after 4 reconnect attempts"):
        next(gen)
    assert sleep.naps == pytest.approx([0.01, 0.02, 0.02, 0.02])
    assert camera.released


def _consume_in_thread(gen, stop: threading.Event, stop_when, timeout: float = 10.0):
    """Run the generator on a thread; returns (items, seconds from stop.set() to the generator's end)."""
    items, stopped_at, ended_at = [], [], []

    def run():
        for item in gen:
            items.append(item)
        ended_at.append(time.monotonic())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not stop_when() and time.monotonic() < deadline:
        time.sleep(0.005)
    stopped_at.append(time.monotonic())
    stop.set()
    thread.join(timeout)
    assert not thread.is_alive(), "the generator did not end after stop"
    return items, ended_at[0] - stopped_at[0]


def test_stop_during_a_stall_ends_the_stream_when_the_read_returns_without_its_frame(video):
    camera = FaultyCamera(video, {2: ("stall", 0.6)})
    stop = threading.Event()
    gen = stream_frames(camera, stop=stop, stall_s=0.2)
    items, took = _consume_in_thread(gen, stop, lambda: camera.reads == 3)  # inside the stalled read
    assert [_kind(i) for i in items] == ["frame64x48", "frame64x48"]  # the frame that arrived after stop is dropped
    assert took < 0.6 + 0.3
    assert camera.released


def test_stop_during_backoff_with_a_real_clock_ends_within_a_nap(video):
    camera = FaultyCamera(video, {1: "error"})
    stop = threading.Event()
    gen = stream_frames(camera, stop=stop, backoff=(30,))
    items, took = _consume_in_thread(gen, stop, lambda: camera.reads == 2 and camera.closes >= 1)
    assert [_kind(i) for i in items] == ["frame64x48", "lost"]
    assert took < 0.5  # not the 30 s backoff
    assert camera.released


def test_stop_during_a_slow_reconnect_does_not_resume_streaming(video):
    camera = FaultyCamera(video, {1: "error"}, open_delay_s=0.5)
    stop = threading.Event()
    gen = stream_frames(camera, stop=stop, backoff=(0.01,))
    items, took = _consume_in_thread(gen, stop, lambda: camera.opens == 2)  # inside the slow reopen
    assert [_kind(i) for i in items] == ["frame64x48", "lost"]  # no "recovered", no frames after stop
    assert took < 0.5 + 0.3
    assert camera.released


class _StubInspector:
    """Stands in for the model: live_inspect only needs inspect(images) -> inspections."""

    threshold = 0.5
    box_threshold = 0.8

    def inspect(self, images):
        return [Inspection(0.1, Thresholds(0.5), np.zeros(im.shape[:2], np.float32), ()) for im in images]


def test_live_inspect_over_a_faulty_camera_reports_recovers_and_stops_during_a_stall(video):
    camera = FaultyCamera(video, {2: "error", 5: ("stall", 0.3), 8: ("stall", 0.8)})
    stop = threading.Event()
    gen = live_inspect(camera, _StubInspector(), stop=stop, backoff=(0.02,), stall_s=0.2)
    items, took = _consume_in_thread(gen, stop, lambda: camera.reads == 9)  # during the second stall
    kinds = [i.kind if isinstance(i, SourceEvent) else "result" for i in items]
    events = [k for k in kinds if k != "result"]
    # a live camera keeps only the newest frame, so a busy CI may drop frame 0 before it is inspected
    assert kinds[0] == "result" and 1 <= kinds.index("lost") <= 2
    assert events == ["lost", "recovered", "stalled"]  # the second stall's frame arrives after stop
    assert "result" in kinds[kinds.index("recovered"):]  # frames flow again after the reconnect
    assert all(isinstance(i, LiveResult) and i.inspection.verdict == "GOOD" for i in items if not isinstance(i, SourceEvent))
    assert took < 0.8  # the consumer returns at once, without waiting out the stalled read
    deadline = time.monotonic() + 5
    while not camera.released and time.monotonic() < deadline:
        time.sleep(0.02)
    assert camera.released  # the reader releases the camera when its read returns
    time.sleep(0.1)
    assert not [t for t in threading.enumerate() if t.name.startswith("live-reader") and t.is_alive()]


def test_stop_is_prompt_even_when_the_camera_read_blocks_for_seconds(video):
    camera = FaultyCamera(video, {3: ("stall", 4.0)})  # a driver that ignores its read timeout
    stop = threading.Event()
    gen = live_inspect(camera, _StubInspector(), stop=stop, stall_s=None)
    items, took = _consume_in_thread(gen, stop, lambda: camera.reads == 4)
    assert len(items) >= 2
    assert took < 1.5  # the operator's Stop does not wait for the driver
    deadline = time.monotonic() + 10
    while not camera.released and time.monotonic() < deadline:
        time.sleep(0.05)
    assert camera.released and camera.closes == 1  # the reader still releases the camera once the read returns
    time.sleep(0.2)
    assert not [t for t in threading.enumerate() if t.name.startswith("live-reader") and t.is_alive()]


def test_truncated_video_is_a_clear_error_or_plays_until_the_cut(tmp_path):
    data = write_video(tmp_path / "full.avi", frames=10).read_bytes()
    cut_early = tmp_path / "cut_early.avi"
    cut_early.write_bytes(data[: len(data) * 3 // 10])
    with pytest.raises(SourceError, match="could not be opened"):
        list(stream_frames(VideoSource(cut_early), stop=threading.Event()))
    cut_late = tmp_path / "cut_late.avi"
    cut_late.write_bytes(data[: len(data) * 9 // 10])
    items = list(stream_frames(VideoSource(cut_late), stop=threading.Event()))
    assert items[-1].kind == "ended" and 1 <= len(items) - 1 < 10
    assert all(isinstance(i, Frame) for i in items[:-1])


def test_stall_reporting_can_be_turned_off_and_rejects_nonsense(video):
    camera = FaultyCamera(video, {1: ("stall", 0.25)})
    stop = threading.Event()
    items = []
    for item in stream_frames(camera, stop=stop, stall_s=None):
        items.append(item)
        if len(items) == 3:
            stop.set()
    assert [_kind(i) for i in items] == ["frame64x48"] * 3
    with pytest.raises(ValueError, match="stall_s"):
        list(stream_frames(camera, stop=threading.Event(), stall_s=0))
