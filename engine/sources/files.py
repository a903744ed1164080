"""Frame sources over image files: an explicit list, or every image in a folder in natural order."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

from engine.data.decode import decode_image, plain_jpeg, read_bytes
from engine.data.walk import list_images
from engine.errors import ImageReadError
from engine.sources.base import FrameReadError, FrameSource
from engine.types import Frame


class ImageFilesSource(FrameSource):
    """Frames from a list of image files; an unreadable file is one FrameReadError, then reading goes on."""

    is_live = False

    def __init__(self, paths: Iterable[str | os.PathLike], *, loop: bool = False) -> None:
        self._paths = [Path(p) for p in paths]
        self._loop = loop
        self._pos = 0
        self._index = 0
        self._frames_this_pass = 0
        self.start_at = 0  # the frame index open() starts from: a stopped run goes on where it stopped
        self.description = self._describe()

    def _describe(self) -> str:
        if len(self._paths) == 1:
            return f"image {self._paths[0]}"
        return f"{len(self._paths)} image files"

    @property
    def paths(self) -> list[Path]:
        """The files this source reads, in reading order."""
        return list(self._paths)

    def open(self) -> None:
        """Start from frame start_at (0: the first file); past the end, a looping source wraps around."""
        start = self.start_at if self._loop or self.start_at < len(self._paths) else 0
        self._pos = start % len(self._paths) if self._paths else 0
        self._index = start
        self._frames_this_pass = 0

    def read(self) -> Frame | None:
        """The next image, None after the last (or, looping, the first again while any file was readable)."""
        if self._pos >= len(self._paths):
            # Looping over files that all fail would spin forever producing nothing but errors.
            if not self._loop or self._frames_this_pass == 0:
                return None
            self._pos = 0
            self._frames_this_pass = 0
        path = self._paths[self._pos]
        index = self._index
        self._pos += 1
        self._index += 1
        try:
            data = read_bytes(path)
            image = decode_image(data, name=str(path))
        except ImageReadError as exc:
            raise FrameReadError(str(exc), path=path, index=index) from exc
        self._frames_this_pass += 1
        encoded = data if plain_jpeg(data) else None  # an anomaly frame is then saved as the file itself, not re-encoded
        return Frame(image=image, index=index, timestamp=time.time(), source_id=str(path), path=str(path), encoded=encoded)

    def close(self) -> None:
        """Nothing to release; present for the protocol."""


class FolderSource(ImageFilesSource):
    """Frames from every image in a folder (and, by default, its subfolders), in natural path order."""

    def __init__(self, folder: str | os.PathLike, *, recursive: bool = True, loop: bool = False) -> None:
        super().__init__([], loop=loop)
        self.folder = Path(folder)
        self._recursive = recursive
        self.description = f"folder {self.folder}"

    def open(self) -> None:
        """List the folder now, so files added before opening count; SourceError if the folder is missing."""
        self._paths = list_images(self.folder, recursive=self._recursive)
        self.description = f"folder {self.folder} ({len(self._paths)} images)"
        super().open()
