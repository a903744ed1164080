"""Frame sources built on cv2.VideoCapture: video files, cameras and network streams."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import cv2
import numpy as np

from engine.data.decode import to_rgb8
from engine.errors import SourceError
from engine.sources.base import FrameSource
from engine.types import Frame

_CREDENTIALS = re.compile(r"//[^/@]*@")

# OpenCV logs its own lines to stderr when a device is absent ("[ WARN:0@0.06] global cap_v4l.cpp:914 open
# VIDEOIO(V4L2:/dev/video7): can't open camera by index", an obsensor "[ERROR:...] Camera index out of range"):
# the source already says why in one line of ours. OPENCV_LOG_LEVEL, when set, still wins (for debugging).
if "OPENCV_LOG_LEVEL" not in os.environ:
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def _capture(target: int | str, timeout_s: float, what: str) -> cv2.VideoCapture:
    """A VideoCapture of `what` whose open and read give up after timeout_s where the backend supports it."""
    ms = int(timeout_s * 1000)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
    try:
        return cv2.VideoCapture(target, cv2.CAP_ANY, params)
    except cv2.error as exc:  # some backends raise instead of returning a closed capture
        raise SourceError(f"{what} could not be opened ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    """The last line of an OpenCV error (its first names OpenCV's source file)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _grab(cap: cv2.VideoCapture, what: str) -> tuple[bool, np.ndarray | None]:
    """cap.read(), with a backend's cv2.error turned into the SourceError a failed read is."""
    try:
        return cap.read()
    except cv2.error as exc:
        raise SourceError(f"{what} stopped delivering frames ({_reason(exc)})") from None


def _release(cap: cv2.VideoCapture | None) -> None:
    if cap is not None:
        cap.release()


def _to_frame(image: np.ndarray, index: int, source_id: str) -> Frame:
    return Frame(image=to_rgb8(image), index=index, timestamp=time.time(), source_id=source_id)


class VideoSource(FrameSource):
    """Frames of a video file, RGB, optionally looping back to the start with ever-increasing indices."""

    is_live = False

    def __init__(self, path: str | os.PathLike, *, loop: bool = False) -> None:
        self.path = Path(path)
        self._loop = loop
        self._cap: cv2.VideoCapture | None = None
        self._index = 0
        self._frames_this_pass = 0
        self.start_at = 0  # the frame index open() seeks to: a stopped run goes on where it stopped
        self.description = f"video {self.path}"

    def _open_capture(self) -> None:
        if not self.path.is_file():
            raise SourceError(f"video {self.path}: file not found")
        cap = _capture(str(self.path), 10.0, self.description)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"video {self.path} could not be opened (corrupt file or unsupported format)")
        self._cap = cap
        self._frames_this_pass = 0

    def open(self) -> None:
        """Open the file at frame start_at (the first when 0); raises SourceError if it is missing or undecodable."""
        self.close()
        self._index = 0
        self._open_capture()
        if self.start_at:
            frames = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            start = self.start_at % frames if frames and self._loop else self.start_at
            if 0 < start < frames and self._cap.set(cv2.CAP_PROP_POS_FRAMES, start):
                self._index = self.start_at

    def read(self) -> Frame | None:
        """The next frame as RGB, None at the end (unless looping over a video that gave frames)."""
        if self._cap is None:
            raise SourceError(f"video {self.path} is not open")
        ok, image = _grab(self._cap, self.description)
        if (not ok or image is None or image.size == 0) and self._loop and self._frames_this_pass:
            # Reopening rewinds reliably for every codec, unlike seeking to frame 0.
            self.close()
            self._open_capture()
            ok, image = _grab(self._cap, self.description)
        if not ok or image is None or image.size == 0:
            return None
        self._frames_this_pass += 1
        frame = _to_frame(image, self._index, str(self.path))
        self._index += 1
        return frame

    def close(self) -> None:
        """Release the decoder."""
        _release(self._cap)
        self._cap = None


class CameraSource(FrameSource):
    """Live RGB frames from a camera index or stream URL (rtsp://, http://); SourceError when it fails."""

    is_live = True

    def __init__(
        self,
        index_or_url: int | str,
        *,
        width: int | None = None,
        height: int | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        if isinstance(index_or_url, int) and index_or_url < 0:
            raise ValueError(f"camera index must be 0 or more, not {index_or_url}")
        for name, value in (("width", width), ("height", height)):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be a positive number of pixels or None, not {value}")
        self.target = index_or_url
        self._width = width
        self._height = height
        self._timeout_s = timeout_s
        self._cap: cv2.VideoCapture | None = None
        self._index = 0
        # Never show a password embedded in a stream URL.
        self.label = _CREDENTIALS.sub("//***@", str(index_or_url))
        self.description = f"camera {self.label}" + (f" at {width}x{height}" if width and height else "")

    def open(self) -> None:
        """Connect to the camera or stream, asking for width x height when given."""
        self.close()
        cap = _capture(self.target, self._timeout_s, f"camera {self.label}")
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"camera {self.label} could not be opened")
        if self._width is not None:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self._width)
        if self._height is not None:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self._height)
        self._cap = cap

    def read(self) -> Frame:
        """The next frame as RGB; a failed or empty grab is a SourceError (a camera has no end)."""
        if self._cap is None:
            raise SourceError(f"camera {self.label} is not open")
        ok, image = _grab(self._cap, f"camera {self.label}")
        if not ok or image is None or image.size == 0:
            raise SourceError(f"camera {self.label} stopped delivering frames")
        frame = _to_frame(image, self._index, str(self.label))
        self._index += 1
        return frame

    def close(self) -> None:
        """Release the camera so another program (or a reconnect) can open it."""
        _release(self._cap)
        self._cap = None
