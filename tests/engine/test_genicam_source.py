"""GenICam cameras through a GenTL producer: the simulated producer shipped with the genicam wheel (viky.cti)."""
import threading
from pathlib import Path

import numpy as np
import pytest

from engine.errors import SourceError
from engine.sources import open_source
from engine.sources.genicam import GenTLSource, load_harvesters, producer
from engine.sources.industrial import GENICAM_HINT, import_quietly

try:
    load_harvesters()
    VIKY = Path(import_quietly("genicam", GENICAM_HINT).__file__).parent / "viky.cti"
    with producer(str(VIKY)):
        pass
except SourceError as exc:  # not installed, or this genicam has no loadable simulated producer
    pytest.skip(str(exc), allow_module_level=True)


def test_simulated_producer_delivers_rgb_frames_at_the_roi_size():
    source = open_source(f"genicam:{VIKY}#1?roi=0,0,224,160")
    assert isinstance(source, GenTLSource)
    with source:
        frames = [source.read() for _ in range(3)]
    assert [f.index for f in frames] == [0, 1, 2]
    for frame in frames:
        assert frame.image.shape == (160, 224, 3) and frame.image.dtype == np.uint8
        assert frame.image.std() > 0  # a picture, not an empty buffer
        assert frame.source_id == f"genicam:{VIKY}#1?roi=0,0,224,160"


def test_mono_pixel_format_gives_grey_rgb():
    with open_source(f"genicam:{VIKY}?pixel_format=Mono8") as source:
        image = source.read().image
    assert image.shape[2] == 3 and np.array_equal(image[..., 0], image[..., 2])


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("genicam:{cti}?exposure_us=500", ["cannot set exposure_us"]),
        ("genicam:{cti}?trigger=software", ["no frame trigger", "trigger=off"]),
        ("genicam:{cti}?pixel_format=BGR8", ["pixel_format", "RGBa8", "Mono8"]),
        ("genicam:{cti}#9", ["3 device(s)"]),
        ("genicam:{cti}.missing#0", ["no such file"]),
    ],
)
def test_what_the_camera_cannot_do_is_one_line(spec, named):
    with pytest.raises(SourceError) as caught:
        open_source(spec.format(cti=VIKY)).open()
    assert "\n" not in str(caught.value) and all(word in str(caught.value) for word in named)


def test_two_cameras_of_one_producer_run_side_by_side_and_stay_listed():
    from engine.sources.discover import list_cameras

    with open_source(f"genicam:{VIKY}#0") as red, open_source(f"genicam:{VIKY}#2") as blue:
        listed = [c.spec for c in list_cameras(opencv_max=0, cti_paths=[str(VIKY)])]
        a, b = red.read().image, blue.read().image
    assert listed[-3:] == [f"genicam:{VIKY}#{i}" for i in range(3)]
    assert a.shape == b.shape and not np.array_equal(a, b)  # each device its own picture


def test_closing_mid_grab_ends_the_grab_with_a_source_error():
    source = open_source(f"genicam:{VIKY}?frame_rate=4")
    source.open()
    source.read()  # the first frame; the next is a quarter second away
    started, box = threading.Event(), {}

    def run():
        started.set()
        try:
            while True:
                source.grab(30.0)
        except Exception as exc:  # noqa: BLE001 -- the test inspects whatever came out
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(5)
    source.close()
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(box.get("error"), SourceError) and "closed" in str(box["error"])
