"""What the station remembers between launches (last source, review folder, frames retention), in an INI file.

Read once when the window is built; written in a worker, so the GUI thread never waits on the disk. One write
runs at a time: values saved meanwhile wait and go in the next, so the file always ends with the newest.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from PySide6.QtCore import QSettings

from engine.results.retention import RetentionError, RetentionPolicy
from visinspect_gui.workers import Worker

log = logging.getLogger(__name__)


def _write(path: str, values: dict, *, stop) -> Iterator[None]:
    """Write values to the INI file at path (a QSettings of this thread's own; QSettings locks the file)."""
    qs = QSettings(path, QSettings.Format.IniFormat)
    for key, value in values.items():
        qs.setValue(key, value)
    qs.sync()
    yield from ()


class StationSettings:
    """The last choices (source, review folder, model in use) and the engineer PIN hash, between launches."""

    def __init__(self, data_dir: str | os.PathLike) -> None:
        self.path = Path(data_dir) / "station.ini"
        self._qs = QSettings(str(self.path), QSettings.Format.IniFormat)
        self._written: dict[str, str] = {}  # this session's values: read back without waiting for the file
        self._waiting: dict[str, str] = {}  # saved while a write runs: written next
        self._writer: Worker | None = None

    def save_source(self, spec: str | list[str], *, loop: bool, max_fps: float | None) -> None:
        """Remember the source a run was started on."""
        self._save({"source/spec": json.dumps(spec), "source/loop": json.dumps(bool(loop)), "source/max_fps": json.dumps(max_fps)})

    def last_source(self) -> tuple[str | list[str], bool, float | None] | None:
        """(spec, loop, max_fps) of the last run, or None when there was none or the file is unreadable."""
        try:
            spec = json.loads(self._value("source/spec", "null"))
            loop = bool(json.loads(self._value("source/loop", "false")))
            max_fps = json.loads(self._value("source/max_fps", "null"))
        except (TypeError, ValueError):
            return None
        valid_spec = isinstance(spec, str) and spec.strip() or (isinstance(spec, list) and spec and all(isinstance(p, str) for p in spec))
        if not valid_spec or not (max_fps is None or isinstance(max_fps, (int, float))):
            return None
        return spec, loop, None if max_fps is None else float(max_fps)

    def save_retention_policy(self, policy: RetentionPolicy) -> None:
        """Remember how much of the saved anomaly frames to keep ([frames] max_gb and max_days in the file)."""
        self._save({"frames/max_gb": json.dumps(policy.max_gb), "frames/max_days": json.dumps(policy.max_age_days)})

    def retention_policy(self) -> RetentionPolicy:
        """The frames retention policy: the one saved, else the default (2 GB, 30 days); a bad value is logged once."""
        try:
            max_gb = json.loads(self._value("frames/max_gb", "null"))
            max_days = json.loads(self._value("frames/max_days", "null"))
            if not all(v is None or isinstance(v, (int, float)) for v in (max_gb, max_days)):
                raise RetentionError(f"frames limits must be numbers, not {max_gb!r} GB and {max_days!r} days")
            return RetentionPolicy.from_units(max_gb, max_days)
        except (TypeError, ValueError, RetentionError) as exc:
            log.warning("station settings %s: %s; using the default frames retention policy", self.path, exc)
            return RetentionPolicy()

    def central_url(self) -> str | None:
        """The plant PostgreSQL to forward results to (`[central] url` in station.ini, no password), or None."""
        url = str(self._value("central/url", "") or "").strip()
        return url or None

    def central_share(self) -> str | None:
        """The mounted plant share anomaly frames are copied to (`[central] share` in station.ini), or None."""
        share = str(self._value("central/share", "") or "").strip()
        return share or None

    def save_review_folder(self, folder: str) -> None:
        """Remember the folder last reviewed."""
        self._save({"review/folder": folder})

    def last_review_folder(self) -> str | None:
        """The folder last reviewed, if it still exists."""
        folder = self._value("review/folder", None)
        return folder if isinstance(folder, str) and Path(folder).is_dir() else None

    def save_model(self, path: str) -> None:
        """Remember the model in use, so the next launch loads it rather than the newest file."""
        self._save({"model/path": str(path)})

    def last_model(self) -> str | None:
        """The model last in use, if its file still exists."""
        path = self._value("model/path", None)
        return path if isinstance(path, str) and Path(path).is_file() else None

    def save_roi(self, roi: tuple[int, int, int, int] | None) -> None:
        """Remember the region of interest (x, y, width, height in frame pixels; None: the whole frame)."""
        self._save({"live/roi": json.dumps(list(roi) if roi else None)})

    def roi(self) -> tuple[int, int, int, int] | None:
        """The region of interest last drawn, or None (also for an unreadable value)."""
        try:
            roi = json.loads(self._value("live/roi", "null"))
        except (TypeError, ValueError):
            return None
        valid = isinstance(roi, list) and len(roi) == 4 and all(isinstance(v, int) for v in roi) and roi[2] > 0 and roi[3] > 0
        return tuple(roi) if valid else None

    def save_recipe_name(self, name: str | None) -> None:
        """Remember the recipe in use (None: none)."""
        self._save({"recipe/name": name or ""})

    def recipe_name(self) -> str | None:
        value = self._value("recipe/name", "")
        return value if isinstance(value, str) and value else None

    def save_pin_hash(self, value: str) -> None:
        """Store the engineer PIN's hash (never the PIN)."""
        self._save({"access/pin_hash": value})

    def pin_hash(self) -> str | None:
        """The engineer PIN's hash, or None when no PIN is set (the station then has no operator lock)."""
        value = self._value("access/pin_hash", None)
        return value if isinstance(value, str) and value else None

    def _value(self, key: str, default):
        return self._written[key] if key in self._written else self._qs.value(key, default)

    def _save(self, values: dict) -> None:
        """Keep values for this session's reads and write them to the file in a worker, after any write running."""
        self._written.update(values)
        self._waiting.update(values)
        if self._writer is None:
            self._write_waiting()

    def _write_waiting(self) -> None:
        values, self._waiting = self._waiting, {}
        writer = Worker(_write, str(self.path), values)
        writer.finished.connect(lambda: self._on_written(writer))
        self._writer = writer.start()

    def _on_written(self, writer: Worker) -> None:
        if self._writer is writer:
            self._writer = None
            if self._waiting:
                self._write_waiting()

    def wait(self, ms: int = 5_000) -> bool:
        """Write what is waiting and wait for it (window close, tests); True when it ended in time."""
        while self._writer is not None:
            if not self._writer.wait(ms):
                return False
            self._writer = None
            if self._waiting:
                self._write_waiting()
        return True
