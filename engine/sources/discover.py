"""Which cameras this PC can see (OpenCV indices, pylon, GenTL producers), each with the source spec that opens it."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.errors import SourceError
from engine.sources.industrial import GENICAM_HINT, PYLON_HINT, CameraKind, format_camera_spec

GENTL_PATH_VARIABLE = "GENICAM_GENTL64_PATH" if sys.maxsize > 2**32 else "GENICAM_GENTL32_PATH"


@dataclass(frozen=True)
class CameraInfo:
    """One camera found: which library drives it, the spec that opens it, and a label for a list."""

    kind: CameraKind
    spec: str
    label: str
    serial: str | None = None
    model: str | None = None


def backend_status() -> dict[CameraKind, str | None]:
    """None for each camera library that can be used here, else the one line that says how to add it."""
    from engine.sources.genicam import load_harvesters
    from engine.sources.pylon import load_pylon

    status: dict[CameraKind, str | None] = {CameraKind.OPENCV: None}
    for kind, load, hint in ((CameraKind.PYLON, load_pylon, PYLON_HINT), (CameraKind.GENICAM, load_harvesters, GENICAM_HINT)):
        try:
            load()
            status[kind] = None
        except SourceError:
            status[kind] = hint
    return status


def default_cti_paths() -> list[str]:
    """The GenTL producers the GenICam standard's environment variable points at (folders or .cti files)."""
    found: list[str] = []
    for entry in os.environ.get(GENTL_PATH_VARIABLE, "").split(os.pathsep):
        path = Path(entry.strip()) if entry.strip() else None
        if path is not None and path.is_dir():
            found.extend(str(p) for p in sorted(path.glob("*.cti")))
        elif path is not None and path.suffix.lower() == ".cti" and path.is_file():
            found.append(str(path))
    return found


def _v4l_name(index: int) -> str | None:
    name = Path(f"/sys/class/video4linux/video{index}/name")
    try:
        return name.read_text().strip() or None
    except OSError:
        return None


def _opencv_cameras(opencv_max: int) -> list[CameraInfo]:
    """OpenCV indices that open, tried quietly (capture.py silences OpenCV's log); on Linux only existing /dev/video*."""
    import cv2

    import engine.sources.capture  # noqa: F401 -- silences OpenCV's own log lines about absent devices

    found = []
    for index in range(max(0, opencv_max)):
        if sys.platform.startswith("linux") and not Path(f"/dev/video{index}").exists():
            continue
        try:
            cap = cv2.VideoCapture(index, cv2.CAP_ANY, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 1000])
            usable = cap.isOpened()
            cap.release()
        except cv2.error:
            usable = False
        if usable:
            name = _v4l_name(index)
            found.append(CameraInfo(CameraKind.OPENCV, str(index), f"camera {index}" + (f" ({name})" if name else ""), model=name))
    return found


def _pylon_cameras() -> list[CameraInfo]:
    from engine.sources.pylon import load_pylon

    try:
        pylon, genicam = load_pylon()
    except SourceError:
        return []
    try:
        devices = pylon.TlFactory.GetInstance().EnumerateDevices()
    except genicam.GenericException:
        return []
    return [
        CameraInfo(CameraKind.PYLON, format_camera_spec(CameraKind.PYLON, d.GetSerialNumber()), d.GetFriendlyName(),
                   serial=d.GetSerialNumber(), model=d.GetModelName())  # fmt: skip
        for d in devices
    ]


def _gentl_cameras(cti_paths: Sequence[str]) -> list[CameraInfo]:
    from engine.sources.genicam import producer

    found = []
    for cti in cti_paths:
        try:
            with producer(cti) as harvester:
                found.extend(_devices(harvester, cti))
        except SourceError:
            continue
    return found


def _devices(harvester, cti: str) -> list[CameraInfo]:
    found = []
    for index, info in enumerate(harvester.device_info_list):
        serial, model = (_info(info, "serial_number"), _info(info, "model"))
        label = _info(info, "display_name") or f"{model or 'device'} {index}"
        found.append(CameraInfo(CameraKind.GENICAM, format_camera_spec(CameraKind.GENICAM, cti, index=index),
                                f"{label} via {Path(cti).name}", serial=serial, model=model))  # fmt: skip
    return found


def _info(info, name: str) -> str | None:
    """A device-info field, None where the producer does not give it (it raises for those)."""
    try:
        value = getattr(info, name)
    except Exception:  # noqa: BLE001 -- GenTL NotAvailableException and kin
        return None
    return str(value) if value not in (None, "") else None


def list_cameras(*, opencv_max: int = 4, cti_paths: Sequence[str] | None = None) -> list[CameraInfo]:
    """Every camera found: OpenCV indices below opencv_max, pylon cameras, devices of the GenTL producers given
    (default: those GENICAM_GENTL64_PATH names). A library that is missing adds nothing; this never raises for it."""
    cti = default_cti_paths() if cti_paths is None else list(cti_paths)
    return _opencv_cameras(opencv_max) + _pylon_cameras() + _gentl_cameras(cti)


def describe_cameras(cameras: Sequence[CameraInfo], status: dict[CameraKind, str | None]) -> list[str]:
    """Lines for `visinspect cameras`: one per camera (its spec, then its label), then how to add a missing library."""
    width = max((len(c.spec) for c in cameras), default=0)
    lines = [f"{c.spec.ljust(width)}  {c.label}" + (f" (serial {c.serial})" if c.serial and c.serial not in c.label else "")
             for c in cameras]  # fmt: skip
    if not cameras:
        lines.append("no cameras found")
    lines.extend(f"note: {hint}" for hint in status.values() if hint)
    return lines
