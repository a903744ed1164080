"""Anomaly frames copied to a plant share (SHARE/STATION/YYYY-MM-DD/<local id>.jpg) before their rows are sent.

A copy is written beside its final name and linked into place, so a name on the share is always a whole file and
nothing there is ever overwritten. A frame copied earlier (an interrupted sync, a rerun) is found again by its
bytes and reused: rerunning copies nothing twice and the row references the same file.
"""
from __future__ import annotations

import contextlib
import errno
import filecmp
import os
import secrets
import shutil
from datetime import datetime
from pathlib import Path

from engine.central.errors import FrameShareError

MAX_NAMES = 100  # <id>.jpg, <id>-1.jpg, ...: a different file already under the name is kept, the copy takes the next


class FrameShare:
    """Where one station's frames go on the share; `copy()` returns the path the central row references."""

    def __init__(self, folder: str | os.PathLike, station_id: str):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FrameShareError(
                f"frames share {self.folder} is not a folder that exists (is it mounted?); give an existing folder"
            )
        self.station_dir = self.folder / station_id

    def copy(self, source: Path, local_id: int, when: float) -> Path | None:
        """Copy source to SHARE/STATION/DATE/<local_id><suffix> (the copy already there when one is); None when the
        station no longer has the frame (removed by retention). FrameShareError in one line when the share refuses."""
        if not source.is_file():
            return None
        day = self.station_dir / datetime.fromtimestamp(when).strftime("%Y-%m-%d")
        try:
            day.mkdir(parents=True, exist_ok=True)
            for n in range(MAX_NAMES):
                target = day / (f"{local_id}{source.suffix}" if n == 0 else f"{local_id}-{n}{source.suffix}")
                if not target.exists() and _place(source, target):
                    return target
                if filecmp.cmp(source, target, shallow=False):
                    return target  # copied by an earlier sync
                # another file under this name: kept, never overwritten; the copy takes the next name
        except OSError as exc:
            raise FrameShareError(f"cannot copy frame {source.name} to the frames share {self.folder}: {exc.strerror or exc}") from None
        raise FrameShareError(f"frames share {day}: {MAX_NAMES} other files already named {local_id}*; frame {source.name} not copied")


def _place(source: Path, target: Path) -> bool:
    """Copy source under target's name unless a file got there first (False then); never a partial file under target."""
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        shutil.copyfile(source, temp)
        try:
            os.link(temp, target)  # fails if target exists: atomic, never overwrites
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            if target.exists():  # a share without hard links: check, then rename (a rare race, never a partial file)
                return False
            os.rename(temp, target)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
