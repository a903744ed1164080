"""Industrial camera specs: every setting survives a round trip through the spec string; bad ones say what is allowed."""
import pytest

from engine.errors import SourceError
from engine.sources import open_source
from engine.sources.industrial import CameraKind, CameraSettings, TriggerMode, format_camera_spec, parse_camera_spec


def test_every_setting_round_trips_through_the_spec_string():
    settings = CameraSettings(exposure_us=5000.0, gain=2.5, pixel_format="BayerRG8", roi=(16, 8, 640, 480), binning=2,
                              frame_rate=30.0, trigger=TriggerMode.LINE1, image_dir="/data/parts & rejects/A#1",
                              grab_timeout_s=0.25)  # fmt: skip
    spec = format_camera_spec(CameraKind.PYLON, "40012345", settings)
    parsed = parse_camera_spec(spec)
    assert (parsed.kind, parsed.target, parsed.index, parsed.settings) == (CameraKind.PYLON, "40012345", None, settings)
    assert parsed.spec == spec


def test_index_serial_and_producer_device_are_told_apart():
    assert parse_camera_spec("pylon:1").index == 1
    assert parse_camera_spec("pylon:0815-0000").index is None  # a serial number
    assert parse_camera_spec("pylon:40012345").index is None  # Basler serials are 8 digits, never an index
    gentl = parse_camera_spec("genicam:/opt/vendor/producer.cti#2?trigger=software")
    assert (gentl.kind, gentl.target, gentl.index, gentl.settings.trigger) == (CameraKind.GENICAM, "/opt/vendor/producer.cti", 2, TriggerMode.SOFTWARE)
    assert gentl.spec == "genicam:/opt/vendor/producer.cti#2?trigger=software"
    assert parse_camera_spec("0").kind is CameraKind.OPENCV
    assert format_camera_spec(CameraKind.PYLON, "0") == "pylon:0"  # defaults are left out


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("pylon:0?exposure=5000", ["exposure_us", "gain", "pixel_format", "roi", "binning", "frame_rate", "trigger", "image_dir"]),
        ("pylon:0?trigger=sometimes", ["off", "software", "line1"]),
        ("pylon:0?exposure_us=-3", ["exposure_us", "above 0"]),
        ("pylon:0?roi=1,2,3", ["x,y,width,height"]),
        ("pylon:0?binning=1.5", ["binning", "whole number"]),
        ("pylon:0?gain=1&gain=2", ["gain", "twice"]),
        ("pylon:?gain=1", ["index or serial"]),
        ("genicam:/x.cti#red", ["index"]),
        ("genicam:/x.cti?image_dir=/tmp", ["image_dir", "emulator"]),
    ],
)
def test_a_bad_spec_is_one_line_naming_what_is_allowed(spec, named):
    with pytest.raises(SourceError) as caught:
        open_source(spec)
    message = str(caught.value)
    assert "\n" not in message
    for word in named:
        assert word in message
