"""What the station remembers between launches (last source and review folder), in an INI file in its data folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

from PySide6.QtCore import QSettings


class StationSettings:
    """The operator's last choices, so a station launched from its shortcut is ready on the same camera or folder."""

    def __init__(self, data_dir: str | os.PathLike) -> None:
        self.path = Path(data_dir) / "station.ini"
        self._qs = QSettings(str(self.path), QSettings.Format.IniFormat)

    def save_source(self, spec: str | list[str], *, loop: bool, max_fps: float | None) -> None:
        """Remember the source a run was started on."""
        self._qs.setValue("source/spec", json.dumps(spec))
        self._qs.setValue("source/loop", json.dumps(bool(loop)))
        self._qs.setValue("source/max_fps", json.dumps(max_fps))
        self._qs.sync()

    def last_source(self) -> tuple[str | list[str], bool, float | None] | None:
        """(spec, loop, max_fps) of the last run, or None when there was none or the file is unreadable."""
        try:
            spec = json.loads(self._qs.value("source/spec", "null"))
            loop = bool(json.loads(self._qs.value("source/loop", "false")))
            max_fps = json.loads(self._qs.value("source/max_fps", "null"))
        except (TypeError, ValueError):
            return None
        valid_spec = isinstance(spec, str) and spec.strip() or (isinstance(spec, list) and spec and all(isinstance(p, str) for p in spec))
        if not valid_spec or not (max_fps is None or isinstance(max_fps, (int, float))):
            return None
        return spec, loop, None if max_fps is None else float(max_fps)

    def save_review_folder(self, folder: str) -> None:
        """Remember the folder last reviewed."""
        self._qs.setValue("review/folder", folder)
        self._qs.sync()

    def last_review_folder(self) -> str | None:
        """The folder last reviewed, if it still exists."""
        folder = self._qs.value("review/folder", None)
        return folder if isinstance(folder, str) and Path(folder).is_dir() else None
