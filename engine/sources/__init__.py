"""Where frames come from: cameras, streams, video files, folders and single images."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from engine.data.decode import IMAGE_SUFFIXES, is_image_file
from engine.data.walk import list_images, natural_key
from engine.errors import SourceError
from engine.sources.base import VIDEO_SUFFIXES, FrameReadError, FrameSource
from engine.sources.capture import CameraSource, VideoSource
from engine.sources.files import FolderSource, ImageFilesSource
from engine.sources.stream import EVENT_KINDS, SourceEvent, stream_frames

ACCEPTED_SOURCES = (
    "a camera index (0, 1, ...; 0@1920x1080 asks for a resolution), a stream URL (rtsp://..., http://...), "
    "a pylon camera (pylon:INDEX or pylon:SERIAL, settings after ?, e.g. pylon:0?exposure_us=5000&trigger=software), "
    "a GenICam camera (genicam:PRODUCER.cti#INDEX), a folder of images, "
    f"a video file ({' '.join(VIDEO_SUFFIXES)}) or an image file ({' '.join(IMAGE_SUFFIXES)})"
)


_CAMERA_WITH_SIZE = re.compile(r"(\d+)\s*@\s*(\d+)\s*[xX×]\s*(\d+)")


class CameraSpec(NamedTuple):
    """A camera a source string names: its index or stream URL, and the resolution asked for, if any."""

    target: int | str
    width: int | None = None
    height: int | None = None


def camera_spec(spec: str) -> CameraSpec | None:
    """The camera in a source string (0, 0@1920x1080 or a stream URL), or None when it names files."""
    text = str(spec).strip()
    if text.isascii() and text.isdigit():
        return CameraSpec(int(text))
    sized = _CAMERA_WITH_SIZE.fullmatch(text)
    if sized:
        index, width, height = (int(g) for g in sized.groups())
        return CameraSpec(index, width, height)
    return CameraSpec(text) if "://" in text else None


def open_source(spec: str, *, loop: bool = False) -> FrameSource:
    """The (unopened) source a command-line or settings string names; SourceError lists what is accepted."""
    text = str(spec).strip()
    if not text:
        raise SourceError(f"no source given; expected {ACCEPTED_SOURCES}")
    if text.lower().startswith(("pylon:", "genicam:")):
        from engine.sources.genicam import GenTLSource
        from engine.sources.industrial import CameraKind, parse_camera_spec
        from engine.sources.pylon import PylonSource

        industrial = parse_camera_spec(text)
        if industrial.kind is CameraKind.PYLON:
            return PylonSource(industrial.target, industrial.settings)
        return GenTLSource(industrial.target, industrial.index, industrial.settings)
    camera = camera_spec(text)
    if camera is not None:
        if camera.width is not None and (camera.width < 1 or camera.height < 1):
            raise SourceError(f"{text}: a camera resolution needs a width and height of 1 or more, e.g. 0@1920x1080")
        return CameraSource(camera.target, width=camera.width, height=camera.height)
    path = Path(text).expanduser()
    if path.is_dir():
        return FolderSource(path, loop=loop)
    if not path.exists():
        raise SourceError(f"{text}: no such file or folder; expected {ACCEPTED_SOURCES}")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoSource(path, loop=loop)
    if is_image_file(path):
        return ImageFilesSource([path], loop=loop)
    raise SourceError(f"{text}: not a recognised source; expected {ACCEPTED_SOURCES}")


__all__ = [
    "ACCEPTED_SOURCES",
    "EVENT_KINDS",
    "VIDEO_SUFFIXES",
    "CameraSource",
    "CameraSpec",
    "camera_spec",
    "FolderSource",
    "FrameReadError",
    "FrameSource",
    "ImageFilesSource",
    "SourceEvent",
    "VideoSource",
    "list_images",
    "natural_key",
    "open_source",
    "stream_frames",
]
