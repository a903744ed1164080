"""The station forwards its results to the plant PostgreSQL named in station.ini, and says where that stands."""

from __future__ import annotations

import pytest

from tests.engine.central_helpers import admin, central_fixture, pg_fixture, plant_db_fixture  # noqa: F401 - fixtures

pytest.importorskip("psycopg")


def test_results_of_a_live_run_reach_the_plant_store(central, make_window, model_file, private_folders, line_folder,  # noqa: F811
                                                     run_to_end, qtbot):  # fmt: skip
    data, _ = private_folders
    (data / "station.ini").write_text(f"[central]\nurl={central}\n", encoding="utf-8")
    w = make_window()
    assert w.central.forwarder is not None and w.central.field.isVisibleTo(w)
    with qtbot.waitSignal(w.station.model_loaded, timeout=30_000):
        w.open_model(model_file)
    w.source_panel.set_source(str(line_folder))
    assert run_to_end(w) == "ended"

    def central_rows() -> int:
        with admin(central) as conn:
            if not conn.execute("SELECT to_regclass('results') IS NOT NULL").fetchone()[0]:
                return 0
            return conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    qtbot.waitUntil(lambda: central_rows() == 6, timeout=30_000)
    qtbot.waitUntil(lambda: w.central.field.text() == "Plant: up to date", timeout=10_000)


def test_without_a_central_url_nothing_is_forwarded_or_shown(window):
    assert window.central.forwarder is None and not window.central.field.isVisibleTo(window)
