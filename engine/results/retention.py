"""Keep the saved anomaly frames within a size and an age, oldest removed first, with a running total of their size.

Frames live in frames/YYYY-MM-DD/<row id>.jpg beside the results log. The folder is walked once, each saved frame
adds its size to the total, and a prune runs only when the total is over the limit or the oldest frame is too old.
A prune lists only the oldest date folders it needs, goes down to LOW_WATER of the size limit (so it does not run
after every frame), and removes at most MAX_REMOVALS_PER_STEP files per saved frame (the writer never stalls).
The policy in effect and how far frames were removed are kept in frames/retention.json, so a frame missing for that
reason reads back as "removed by the retention policy" rather than as an unreadable file, and the CLI prunes with
the station's policy.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from engine.errors import ImageReadError, VisInspectError

GB = 1_000_000_000
DEFAULT_MAX_BYTES = 2 * GB
DEFAULT_MAX_AGE_DAYS = 30.0
LOW_WATER = 0.98  # a prune for size stops at 98 % of the limit
MAX_REMOVALS_PER_STEP = 200  # files one saved frame's prune step may remove; the rest go at the next frames
MIN_PRUNE_INTERVAL_S = 10.0  # after a prune that could not remove every file, the next waits this long
RECORD_NAME = "retention.json"
_DAY = re.compile(r"^\d{4}-\d\d-\d\d$")
_DAY_S = 86_400.0


class RetentionError(VisInspectError):
    """A retention policy value is out of range."""


class FramesFolderError(VisInspectError):
    """The frames folder cannot be listed (permissions, a failing disk)."""


class FrameRemovedError(ImageReadError):
    """A logged frame is gone because the retention policy removed it; its result row is still in the log."""


def format_bytes(n: int) -> str:
    """A size an operator reads at a glance: 850 kB, 312 MB, 1.5 GB (decimal units, as disks are sold)."""
    for unit, size in (("GB", GB), ("MB", 1_000_000), ("kB", 1_000)):
        if n >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 10 and not float(value).is_integer() else f"{value:.0f} {unit}"
    return f"{n} B"


def days_text(days: float) -> str:
    return f"{days:g} day" + ("" if days == 1 else "s")


@dataclass(frozen=True)
class RetentionPolicy:
    """How much of the saved anomaly frames to keep: at most max_bytes in all, none older than max_age_days."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_age_days: float = DEFAULT_MAX_AGE_DAYS

    def __post_init__(self) -> None:
        if isinstance(self.max_bytes, bool) or not isinstance(self.max_bytes, int) or self.max_bytes < 1:
            raise RetentionError(f"frames size limit must be a whole number of bytes, 1 or more (e.g. {DEFAULT_MAX_BYTES}), not {self.max_bytes!r}")
        days = self.max_age_days
        if isinstance(days, bool) or not isinstance(days, (int, float)) or not math.isfinite(days) or days <= 0:
            raise RetentionError(f"frames age limit must be a number of days over 0 (e.g. {DEFAULT_MAX_AGE_DAYS:g}), not {days!r}")

    @classmethod
    def from_units(cls, max_gb: float | None = None, max_days: float | None = None) -> RetentionPolicy:
        """A policy in GB and days (each defaults to the default policy's)."""
        if max_gb is not None and (isinstance(max_gb, bool) or not math.isfinite(max_gb) or max_gb <= 0):
            raise RetentionError(f"frames size limit must be a number of GB over 0 (e.g. 2), not {max_gb!r}")
        return cls(
            DEFAULT_MAX_BYTES if max_gb is None else max(1, round(max_gb * GB)),
            DEFAULT_MAX_AGE_DAYS if max_days is None else max_days,
        )

    @property
    def max_gb(self) -> float:
        return self.max_bytes / GB

    def describe(self) -> str:
        """'2 GB · 30 days'."""
        return f"{format_bytes(self.max_bytes)} · {days_text(self.max_age_days)}"

    def as_dict(self) -> dict[str, float]:
        return {"max_bytes": self.max_bytes, "max_age_days": self.max_age_days}


