"""Frame sources over image files: an explicit list, or every image in a folder in natural order."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from pathlib import Path

from engine.data.decode import is_image_file, read_image
from engine.errors import ImageReadError, SourceError
from engine.sources.base import FrameReadError, FrameSource
from engine.types import Frame

_DIGITS = re.compile(r"(\d+)")


def natural_key(path: str | os.PathLike) -> tuple:
    """Sort key that orders img2 before img10 and ignores letter case (ties broken by the raw path)."""
    text = os.fspath(path)
    parts = _DIGITS.split(text.casefold())
    # re.split with a group alternates text/number, so equal positions always hold equal types.
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), text


def list_images(folder: str | os.PathLike, *, recursive: bool = True) -> list[Path]:
    """Image files under folder in natural order; unreadable subfolders skipped, folder links not followed."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SourceError(f"folder {folder} does not exist or is not a folder")
    found: list[Path] = []
    if recursive:
        for root, _dirs, names in os.walk(folder, followlinks=False, onerror=lambda _exc: None):
            found.extend(Path(root, n) for n in names if is_image_file(n))
    else:
        try:
            with os.scandir(folder) as entries:
                found.extend(Path(e.path) for e in entries if is_image_file(e.name) and not e.is_dir())
        except OSError as exc:
            raise SourceError(f"folder {folder} cannot be listed ({exc.strerror or exc})") from None
    return sorted(found, key=natural_key)


class ImageFilesSource(FrameSource):
    """Frames from a list of image files; an unreadable file is one FrameReadError, then reading goes on."""

    is_live = False

    def __init__(self, paths: Iterable[str | os.PathLike], *, loop: bool = False) -> None:
        self._paths = [Path(p) for p in paths]
        self._loop = loop
        self._pos = 0
        self._index = 0
        self._frames_this_pass = 0
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
        """Start again from the first file."""
        self._pos = 0
        self._index = 0
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
            image = read_image(path)
        except ImageReadError as exc:
            raise FrameReadError(str(exc), path=path, index=index) from exc
        self._frames_this_pass += 1
        return Frame(image=image, index=index, timestamp=time.time(), source_id=str(path), path=str(path))

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
