"""The frame-source protocol every camera, video and folder reader follows, and its per-frame error."""

from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

from engine.errors import ImageReadError
from engine.types import Frame

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".wmv")


class FrameReadError(ImageReadError):
    """One file of a file-backed source could not be read; the source has already moved past it."""

    def __init__(self, message: str, *, path: str | os.PathLike, index: int) -> None:
        super().__init__(message)
        self.path = str(path)
        self.index = index


@runtime_checkable
class FrameSource(Protocol):
    """Frames one at a time from a camera, stream, video or image files; use as a context manager."""

    description: str  # one line for the UI, e.g. "camera 0" or "folder /line/images (120 images)"
    is_live: bool  # True for cameras and network streams, which can drop out and come back

    def open(self) -> None:
        """Acquire the device or list the files; raises SourceError when that is impossible."""
        ...

    def read(self) -> Frame | None:
        """The next frame, or None at the end of the stream."""
        ...

    def close(self) -> None:
        """Release the device; safe to call twice or without open()."""
        ...

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
