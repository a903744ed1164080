"""History shows the plant: with a central store set, "This station" or "Plant", the plant's rows from a real
PostgreSQL filtered by station and recipe, paged, and one line when the server cannot be reached."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from PySide6.QtCore import Qt

from tests.engine.central_helpers import (
    admin,
    central_fixture,  # noqa: F401 - fixtures
    make_log,
    pg_fixture,  # noqa: F401
    plant_db_fixture,  # noqa: F401
    socket_without_server,
)

pytest.importorskip("psycopg")

from engine.central import sync_log  # noqa: E402
from engine.types import Verdict  # noqa: E402


def _history(w, qtbot):
    with qtbot.waitSignal(w.history.loaded, timeout=10_000):
        w.tabs.setCurrentWidget(w.history)
    return w.history


def _choose(history, combo, data, qtbot) -> None:
    with qtbot.waitSignal(history.loaded, timeout=15_000):
        combo.setCurrentIndex(combo.findData(data))


def _shown(history, col: int) -> list[str]:
    model = history.plant_model
    return [model.data(model.index(r, col), Qt.ItemDataRole.DisplayRole) for r in range(model.rowCount())]


def test_history_lists_the_plant_filtered_by_station_and_recipe(central, make_window, private_folders, tmp_path, qtbot):  # noqa: F811
    data, _ = private_folders
    sync_log(central, make_log(tmp_path / "a" / "results.sqlite3", 1200), station="line1")
    sync_log(central, make_log(tmp_path / "b" / "results.sqlite3", 5), station="line2")
    with admin(central) as conn:
        conn.execute("UPDATE results SET recipe = 'bottle' WHERE station_id = 'line1' AND local_id <= 3")
        conn.execute("UPDATE results SET verdict = 'FUTURE_VERDICT' WHERE station_id = 'line2' AND local_id = 2")
    make_log(data / "results.sqlite3", 4)  # this station's own log (also forwarded, under its own id)
    share = tmp_path / "share"
    share.mkdir()
    (data / "station.ini").write_text(f"[central]\nurl={central}\nshare={share}\n", encoding="utf-8")
    w = make_window()
    w.resize(1280, 720)
    history = _history(w, qtbot)
    assert history.model.rowCount() == 4 and history.filter_bar.scope_combo.isVisibleTo(w)
    qtbot.waitUntil(lambda: w.central.field.text() == "Plant: up to date", timeout=15_000)
    (copy,) = [p for p in share.rglob("*") if p.is_file()]  # this station's anomaly frame, copied to the share
    with admin(central) as conn:
        frames = conn.execute("SELECT frame_path FROM results WHERE station_id NOT LIKE 'line%' AND frame_path IS NOT NULL")
        assert [r[0] for r in frames] == [str(copy)]

    _choose(history, history.filter_bar.scope_combo, True, qtbot)
    assert history.tables.currentWidget() is history.plant_table and history.plant_table.isVisibleTo(w)
    assert not history.source_combo.isVisibleTo(w) and history.filter_bar.station_combo.isVisibleTo(w)
    assert history.plant_model.rowCount() == 500 and history.plant_model.total == 1209
    assert history.summary.text().startswith("Plant rows 1–500 of 1,209 listed from ")
    with qtbot.waitSignal(history.loaded, timeout=15_000):
        history.plant_model.fetchMore()  # as when the table is scrolled to its end
    assert history.plant_model.rowCount() == 1000
    assert "FUTURE_VERDICT" in _shown(history, 2)  # a verdict this version does not know is shown as stored
    assert not history.export_button.isEnabled()  # the CSV export writes this station's log only
    hint = w.minimumSizeHint()
    assert hint.width() <= 1280 and hint.height() <= 720 and (w.width(), w.height()) == (1280, 720)

    qtbot.waitUntil(lambda: history.filter_bar.station_combo.count() == 4, timeout=15_000)  # all, line1, line2, this one
    _choose(history, history.filter_bar.station_combo, "line2", qtbot)
    assert set(_shown(history, 1)) == {"line2"} and history.plant_model.rowCount() == 5
    _choose(history, history.filter_bar.station_combo, "line1", qtbot)
    qtbot.waitUntil(lambda: history.filter_bar.recipe_combo.count() == 2, timeout=15_000)
    _choose(history, history.filter_bar.recipe_combo, "bottle", qtbot)
    assert sorted(_shown(history, 5)) == ["part-1", "part-2", "part-3"] and set(_shown(history, 4)) == {"bottle"}
    _choose(history, history.verdict_combo, Verdict.ANOMALY, qtbot)
    assert _shown(history, 2) == ["ANOMALY · 1"] and history.summary.text().startswith("All 1 matching plant result")

    # Selecting it shows the frame the row references (the station's own path here: no share set).
    history.plant_table.selectRow(0)
    qtbot.waitUntil(lambda: history.viewer.image is not None, timeout=10_000)
    assert history.detail.text().startswith("line1  ·  bottle\n")

    _choose(history, history.filter_bar.scope_combo, False, qtbot)
    assert history.tables.currentWidget() is history.table and history.model.rowCount() == 1  # local ANOMALY rows
    assert history.export_button.isEnabled()

    # Plant and back at once: the plant page still on its way when it arrives does not replace the local summary.
    history.filter_bar.scope_combo.setCurrentIndex(1)
    with qtbot.waitSignal(history.loaded, timeout=15_000):
        history.filter_bar.scope_combo.setCurrentIndex(0)
    qtbot.waitUntil(lambda: not history.plant_model.loading, timeout=15_000)
    assert history.summary.text().startswith("All 1 matching result(s) listed")


def test_an_unreachable_plant_store_is_one_line_and_this_stations_results_still_list(make_window, private_folders, qtbot, caplog):
    data, _ = private_folders
    make_log(data / "results.sqlite3", 5)
    with socket_without_server() as port:
        url = f"postgresql://station@127.0.0.1:{port}/plant?connect_timeout=2"
        (data / "station.ini").write_text(f"[central]\nurl={url}\n", encoding="utf-8")
        w = make_window()
        history = _history(w, qtbot)
        with caplog.at_level(logging.WARNING), qtbot.waitSignal(history.plant_model.failed, timeout=15_000):
            history.filter_bar.scope_combo.setCurrentIndex(1)
    text = history.summary.text()
    assert text.startswith(f"The plant results could not be read: cannot reach the central store 127.0.0.1:{port}/plant")
    assert "Traceback" not in caplog.text and "\n" not in text and history.plant_model.rowCount() == 0
    _choose(history, history.filter_bar.scope_combo, False, qtbot)
    assert history.model.rowCount() == 5 and history.summary.text().startswith("All 5 matching result")


def test_without_a_central_store_history_offers_only_this_station(window, qtbot):
    history = _history(window, qtbot)
    assert not history.filter_bar.scope_combo.isVisibleTo(window) and history.plant_model is None
    assert not history.filter_bar.is_plant()



def test_a_share_that_refuses_frames_is_named_in_the_status_bar_not_the_server(central, make_window, private_folders, tmp_path, qtbot):  # noqa: F811
    data, _ = private_folders
    log = make_log(data / "results.sqlite3", 3)
    with sqlite3.connect(log) as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('station_id', 'cam9')")
    conn.close()
    share = tmp_path / "share"
    share.mkdir()
    (share / "cam9").write_text("a file where the station's folder goes")
    (data / "station.ini").write_text(f"[central]\nurl={central}\nshare={share}\n", encoding="utf-8")
    w = make_window()
    qtbot.waitUntil(lambda: w.central.field.text() == "Plant: frames share unavailable", timeout=15_000)
    assert str(share) in w.central.field.toolTip()
    (share / "cam9").unlink()
    qtbot.waitUntil(lambda: w.central.field.text() == "Plant: up to date", timeout=30_000)
