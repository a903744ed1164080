"""Saved anomaly frames are kept within a size and an age, oldest removed first; a removed frame reads back plainly."""

from __future__ import annotations

import errno
import os
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from engine.data.decode import read_image
from engine.errors import ImageReadError
from engine.results import ResultFilter, ResultsLog
from engine.results.frames import logged_frame
from engine.results.retention import (
    FrameRemovedError,
    FrameStore,
    RetentionError,
    RetentionPolicy,
    recorded_policy,
    scan_frames,
)
from engine.thresholds import Thresholds
from engine.types import Box, Inspection, ModelRef, Verdict

MODEL = ModelRef("/models/m.safetensors", "ab" * 32)
NOW = datetime(2026, 11, 30, 12, 0).timestamp()


def _put(folder: Path, day: str, row_id: int, size: int, *, mtime: float | None = None) -> Path:
    """A fake frame file of `size` bytes in frames/<day>/<row_id>.jpg, saved at mtime (default: noon that day)."""
    path = folder / day / f"{row_id}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff" * size)
    when = datetime.fromisoformat(day).replace(hour=12).timestamp() if mtime is None else mtime
    os.utime(path, (when, when))
    return path


def _left(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.jpg"))


def test_prune_by_size_removes_the_oldest_first_and_stops_under_the_limit(tmp_path):
    frames = tmp_path / "frames"
    for row_id in (5, 6, 7, 8):
        _put(frames, "2026-11-28", row_id, 1000)
    for row_id in range(9, 15):  # row 9 is older than row 10 (numbers, not names)
        _put(frames, "2026-11-29", row_id, 1000)
    store = FrameStore(frames, RetentionPolicy(max_bytes=5100, max_age_days=30))
    report = store.prune(now=NOW)

    # Over the limit: down to LOW_WATER of it (4998 bytes: 4 frames kept), the six oldest removed.
    assert (report.removed_files, report.freed_bytes, report.by_size, report.by_age) == (6, 6000, 6, 0)
    assert _left(frames) == [f"2026-11-29/{i}.jpg" for i in range(11, 15)]
    assert not (frames / "2026-11-28").exists()  # the emptied date folder went too
    assert store.usage() == scan_frames(frames)
    assert store.usage().bytes == 4000 <= 5100

    # Under the limit: nothing more is removed.
    assert store.prune(now=NOW).removed_files == 0
    assert len(_left(frames)) == 4


def test_prune_by_age_removes_every_frame_older_than_the_limit_and_nothing_newer(tmp_path):
    frames = tmp_path / "frames"
    _put(frames, "2026-10-01", 1, 500)
    _put(frames, "2026-10-30", 2, 500, mtime=NOW - 31 * 86_400)  # the cutoff day, before the cutoff time
    _put(frames, "2026-10-31", 3, 500, mtime=NOW - 29 * 86_400)
    _put(frames, "2026-11-30", 4, 500, mtime=NOW - 60)
    (frames / "notes.txt").write_text("not a frame")  # anything that is not ours stays
    report = FrameStore(frames, RetentionPolicy(max_bytes=10**9, max_age_days=30)).prune(now=NOW)
    assert (report.removed_files, report.by_age, report.by_size) == (2, 2, 0)
    assert _left(frames) == ["2026-10-31/3.jpg", "2026-11-30/4.jpg"]
    assert (frames / "notes.txt").is_file()
    oldest = scan_frames(frames).oldest
    assert oldest == datetime.fromtimestamp(NOW - 29 * 86_400)


def test_the_running_total_matches_a_walk_of_the_folder(tmp_path):
    frames = tmp_path / "frames"
    _put(frames, "2026-11-29", 1, 700)
    store = FrameStore(frames, RetentionPolicy(max_bytes=5000, max_age_days=30))
    assert store.usage() == scan_frames(frames)  # walked once
    for row_id in range(2, 12):  # then counted, pruned when over 5000 bytes
        _put(frames, "2026-11-30", row_id, 700, mtime=NOW)
        store.added(700, now=NOW + row_id * 60)
        assert store.usage().files == scan_frames(frames).files
        assert store.usage().bytes == scan_frames(frames).bytes <= 5000
    assert store.last_prune is not None and store.last_prune.removed_files > 0
    assert "2026-11-29/1.jpg" not in _left(frames)


def test_policy_values_are_checked_with_the_allowed_range_named():
    with pytest.raises(RetentionError, match="number of days over 0"):
        RetentionPolicy(max_age_days=0)
    with pytest.raises(RetentionError, match="whole number of bytes, 1 or more"):
        RetentionPolicy(max_bytes=-5)
    with pytest.raises(RetentionError, match="number of GB over 0"):
        RetentionPolicy.from_units(max_gb=float("nan"))
    assert RetentionPolicy.from_units(0.5, 7) == RetentionPolicy(500_000_000, 7)
    assert RetentionPolicy().describe() == "2 GB · 30 days"


# -- through the results log ---------------------------------------------------------------------

def _anomaly(log: ResultsLog, item: str, seed: int) -> None:
    """Log one ANOMALY with a noisy 96x96 frame (about 9 kB as JPEG: noise does not compress)."""
    image = np.random.default_rng(seed).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    inspection = Inspection(0.9, Thresholds(0.5), np.zeros((8, 8), np.float32), (Box(1, 2, 3, 4, 0.9),), model=MODEL)
    log.log_inspection(run_id="run-a", source="folder /line", item=item, inspection=inspection, image=image)


def test_a_pruned_row_stays_and_reads_back_with_a_plain_message_and_the_log_keeps_writing(tmp_path):
    with ResultsLog(tmp_path / "results.sqlite3", retention=RetentionPolicy(max_bytes=60_000, max_age_days=30)) as log:
        for i in range(12):
            _anomaly(log, f"part-{i:02d}.png", i)
        rows = sorted(log.query(ResultFilter(Verdict.ANOMALY)), key=lambda r: r.id)
        assert len(rows) == 12  # every result is still in the log
        kept = [r for r in rows if Path(r.frame_path).is_file()]
        gone = [r for r in rows if not Path(r.frame_path).is_file()]
        assert gone and kept and max(r.id for r in gone) < min(r.id for r in kept)  # the oldest went
        assert log.frames.usage() == scan_frames(log.frames_dir)
        assert log.frames.usage().bytes <= 60_000

        with pytest.raises(FrameRemovedError, match=r"removed by the retention policy \(older than 30 days or over 60 kB"):
            logged_frame(gone[0])
        assert logged_frame(kept[-1]).image.shape == (96, 96, 3)

        _anomaly(log, "after.png", 99)  # the log keeps writing after pruning
        newest = log.query(ResultFilter(Verdict.ANOMALY), limit=1)[0]
        assert newest.item == "after.png" and read_image(newest.frame_path).shape == (96, 96, 3)
        assert log.last_error is None


def test_a_frame_deleted_by_hand_is_not_blamed_on_the_retention_policy(tmp_path):
    with ResultsLog(tmp_path / "results.sqlite3") as log:
        _anomaly(log, "a.png", 1)
        row = log.query()[0]
    Path(row.frame_path).unlink()
    with pytest.raises(ImageReadError, match="file not found") as caught:
        logged_frame(row)
    assert not isinstance(caught.value, FrameRemovedError)


def test_a_full_disk_while_saving_a_frame_is_reported_and_the_row_is_kept(tmp_path, monkeypatch):
    real_write = Path.write_bytes

    def disk_full(self, data):
        if self.suffix == ".jpg":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(self, data)

    with ResultsLog(tmp_path / "results.sqlite3") as log:
        monkeypatch.setattr(Path, "write_bytes", disk_full)
        _anomaly(log, "a.png", 1)
        assert "anomaly frame" in log.last_error and "No space left on device" in log.last_error
        monkeypatch.setattr(Path, "write_bytes", real_write)
        row = log.query()[0]
        assert row.item == "a.png" and row.frame_path is None
        assert log.frames.usage().files == 0  # a frame that was not saved is not counted
        _anomaly(log, "b.png", 2)
        assert log.last_error is None and log.frames.usage().files == 1


def test_the_station_policy_is_recorded_for_the_cli_and_a_log_opened_without_one_uses_it(tmp_path):
    with ResultsLog(tmp_path / "results.sqlite3") as station:
        station.frames.set_policy(RetentionPolicy(max_bytes=5 * 10**9, max_age_days=7))
        _anomaly(station, "a.png", 1)
    assert recorded_policy(tmp_path / "frames") == RetentionPolicy(5 * 10**9, 7)
    with ResultsLog(tmp_path / "results.sqlite3") as cli:
        assert cli.frames.policy == RetentionPolicy(5 * 10**9, 7)


def test_frames_command_shows_usage_and_prunes(tmp_path, capsys):
    from engine.cli import main

    frames = tmp_path / "frames"
    old_day = (datetime.fromtimestamp(time.time()) - timedelta(days=40)).strftime("%Y-%m-%d")
    _put(frames, old_day, 1, 2000)
    _put(frames, datetime.now().strftime("%Y-%m-%d"), 2, 3000, mtime=time.time())
    db = str(tmp_path / "results.sqlite3")

    assert main(["frames", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "2 frame(s), 5 kB" in out and "policy: 2 GB · 30 days" in out
    assert _left(frames) == [f"{old_day}/1.jpg", f"{datetime.now():%Y-%m-%d}/2.jpg"]  # showing changes nothing

    assert main(["frames", "--db", db, "--prune"]) == 0
    assert "removed 1 frame(s) (1 by age, 0 by size)" in capsys.readouterr().out
    assert _left(frames) == [f"{datetime.now():%Y-%m-%d}/2.jpg"]

    assert main(["frames", "--db", db, "--max-days", "0"]) == 2
    assert "--max-days and --max-gb go with --prune" in capsys.readouterr().err
    assert main(["frames", "--db", db, "--prune", "--max-days", "0"]) == 2
    assert "number of days over 0" in capsys.readouterr().err


def test_a_frame_that_cannot_be_removed_is_reported_and_the_rest_still_go(tmp_path, monkeypatch):
    frames = tmp_path / "frames"
    stuck = _put(frames, "2026-11-28", 1, 1000)
    for row_id in (2, 3, 4):
        _put(frames, "2026-11-29", row_id, 1000)
    real_unlink = Path.unlink

    def unlink(self, *a, **kw):
        if self == stuck:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real_unlink(self, *a, **kw)

    monkeypatch.setattr(Path, "unlink", unlink)
    store = FrameStore(frames, RetentionPolicy(max_bytes=2500, max_age_days=30))
    report = store.prune(now=NOW)
    assert report.removed_files == 2 and "Permission denied" in report.problems[0]
    assert _left(frames) == ["2026-11-28/1.jpg", "2026-11-29/4.jpg"]
    assert store.usage() == scan_frames(frames)


def test_a_saved_frame_removes_at_most_a_step_of_frames_and_the_next_ones_go_on(tmp_path, monkeypatch):
    import engine.results.retention as retention

    monkeypatch.setattr(retention, "MAX_REMOVALS_PER_STEP", 3)
    frames = tmp_path / "frames"
    for row_id in range(1, 9):
        _put(frames, "2026-09-01", row_id, 100)  # eight frames far older than 30 days
    store = FrameStore(frames, RetentionPolicy(max_bytes=10**9, max_age_days=30))
    store.usage()
    steps = []
    for row_id in (9, 10, 11, 12):  # each saved frame takes one step
        _put(frames, "2026-11-30", row_id, 100, mtime=NOW)
        steps.append(store.added(100, now=NOW + row_id))
    assert [s.removed_files for s in steps[:3]] == [3, 3, 2]
    assert [s.complete for s in steps[:3]] == [False, False, True]
    assert steps[3] is None  # nothing due any more
    assert _left(frames) == sorted(f"2026-11-30/{i}.jpg" for i in (9, 10, 11, 12))
    assert store.usage() == scan_frames(frames)


def test_a_frames_folder_that_cannot_be_listed_does_not_stop_the_log(tmp_path, monkeypatch):
    import engine.results.retention as retention

    def no_listing(folder):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    with ResultsLog(tmp_path / "results.sqlite3") as log:
        monkeypatch.setattr(retention, "_days", no_listing)
        _anomaly(log, "a.png", 1)
        row = log.query()[0]
        assert row.item == "a.png" and Path(row.frame_path).is_file()  # saved and logged all the same
        assert "Permission denied" in log.frames.last_prune.problems[0]  # shown amber in the status bar
