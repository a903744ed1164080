"""Industrial camera specs (pylon:…, genicam:…): their settings, parsed from and written back to one string."""

from __future__ import annotations

import enum
import importlib
import math
import re
import warnings
from dataclasses import dataclass, fields
from types import ModuleType
from urllib.parse import parse_qsl, quote

from engine.errors import SourceError


class TriggerMode(enum.Enum):
    """When an industrial camera takes a frame: continuously, on a software trigger, or on a pulse at input line 1."""

    FREE_RUN = "off"
    SOFTWARE = "software"
    LINE1 = "line1"


class CameraKind(enum.Enum):
    """Which library drives a camera."""

    OPENCV = "opencv"
    PYLON = "pylon"
    GENICAM = "genicam"


@dataclass(frozen=True)
class CameraSettings:
    """What an industrial source sets on its camera; None leaves the camera's own value."""

    exposure_us: float | None = None
    gain: float | None = None
    pixel_format: str | None = None
    roi: tuple[int, int, int, int] | None = None  # x, y, width, height on the sensor
    binning: int | None = None
    frame_rate: float | None = None
    trigger: TriggerMode = TriggerMode.FREE_RUN
    image_dir: str | None = None  # pylon emulator only: replay this folder
    grab_timeout_s: float = 1.0  # a triggered frame not grabbed within this is an error for that part


@dataclass(frozen=True)
class IndustrialSpec:
    """A parsed camera spec: which library, which camera (index, serial or producer file) and its settings."""

    kind: CameraKind
    target: str  # pylon: index or serial; genicam: the .cti path; opencv: index or stream URL
    index: int | None
    settings: CameraSettings = CameraSettings()

    @property
    def spec(self) -> str:
        """The spec string again (parse_camera_spec(s.spec) == s)."""
        return format_camera_spec(self.kind, self.target, self.settings, index=self.index)


SETTING_KEYS = tuple(f.name for f in fields(CameraSettings))
TRIGGER_VALUES = tuple(m.value for m in TriggerMode)
_PREFIXES = {"pylon:": CameraKind.PYLON, "genicam:": CameraKind.GENICAM}
_OPENCV = re.compile(r"(\d+)(\s*@\s*\d+\s*[xX×]\s*\d+)?")
PYLON_HINT = "pylon cameras need the pypylon package: pip install 'visinspect[pylon]'"
GENICAM_HINT = "GenICam cameras need the harvesters package: pip install 'visinspect[genicam]'"

# pypylon and genicam are SWIG builds: importing them warns "builtin type SwigPyPacked has no __module__ attribute"
# (and SwigPyObject, swigvarlink). Only those are silenced, every other warning stays.
_SWIG_WARNING = r"builtin type (SwigPyPacked|SwigPyObject|swigvarlink) has no __module__ attribute"


def import_quietly(name: str, hint: str) -> ModuleType:
    """Import an optional SWIG-built camera package without its DeprecationWarnings; SourceError with hint if missing."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SWIG_WARNING, category=DeprecationWarning)
        try:
            return importlib.import_module(name)
        except ImportError:
            raise SourceError(hint) from None


def _number(key: str, text: str, *, integer: bool = False, minimum: float | None = None, above: float | None = None):
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        value = None
    if value is None or (not integer and not math.isfinite(value)) or (minimum is not None and value < minimum) \
            or (above is not None and value <= above):  # fmt: skip
        what = "a whole number" if integer else "a number"
        bound = f" of {minimum:g} or more" if minimum is not None else f" above {above:g}" if above is not None else ""
        raise SourceError(f"{key} must be {what}{bound}; got {text!r}")
    return value


def _roi(text: str) -> tuple[int, int, int, int]:
    parts = text.split(",")
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        x = y = w = h = -1
    if len(parts) != 4 or x < 0 or y < 0 or w < 1 or h < 1:
        raise SourceError(f"roi must be x,y,width,height in whole pixels (x, y 0 or more; width, height 1 or more); got {text!r}")
    return x, y, w, h


def _trigger(text: str) -> TriggerMode:
    try:
        return TriggerMode(text.lower())
    except ValueError:
        raise SourceError(f"trigger must be one of {', '.join(TRIGGER_VALUES)}; got {text!r}") from None


_PARSERS = {
    "exposure_us": lambda t: _number("exposure_us", t, above=0),
    "gain": lambda t: _number("gain", t),
    "pixel_format": lambda t: t,
    "roi": _roi,
    "binning": lambda t: _number("binning", t, integer=True, minimum=1),
    "frame_rate": lambda t: _number("frame_rate", t, above=0),
    "trigger": _trigger,
    "image_dir": lambda t: t,
    "grab_timeout_s": lambda t: _number("grab_timeout_s", t, above=0),
}


def parse_settings(query: str, *, kind: CameraKind = CameraKind.PYLON) -> CameraSettings:
    """CameraSettings from a spec's query string (exposure_us=5000&trigger=software); SourceError names the keys."""
    values: dict[str, object] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise SourceError(f"camera settings must be KEY=VALUE pairs joined by &; got {query!r}; keys: {', '.join(SETTING_KEYS)}") from None
    for key, text in pairs:
        if key not in _PARSERS:
            raise SourceError(f"unknown camera setting {key!r}; allowed: {', '.join(SETTING_KEYS)}")
        if key in values:
            raise SourceError(f"camera setting {key} is given twice")
        if not text.strip():
            raise SourceError(f"camera setting {key} has no value")
        values[key] = _PARSERS[key](text.strip())
    if "image_dir" in values and kind is not CameraKind.PYLON:
        raise SourceError("image_dir is only for the pylon camera emulator (pylon:…)")
    return CameraSettings(**values)


