"""The continuous forwarder (station and serve) and the plant view, against a real PostgreSQL."""
from __future__ import annotations

import logging

import pytest

from engine.types import Verdict
from tests.engine.central_helpers import (
    PASSWORD,
    add_rows,
    admin,
    central_fixture,  # noqa: F401 - fixtures
    central_rows,
    local_rows,
    make_log,
    pg_fixture,  # noqa: F401
    plant_db_fixture,  # noqa: F401
    wait_for,
    wait_until_an_insert_waits,
)

psycopg = pytest.importorskip("psycopg")

from engine.central import CentralError, Forwarder, PlantFilter, PlantReader, sync_log  # noqa: E402
from tests.engine.test_serve import line  # noqa: E402, F401 - the fixture: a tiny model, three parts and a recipe


def test_forwarder_keeps_results_through_an_outage_and_sends_them_on_recovery(pg, central, tmp_path, caplog):
    log = make_log(tmp_path / "results.sqlite3", 10)
    pg.stop("fast")
    forwarder = Forwarder(central, log, station="s1", interval_s=0.05, backoff_s=0.05, max_backoff_s=0.2, batch_size=4)
    caplog.set_level(logging.INFO, logger="engine.central.forwarder")
    forwarder.start()
    try:
        status = wait_for(forwarder, lambda s: s.last_error is not None and s.pending == 10)
        assert not status.connected and PASSWORD not in status.last_error
        add_rows(log, 7)  # the station goes on inspecting meanwhile
        wait_for(forwarder, lambda s: s.pending == 17)
        pg.start()
        status = wait_for(forwarder, lambda s: s.connected and s.pending == 0)
        assert (status.sent, status.last_error) == (17, None)
        add_rows(log, 3)
        forwarder.poke()
        assert wait_for(forwarder, lambda s: s.pending == 0 and s.sent == 20).connected
    finally:
        assert forwarder.stop()
    assert not forwarder.status().running
    assert central_rows(central, "s1") == local_rows(log)
    lines = [r.getMessage() for r in caplog.records]
    assert len([m for m in lines if "results stay in the local log" in m]) == 1  # one line per outage
    assert len([m for m in lines if "reachable again" in m]) == 1
    assert all(PASSWORD not in m for m in lines)


def test_a_password_from_the_station_settings_logs_in_and_is_never_shown(central, tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("PGPASSWORD")
    log = make_log(tmp_path / "results.sqlite3", 5)
    wrong = Forwarder(central, log, station="s1", password=PASSWORD + "-old", backoff_s=0.05, max_backoff_s=0.1)
    wrong.start()
    try:
        status = wait_for(wrong, lambda s: s.last_error is not None)
    finally:
        assert wrong.stop()
    assert "password authentication failed" in status.last_error and PASSWORD not in repr(status)
    assert all(PASSWORD not in r.getMessage() for r in caplog.records)

    right = Forwarder(central, log, station="s1", password=PASSWORD, interval_s=0.05)
    right.start()
    try:
        assert wait_for(right, lambda s: s.sent == 5 and s.pending == 0).connected
    finally:
        assert right.stop()


def test_a_forwarder_stops_promptly_while_the_server_holds_its_insert(central, tmp_path, caplog):
    log = make_log(tmp_path / "results.sqlite3", 5)
    sync_log(central, log, station="s1")
    add_rows(log, 5)
    blocker = admin(central)
    blocker.execute("BEGIN")
    blocker.execute("LOCK TABLE results IN EXCLUSIVE MODE")  # the forwarder's next insert waits on the server
    forwarder = Forwarder(central, log, station="s1", interval_s=0.05)
    try:
        forwarder.start()
        wait_until_an_insert_waits(central)
        assert forwarder.stop(timeout=10)  # the waiting insert is cancelled (without that: 60 s statement timeout)
    finally:
        forwarder.stop()
        blocker.close()
    assert not any("results stay in the local log" in r.getMessage() for r in caplog.records)  # a stop, not an outage
    assert len(central_rows(central, "s1")) == 5  # the cancelled batch was not committed ...
    assert sync_log(central, log, station="s1").sent == 5  # ... and goes next time


def test_the_plant_view_lists_every_station_and_filters_by_station_recipe_and_verdict(central, tmp_path):
    with pytest.raises(CentralError, match="holds no results yet"):
        PlantReader(central)
    a = make_log(tmp_path / "a" / "results.sqlite3", 6)
    b = make_log(tmp_path / "b" / "results.sqlite3", 4)
    add_rows(b, 2, start=4e9)  # station b's newest rows are the plant's newest
    sync_log(central, a, station="line1")
    sync_log(central, b, station="line2")
    with admin(central) as conn:  # until the local log records recipes (issue 12), set some centrally
        conn.execute("UPDATE results SET recipe = 'bottle' WHERE station_id = 'line1' AND local_id <= 3")
    with PlantReader(central) as plant:
        assert plant.stations() == ["line2", "line1"] and plant.recipes() == ["bottle"]
        assert plant.count() == 12
        newest = plant.query(limit=2)
        assert [(r.station_id, r.result.id) for r in newest] == [("line2", 6), ("line2", 5)]
        bottle = plant.query(PlantFilter(station="line1", recipe="bottle"))
        assert sorted(r.result.item for r in bottle) == ["part-1", "part-2", "part-3"]
        (bad,) = plant.query(PlantFilter(station="line1", verdict="ANOMALY"))
        assert bad.result.boxes[0].as_list()[:4] == [1, 2, 3, 4] and bad.result.verdict is Verdict.ANOMALY
        assert plant.count(PlantFilter(verdict=Verdict.ERROR)) == 2
        assert plant.count(PlantFilter(since=4e9)) == 2


def test_serve_with_central_forwards_what_it_logs_and_stops_cleanly(central, line, tmp_path):  # noqa: F811 - the fixture
    """`visinspect serve --central URL --central-share DIR`: the line's results reach the plant store while it runs
    (password from env), their anomaly frames copied to the share."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    db = tmp_path / "results.sqlite3"
    recipes, share = tmp_path / "recipes", tmp_path / "share"
    recipes.mkdir()
    share.mkdir()
    recipe = json.loads((line / "recipes" / "bolt-a.json").read_text()) | {
        "model": str(line / "tiny.safetensors"), "decision_threshold": 1e-6}  # every part an ANOMALY, its frame saved
    (recipes / "bolt-a.json").write_text(json.dumps(recipe))
    command = [sys.executable, "-m", "engine.cli", "serve", "--recipe", "bolt-a", "--recipes-dir", str(recipes),
               "--loop", "--log", str(db), "--station", "st-9", "--central", central, "--central-share", str(share)]  # fmt: skip
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    try:
        deadline = time.monotonic() + 240
        while True:
            with admin(central) as conn:
                exists = conn.execute("SELECT to_regclass('results') IS NOT NULL").fetchone()[0]
                sent = conn.execute("SELECT COUNT(*) FROM results WHERE station_id = 'st-9'").fetchone()[0] if exists else 0
            if sent >= 3:
                break
            assert proc.poll() is None, f"serve ended early: {proc.stderr.read()}"
            assert time.monotonic() < deadline, "nothing reached the central store"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "forwarding results to" in err and PASSWORD not in err
    with admin(central) as conn:
        frames = [r[0] for r in conn.execute("SELECT frame_path FROM results WHERE station_id = 'st-9' AND verdict = 'ANOMALY'")]
    assert len(frames) >= 3 and all(f.startswith(str(share / "st-9")) and os.path.isfile(f) for f in frames)
