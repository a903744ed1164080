"""Basler cameras through the pylon emulator: a replayed folder comes out frame for frame, settings reach the camera,
a camera that goes away mid-grab is a SourceError, never a crash or a hang."""
import os
import threading

os.environ.setdefault("PYLON_CAMEMU", "2")  # emulated cameras: must be set before pylon's first transport-layer call

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from engine.errors import SourceError  # noqa: E402
from engine.sources import open_source  # noqa: E402
from engine.sources.industrial import TriggerMode  # noqa: E402
from engine.sources.pylon import PylonSource, load_pylon  # noqa: E402

# pylon's Linux runtime installs its own SIGALRM handler and hangs in RetrieveResult once another replaces it;
# pytest-timeout's default (signal) method does exactly that, so these tests run under its thread method.
pytestmark = pytest.mark.timeout(method="thread")

try:
    load_pylon()  # the quiet import (no SWIG DeprecationWarnings); a skip where the extra is not installed
except SourceError as exc:
    pytest.skip(str(exc), allow_module_level=True)


@pytest.fixture
def replay(tmp_path):
    """Three distinct colour images written as PNG files, in replay order, and their folder."""
    images = []
    for i in range(3):
        rgb = np.zeros((48, 64, 3), np.uint8)
        rgb[..., 0] = 30 + 80 * i
        rgb[..., 1] = np.arange(64, dtype=np.uint8)[None, :] * 4
        rgb[..., 2] = np.arange(48, dtype=np.uint8)[:, None] * (i + 1)
        cv2.imwrite(str(tmp_path / f"part{i:02d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        images.append(rgb)
    return tmp_path, images


def test_software_trigger_gives_exactly_the_replayed_images_in_order(replay):
    folder, images = replay
    source = open_source(f"pylon:0?trigger=software&image_dir={folder}")
    assert isinstance(source, PylonSource) and source.trigger_mode is TriggerMode.SOFTWARE
    with source:
        assert source.grab(0.05) is None  # nothing fired, nothing taken
        for k in range(5):
            source.fire()
            frame = source.grab(2.0)
            assert frame is not None and frame.image.dtype == np.uint8
            np.testing.assert_array_equal(frame.image, images[k % 3])
            assert frame.index == k
        assert source.grab(0.05) is None


def test_free_run_replays_the_folder_in_order_by_serial_number(replay):
    folder, images = replay
    with open_source(f"pylon:0815-0000?image_dir={folder}") as source:
        assert "0815-0000" in source.description
        indices = []
        for _ in range(6):
            frame = source.read()
            # Free run keeps only the newest frame; the index counts skipped ones, so it says which image this is.
            np.testing.assert_array_equal(frame.image, images[frame.index % 3])
            indices.append(frame.index)
        assert indices == sorted(set(indices))


def test_settings_reach_the_camera_and_shape_the_frames():
    spec = "pylon:0?exposure_us=5000&gain=3&roi=16,8,64,32&pixel_format=Mono8&frame_rate=50"
    with open_source(spec) as source:
        applied = source.current_settings()
        frame = source.read()
    assert applied.exposure_us == pytest.approx(5000, rel=0.01)
    assert applied.gain == pytest.approx(3, abs=0.05)
    assert applied.roi == (16, 8, 64, 32) and applied.pixel_format == "Mono8"
    assert applied.frame_rate == pytest.approx(50, rel=0.01) and applied.trigger is TriggerMode.FREE_RUN
    assert frame.image.shape == (32, 64, 3)
    assert np.array_equal(frame.image[..., 0], frame.image[..., 1])  # a mono camera gives grey RGB


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("pylon:0?pixel_format=Mono9", ["pixel_format", "Mono8", "RGB8Packed"]),
        ("pylon:0?exposure_us=1e9", ["exposure_us", "allowed"]),
        ("pylon:7", ["only", "0815-0000"]),
        ("pylon:no-such-serial", ["serial", "0815-0000"]),
    ],
)
def test_settings_the_camera_refuses_are_one_line_and_release_it(spec, named):
    with pytest.raises(SourceError) as caught:
        open_source(spec).open()
    assert "\n" not in str(caught.value) and all(word in str(caught.value) for word in named)
    with open_source("pylon:0") as source:  # nothing was left holding the camera
        assert source.read().image.ndim == 3


def test_fire_needs_software_trigger():
    with open_source("pylon:0") as source, pytest.raises(SourceError, match="trigger=software"):
        source.fire()


def _grab_in_thread(source: PylonSource, timeout_s: float):
    """Start source.grab in a thread; returns (started event, thread, box with the outcome)."""
    started, box = threading.Event(), {}

    def run():
        started.set()
        try:
            box["frame"] = source.grab(timeout_s)
        except Exception as exc:  # noqa: BLE001 -- the test inspects whatever came out
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(5)
    return thread, box


def test_camera_removed_mid_grab_is_a_source_error_not_a_hang():
    source = open_source("pylon:0?trigger=software")
    source.open()
    try:
        thread, box = _grab_in_thread(source, 30.0)
        source._camera.DestroyDevice()  # what unplugging does to pylon: the device under the camera object is gone
        thread.join(10)
        assert not thread.is_alive()
        assert isinstance(box.get("error"), SourceError) and "lost" in str(box["error"])
        with pytest.raises(SourceError, match="lost"):
            source.read()
    finally:
        source.close()


def test_closing_mid_grab_ends_the_grab_with_a_source_error():
    source = open_source("pylon:0?trigger=line1")
    source.open()
    assert source.current_settings().trigger is TriggerMode.LINE1  # the camera waits on its input line
    assert source.grab(0.05) is None  # no pulse, no frame
    thread, box = _grab_in_thread(source, 30.0)
    source.close()
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(box.get("error"), SourceError) and "closed" in str(box["error"])
    source.close()  # twice is fine


def test_the_live_frame_loop_reports_a_lost_camera_and_goes_on_when_it_is_back(replay):
    from engine.sources import SourceEvent, stream_frames

    folder, images = replay
    source = open_source(f"pylon:0?image_dir={folder}")
    stop = threading.Event()
    seen = []
    for item in stream_frames(source, stop=stop, backoff=(0.0,), max_retries=3, stall_s=None):
        seen.append(item.kind if isinstance(item, SourceEvent) else "frame")
        if isinstance(item, SourceEvent):
            continue
        np.testing.assert_array_equal(item.image, images[item.index % 3])
        if seen.count("frame") == 2:
            source._camera.DestroyDevice()  # unplugged; the loop reopens it (the emulator comes straight back)
        if seen.count("frame") == 4:
            stop.set()
    assert seen == ["frame", "frame", "lost", "recovered", "frame", "frame"]
    assert source._camera is None  # the loop closed it
