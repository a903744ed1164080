"""The station shows how much room the saved anomaly frames take under its retention policy, and History says plainly
when a frame was removed by that policy."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QLabel

from engine.results import ResultsLog
from engine.results.retention import FrameStatus, FrameUsage, PruneReport, RetentionPolicy
from engine.thresholds import Thresholds
from engine.types import Box, Inspection, ModelRef, Verdict
from visinspect_gui.settings import StationSettings
from visinspect_gui.widgets.history_tab import HistoryTab
from visinspect_gui.widgets.status_bar import StationStatusBar
from visinspect_gui.workers import Worker

MODEL = ModelRef("/models/m.safetensors", "ab" * 32)


def test_the_status_bar_shows_the_frames_size_under_the_station_policy(make_window, private_folders, qtbot):
    data, _ = private_folders
    settings = StationSettings(data)
    settings.save_retention_policy(RetentionPolicy.from_units(max_gb=1, max_days=7))
    assert settings.wait()
    day = data / "frames" / datetime.now().strftime("%Y-%m-%d")
    day.mkdir(parents=True)
    for row_id in (1, 2, 3):
        (day / f"{row_id}.jpg").write_bytes(b"\xff" * 100_000)

    w = make_window()
    qtbot.waitUntil(lambda: w.status.frames.isVisibleTo(w), timeout=5_000)
    assert w.status.frames.text() == "Frames: 300 kB of 1 GB · 7 days"
    assert "Saved anomaly frames: 3," in w.status.frames.toolTip()
    assert w.results.frames.policy == RetentionPolicy(10**9, 7)  # the station's setting is the log's policy
    assert w.status.frames.property("level") == "info"


def test_the_frames_label_turns_amber_when_over_the_limit_or_a_frame_cannot_be_removed(qtbot):
    bar = StationStatusBar()
    qtbot.addWidget(bar)
    policy = RetentionPolicy.from_units(max_gb=2, max_days=30)
    bar.set_frames_usage(FrameStatus(FrameUsage(4_000, 312_400_000, datetime(2026, 11, 2, 8, 0)), policy, None))
    assert bar.frames.text() == "Frames: 312 MB of 2 GB · 30 days"
    assert "4,000, the oldest from 2026-11-02 08:00" in bar.frames.toolTip()
    assert bar.frames.property("level") == "info"

    stuck = PruneReport(3, 1_000, 0, 3, ("/data/frames/2026-11-02/7.jpg: Permission denied",))
    bar.set_frames_usage(FrameStatus(FrameUsage(4_000, 1_500_000_000, None), policy, stuck))
    assert bar.frames.text() == "Frames: 1.5 GB of 2 GB · 30 days"
    assert bar.frames.property("level") == "warning"
    assert "could not be removed" in bar.frames.toolTip() and "Permission denied" in bar.frames.toolTip()

    bar.set_frames_usage(FrameStatus(FrameUsage(9_000, 2_100_000_000, None), policy, None))
    assert bar.frames.property("level") == "warning"  # over the limit
    assert bar.frames.minimumSizeHint().width() <= 80 < bar.frames.sizeHint().width()  # elided, never widens the window


def test_a_frames_folder_that_cannot_be_measured_is_not_shown_with_an_old_size(qtbot, tmp_path, monkeypatch):
    import engine.results.retention as retention

    bar = StationStatusBar()
    qtbot.addWidget(bar)
    store = retention.FrameStore(tmp_path / "frames")

    def no_listing(folder):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(retention, "_days", no_listing)
    bar.refresh_frames(store)
    qtbot.waitUntil(lambda: bar.frames.text() == "Frames: size unknown", timeout=5_000)
    assert "Permission denied" in bar.frames.toolTip() and bar.frames.property("level") == "warning"


def test_history_says_a_frame_was_removed_by_the_retention_policy(tmp_path, qtbot):
    log = ResultsLog(tmp_path / "results.sqlite3", retention=RetentionPolicy(max_bytes=60_000, max_age_days=30))
    inspection = Inspection(0.9, Thresholds(0.5), np.zeros((8, 8), np.float32), (Box(1, 2, 3, 4, 0.9),), model=MODEL)
    for i in range(12):
        image = np.random.default_rng(i).integers(0, 255, (96, 96, 3), dtype=np.uint8)  # about 9 kB as JPEG
        log.log_inspection(run_id="run-a", source="folder /line", item=f"part-{i:02d}.png", inspection=inspection, image=image)
    tab = HistoryTab(log)
    qtbot.addWidget(tab)
    try:
        with qtbot.waitSignal(tab.loaded, timeout=10_000):
            tab.refresh()
        rows = tab.model.rows  # newest first
        assert len(rows) == 12 and all(r.verdict is Verdict.ANOMALY for r in rows)
        oldest = len(rows) - 1
        assert not Path(rows[oldest].frame_path).exists() and Path(rows[0].frame_path).exists()

        placeholder = tab.viewer.findChild(QLabel, "ViewerPlaceholder")
        tab.table.selectRow(oldest)
        qtbot.waitUntil(lambda: "removed by the retention policy" in placeholder.text(), timeout=10_000)
        assert "older than 30 days or over 60 kB" in placeholder.text()
        assert "still in the log" in placeholder.text() and tab.viewer.image is None

        tab.table.selectRow(0)  # a frame still kept is shown as before
        qtbot.waitUntil(lambda: tab.viewer.image is not None, timeout=10_000)
        assert tab.viewer.image.shape == (96, 96, 3)
    finally:
        tab.shutdown()
        assert Worker.stop_all()
        log.close()


def test_the_retention_setting_round_trips_and_a_bad_value_falls_back_to_the_default(private_folders, qtbot):
    data, _ = private_folders
    settings = StationSettings(data)
    assert settings.retention_policy() == RetentionPolicy()  # nothing saved: 2 GB, 30 days
    settings.save_retention_policy(RetentionPolicy.from_units(max_gb=0.5, max_days=14))
    assert settings.wait()
    assert StationSettings(data).retention_policy() == RetentionPolicy(500_000_000, 14)

    (data / "station.ini").write_text('[frames]\nmax_gb=-3\nmax_days="a week"\n', encoding="utf-8")
    assert StationSettings(data).retention_policy() == RetentionPolicy()
