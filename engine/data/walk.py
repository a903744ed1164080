"""The one image-folder walker: every part image under a folder, in natural order, never a ground-truth mask.

predict, the Review tab, folder sources, dataset layouts and the benchmark all list images here, so a
folder gives the same parts everywhere. Left out: folders named like mask folders (ground_truth,
masks, mask, gt), hidden files and folders, `<stem>_mask.*` files, and a `.png` with the same stem as
another image beside it (the magnetic-tile layout keeps each mask so). Folder links are not followed.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from engine.data.decode import is_image_file
from engine.errors import SourceError

MASK_FOLDER_NAMES = ("ground_truth", "masks", "mask", "gt")
_DIGITS = re.compile(r"(\d+)")


def natural_key(path: str | os.PathLike) -> tuple:
    """Sort key that orders img2 before img10 and ignores letter case (ties broken by the raw path)."""
    text = os.fspath(path)
    parts = _DIGITS.split(text.casefold())
    # re.split with a group alternates text/number, so equal positions always hold equal types.
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), text


def is_mask_folder(name: str) -> bool:
    return name.lower() in MASK_FOLDER_NAMES


def _parts(folder: str, names: list[str]) -> list[Path]:
    """The part images among the file names of one folder (masks and hidden files left out)."""
    images = [n for n in names if is_image_file(n) and not n.startswith(".")]
    stems = {os.path.splitext(n)[0] for n in images if not n.lower().endswith(".png")}
    return [
        Path(folder, n)
        for n in images
        if not os.path.splitext(n)[0].lower().endswith("_mask")
        and not (n.lower().endswith(".png") and os.path.splitext(n)[0] in stems)
    ]


def list_images(folder: str | os.PathLike, *, recursive: bool = True) -> list[Path]:
    """Part images under folder in natural path order; SourceError when it is not a readable folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SourceError(f"folder {folder} does not exist or is not a folder")
    found: list[Path] = []
    if recursive:
        for root, dirs, names in os.walk(folder, followlinks=False, onerror=lambda _exc: None):
            dirs[:] = [d for d in dirs if not d.startswith(".") and not is_mask_folder(d)]
            found.extend(_parts(root, names))
    else:
        try:
            with os.scandir(folder) as entries:
                names = [e.name for e in entries if not e.is_dir()]
        except OSError as exc:
            raise SourceError(f"folder {folder} cannot be listed ({exc.strerror or exc})") from None
        found = _parts(str(folder), names)
    return sorted(found, key=natural_key)