@dataclass(frozen=True)
class FrameUsage:
    """The frames folder now: how many frames, their size, and when the oldest was saved (None when empty)."""

    files: int
    bytes: int
    oldest: datetime | None

    def describe(self) -> str:
        oldest = f", the oldest from {self.oldest:%Y-%m-%d %H:%M}" if self.oldest else ""
        return f"{self.files:,} frame(s), {format_bytes(self.bytes)}{oldest}"


@dataclass(frozen=True)
class PruneReport:
    """What one prune removed: frames older than the age limit, then the oldest until under the size limit."""

    removed_files: int
    freed_bytes: int
    by_age: int
    by_size: int
    problems: tuple[str, ...] = ()
    complete: bool = True  # False: a step stopped at its removal limit and the next saved frame goes on

    def describe(self) -> str:
        text = f"removed {self.removed_files:,} frame(s) ({self.by_age:,} by age, {self.by_size:,} by size), freed {format_bytes(self.freed_bytes)}"
        return text + (f"; {len(self.problems)} could not be removed: {self.problems[-1]}" if self.problems else "")


@dataclass(frozen=True)
class FrameStatus:
    """What the station shows about its frames folder: the usage, the policy, and the last automatic prune."""

    usage: FrameUsage
    policy: RetentionPolicy
    last_prune: PruneReport | None

    @property
    def over_limit(self) -> bool:
        return self.usage.bytes > self.policy.max_bytes


def _row_id(name: str) -> int | None:
    stem, dot, ext = name.rpartition(".")
    return int(stem) if dot and ext.lower() == "jpg" and stem.isdigit() else None