def parse_camera_spec(spec: str) -> IndustrialSpec:
    """pylon:INDEX|SERIAL[?…], genicam:CTI[#INDEX][?…] or an OpenCV index/URL; SourceError names what is allowed."""
    text = str(spec).strip()
    lowered = text.lower()
    for prefix, kind in _PREFIXES.items():
        if lowered.startswith(prefix):
            return _parse_industrial(text, text[len(prefix):], kind)
    if _OPENCV.fullmatch(text):
        return IndustrialSpec(CameraKind.OPENCV, text, int(_OPENCV.fullmatch(text).group(1)))
    if "://" in text:
        return IndustrialSpec(CameraKind.OPENCV, text, None)
    raise SourceError(f"{text!r} is not a camera; expected a camera index (0), a stream URL, "
                      "pylon:INDEX|SERIAL[?settings] or genicam:PRODUCER.cti[#INDEX][?settings]")  # fmt: skip


def _parse_industrial(text: str, rest: str, kind: CameraKind) -> IndustrialSpec:
    target, _, query = rest.partition("?")
    target = target.strip()
    settings = parse_settings(query, kind=kind)
    if kind is CameraKind.PYLON:
        if not target:
            raise SourceError(f"{text}: name the pylon camera by index or serial number, e.g. pylon:0 or pylon:40012345")
        # Basler serial numbers are 8 digits: a short number is an index into the list of cameras.
        index = int(target) if target.isascii() and target.isdigit() and len(target) <= 3 else None
        return IndustrialSpec(kind, target, index, settings)
    path, hash_, selector = target.rpartition("#")
    if not hash_:
        path, selector = target, ""
    if hash_ and not (selector.isascii() and selector.isdigit()):
        raise SourceError(f"{text}: the device after # must be an index (0, 1, ...); got {selector!r}")
    if not path.strip():
        raise SourceError(f"{text}: name the GenTL producer file, e.g. genicam:/opt/vendor/lib/producer.cti#0")
    return IndustrialSpec(kind, path.strip(), int(selector) if hash_ else None, settings)


def _text(value: object) -> str:
    if isinstance(value, TriggerMode):
        return value.value
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def format_settings(settings: CameraSettings) -> str:
    """The query string of the settings that differ from the defaults ('' when none)."""
    default = CameraSettings()
    parts = [
        f"{name}={quote(_text(getattr(settings, name)), safe='/,:.-_~')}"
        for name in SETTING_KEYS
        if getattr(settings, name) != getattr(default, name)
    ]
    return "&".join(parts)


def format_camera_spec(kind: CameraKind, target: str, settings: CameraSettings = CameraSettings(), *,
                       index: int | None = None) -> str:  # fmt: skip
    """The spec string for a camera and its settings; parse_camera_spec reads it back to the same values."""
    target = str(target).strip()
    if kind is CameraKind.OPENCV:
        return target
    query = format_settings(settings)
    prefix = "pylon:" if kind is CameraKind.PYLON else "genicam:"
    device = f"#{index}" if kind is CameraKind.GENICAM and index is not None else ""
    return f"{prefix}{target}{device}" + (f"?{query}" if query else "")