def _days(folder: Path) -> list[Path]:
    """The date folders, oldest first (anything else in the frames folder is not ours and is left alone)."""
    try:
        with os.scandir(folder) as entries:
            return sorted(Path(e.path) for e in entries if _DAY.match(e.name) and e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []


def _names_in(day: Path) -> list[tuple[int, Path]]:
    """The frames of one date folder as (row id, path), oldest first; listed without reading each file's size."""
    found = []
    with contextlib.suppress(FileNotFoundError), os.scandir(day) as entries:
        for e in entries:
            row_id = _row_id(e.name)
            if row_id is not None and e.is_file(follow_symlinks=False):
                found.append((row_id, Path(e.path)))
    return sorted(found)


def scan_frames(folder: str | os.PathLike) -> FrameUsage:
    """Measure the frames folder by walking it (what the running total is checked against)."""
    files = total = 0
    oldest = None
    for day in _days(Path(folder)):
        for _row, path in _names_in(day):
            with contextlib.suppress(FileNotFoundError):
                st = path.stat()
                files, total = files + 1, total + st.st_size
                oldest = st.st_mtime if oldest is None else oldest
    return FrameUsage(files, total, None if oldest is None else datetime.fromtimestamp(oldest))


def _read_record(folder: Path) -> dict:
    try:
        record = json.loads((folder / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _write_record(folder: Path, record: dict) -> None:
    """Replace the record atomically (a half-written one would read as none)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{RECORD_NAME}.tmp"
    tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(tmp, folder / RECORD_NAME)


def _policy_in(record: dict, key: str) -> RetentionPolicy | None:
    raw = record.get(key)
    try:
        return RetentionPolicy(int(raw["max_bytes"]), float(raw["max_age_days"])) if isinstance(raw, dict) else None
    except (KeyError, TypeError, ValueError, RetentionError):
        return None


def recorded_policy(folder: str | os.PathLike) -> RetentionPolicy | None:
    """The policy the station last set for this frames folder, if any (and valid)."""
    return _policy_in(_read_record(Path(folder)), "policy")


def removed_by_retention(frame_path: str | os.PathLike) -> RetentionPolicy | None:
    """For a missing frame: the policy that removed it, or None when retention did not (moved or deleted by hand)."""
    path = Path(frame_path)
    row_id, record = _row_id(path.name), _read_record(path.parent.parent)
    through = _pruned_through(record)
    if row_id is None or through is None or not _DAY.match(path.parent.name) or (path.parent.name, row_id) > through:
        return None
    return _policy_in(record, "policy_applied") or _policy_in(record, "policy") or RetentionPolicy()


def _pruned_through(record: dict) -> tuple[str, int] | None:
    """The newest frame (date folder, row id) a prune has removed, per the record."""
    through = record.get("pruned_through")
    try:
        return (str(through[0]), int(through[1])) if isinstance(through, list) and len(through) == 2 else None
    except (TypeError, ValueError):
        return None


class FrameStore:
    """The frames folder of one results log: its running size, and pruning by the policy (thread-safe).

    With no policy given, the one recorded in the folder (the station's) applies, else the default. Frames written
    or removed by another program meanwhile are counted at the next walk (the next launch, or `visinspect frames`).
    """

    def __init__(self, folder: str | os.PathLike, policy: RetentionPolicy | None = None) -> None:
        self.folder = Path(folder)
        self._policy = policy
        self._remember = False  # write the policy to the record at the next chance (off the caller's thread)
        self._usage: FrameUsage | None = None
        self._last_prune = -math.inf
        self._unfinished = False
        self._cursor: tuple[Path, deque[tuple[int, Path]]] | None = None  # the oldest folder's listing, still to go
        self._lock = threading.Lock()
        self.last_prune: PruneReport | None = None

    @property
    def policy(self) -> RetentionPolicy:
        """The policy in effect (reads the folder's record the first time when none was given)."""
        with self._lock:
            return self._policy_locked()

    def set_policy(self, policy: RetentionPolicy, *, remember: bool = True) -> None:
        """Use this policy from now on; remember: also record it in the folder (written at the next walk or prune)."""
        if not isinstance(policy, RetentionPolicy):
            raise TypeError(f"policy must be a RetentionPolicy, not {type(policy).__name__}")
        with self._lock:
            self._policy, self._remember = policy, remember
            self._last_prune = -math.inf  # a tighter policy applies at the next saved frame

    def usage(self) -> FrameUsage:
        """The running total (the folder is walked once, the first time)."""
        with self._lock:
            return self._usage_locked()

    def status(self) -> FrameStatus:
        """Usage, policy and last prune read together (may walk the folder the first time: call it off the GUI thread)."""
        with self._lock:
            try:
                return FrameStatus(self._usage_locked(), self._policy_locked(), self.last_prune)
            except OSError as exc:
                raise FramesFolderError(f"frames folder {self.folder} cannot be read ({exc.strerror or exc})") from None

    def added(self, size: int, *, now: float | None = None) -> PruneReport | None:
        """Count a frame just saved; take a prune step when over the size limit or when the oldest frame is too old."""
        now = time.time() if now is None else now
        with self._lock:
            try:
                if self._usage is None:
                    self._usage_locked()  # the walk counts the new frame already
                else:
                    u = self._usage
                    self._usage = FrameUsage(u.files + 1, u.bytes + size, u.oldest or datetime.fromtimestamp(now))
                policy, u = self._policy_locked(), self._usage
                too_old = u.oldest is not None and u.oldest.timestamp() < now - policy.max_age_days * _DAY_S
                due = self._unfinished or u.bytes > policy.max_bytes or too_old
                failing = self.last_prune is not None and self.last_prune.problems
                if due and (not failing or now - self._last_prune >= MIN_PRUNE_INTERVAL_S):
                    return self._prune_locked(policy, now, LOW_WATER, MAX_REMOVALS_PER_STEP)
            except OSError as exc:  # the folder cannot be listed: the frame is saved all the same; say why
                self._last_prune = now
                self.last_prune = PruneReport(0, 0, 0, 0, (f"{self.folder}: {exc.strerror or exc}",))
        return None

    def prune(self, policy: RetentionPolicy | None = None, *, now: float | None = None, low_water: float = LOW_WATER) -> PruneReport:
        """Remove frames older than the age limit, then the oldest until under low_water of the size limit.

        policy: a one-off policy (the store's own is not changed); default: the store's.
        """
        with self._lock:
            return self._prune_locked(policy or self._policy_locked(), time.time() if now is None else now, low_water, None)

    # -- under the lock --------------------------------------------------------------------------

    def _policy_locked(self) -> RetentionPolicy:
        if self._policy is None:
            self._policy = recorded_policy(self.folder) or RetentionPolicy()
        return self._policy

    def _usage_locked(self) -> FrameUsage:
        if self._usage is None:
            self._usage = scan_frames(self.folder)
            self._save_policy_locked()
        return self._usage

    def _listing(self, day: Path) -> deque[tuple[int, Path]]:
        """The frames of the oldest folder still to consider: listed once, then worked through over several steps."""
        if self._cursor is None or self._cursor[0] != day:
            self._cursor = (day, deque(_names_in(day)))
        return self._cursor[1]

    def _save_policy_locked(self) -> None:
        if self._remember and self._policy is not None:
            record = _read_record(self.folder)
            if record.get("policy") != self._policy.as_dict():
                with contextlib.suppress(OSError):  # only a hint for the CLI; the station goes on
                    _write_record(self.folder, {**record, "policy": self._policy.as_dict()})
            self._remember = False

    def _prune_locked(self, policy: RetentionPolicy, now: float, low_water: float, limit: int | None) -> PruneReport:
        """Remove oldest first, listing only the date folders needed, from the running total; at most limit files."""
        usage = self._usage_locked()
        self._last_prune = now
        self._save_policy_locked()
        cutoff = now - policy.max_age_days * _DAY_S
        cutoff_day = datetime.fromtimestamp(cutoff).strftime("%Y-%m-%d")
        files, total = usage.files, usage.bytes
        over = total > policy.max_bytes or self._unfinished
        target = policy.max_bytes * low_water if over else policy.max_bytes
        by_age = by_size = freed = 0
        problems: list[str] = []
        removed_through: tuple[str, int] | None = None
        stuck: float | None = None  # the oldest frame that could not be removed
        kept: float | None = None  # the first frame kept
        complete = True
        failed: set[Path] = set()
        days = iter(_days(self.folder))
        day = next(days, None)
        relisted = self._cursor is None or self._cursor[0] != day  # a listing made now needs no second look
        while day is not None:
            names = self._listing(day)
            if not names:
                if not relisted:  # frames saved into the folder since it was listed come next
                    self._cursor, relisted = (day, deque(n for n in _names_in(day) if n[1] not in failed)), True
                    continue
                self._cursor = None
                with contextlib.suppress(OSError):
                    day.rmdir()  # only when emptied
                day, relisted = next(days, None), True
                continue
            row_id, path = names[0]
            try:
                st = path.stat()
            except FileNotFoundError:
                names.popleft()
                continue
            old = day.name < cutoff_day or (day.name == cutoff_day and st.st_mtime < cutoff)
            if not old and total <= target:
                kept = st.st_mtime
                break  # everything from here on is newer and within the size limit
            if limit is not None and by_age + by_size >= limit:
                complete, kept = False, st.st_mtime
                break
            names.popleft()
            try:
                path.unlink()
            except FileNotFoundError:
                pass  # removed meanwhile: it takes no room either
            except OSError as exc:
                problems.append(f"{path}: {exc.strerror or exc}")
                failed.add(path)
                stuck = st.st_mtime if stuck is None else stuck
                continue
            files, total, freed = files - 1, total - st.st_size, freed + st.st_size
            by_age, by_size = by_age + old, by_size + (not old)
            removed_through = (day.name, row_id)
        oldest = stuck if stuck is not None else kept
        if removed_through is not None:
            record = _read_record(self.folder)
            removed_through = max(removed_through, _pruned_through(record) or removed_through)
            try:
                _write_record(self.folder, {**record, "pruned_through": list(removed_through), "policy_applied": policy.as_dict()})
            except OSError as exc:
                problems.append(f"{self.folder / RECORD_NAME}: {exc.strerror or exc}")
        self._usage = FrameUsage(max(0, files), max(0, total), None if oldest is None else datetime.fromtimestamp(oldest))
        self._unfinished = not complete
        report = PruneReport(by_age + by_size, freed, by_age, by_size, tuple(problems), complete)
        self.last_prune = report
        return report
