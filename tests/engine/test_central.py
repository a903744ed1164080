"""Central results store: station logs reach a real PostgreSQL exactly once, across outages, crashes and reruns."""
from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from engine.cli import main
from engine.results import ResultsLog
from tests.engine.central_helpers import (
    MODEL,
    PASSWORD,
    add_rows,
    admin,
    central_fixture,  # noqa: F401 - fixtures
    central_rows,
    host_db,
    local_rows,
    make_log,
    pg_fixture,  # noqa: F401
    plant_db_fixture,  # noqa: F401
    socket_without_server,
    wait_until_an_insert_waits,
)

psycopg = pytest.importorskip("psycopg")

from engine.central import (  # noqa: E402
    CentralError,
    CentralUnreachable,
    sync_log,
)
from engine.central.outbox import MARK_PREFIX  # noqa: E402


def test_two_station_logs_reach_one_database_exactly_once_and_a_rerun_sends_nothing(central, tmp_path, capfd):
    a = make_log(tmp_path / "a" / "results.sqlite3", 1200)
    b = make_log(tmp_path / "b" / "results.sqlite3", 40)
    where = host_db(central)
    assert main(["sync", central, "--log", str(a), "--station", "line1-cam1"]) == 0
    assert main(["sync", central, "--log", str(b), "--station", "line2-cam1"]) == 0
    assert capfd.readouterr().out.splitlines() == [
        f"1200 results sent to {where} (0 already there)",
        f"40 results sent to {where} (0 already there)",
    ]
    assert central_rows(central, "line1-cam1") == local_rows(a)
    assert central_rows(central, "line2-cam1") == local_rows(b)

    # Run again: nothing new; new rows at a station go, and only they.
    assert main(["sync", central, "--log", str(a)]) == 0  # the station id stored in the log is used
    add_rows(b, 5)
    assert main(["sync", central, "--log", str(b)]) == 0
    assert capfd.readouterr().out.splitlines() == [
        f"0 results sent to {where} (0 already there)",
        f"5 results sent to {where} (0 already there)",
    ]
    with admin(central) as conn:
        assert conn.execute("SELECT count(*) FROM results").fetchone()[0] == 1245
    assert central_rows(central, "line2-cam1") == local_rows(b)


def test_a_row_arrives_with_its_verdict_time_boxes_and_frame(central, tmp_path):
    log = make_log(tmp_path / "results.sqlite3", 3)
    report = sync_log(central, log, station="line1")
    assert (report.sent, report.already, report.station_id) == (3, 0, "line1")
    with ResultsLog(log) as local:
        first = local.query(limit=None)[-1]  # the ANOMALY, oldest
    with admin(central) as conn:
        row = conn.execute(
            "SELECT time, verdict, p_anomaly, boxes, regions, model_hash, frame_path, synced_at FROM results "
            "WHERE station_id = 'line1' AND local_id = %s", (first.id,),
        ).fetchone()  # fmt: skip
        verdicts = [r[0] for r in conn.execute("SELECT verdict FROM results ORDER BY local_id")]
        version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    when, verdict, p, boxes, regions, model_hash, frame, synced = row
    # PostgreSQL rounds the float seconds to the microsecond in binary, Python in decimal: they may differ by one
    assert abs(when - datetime.fromtimestamp(first.time, timezone.utc)) <= timedelta(microseconds=1)
    assert (verdict, p, model_hash) == ("ANOMALY", pytest.approx(0.93), MODEL.sha256)
    assert boxes == [[1, 2, 3, 4, 0.9]] and regions == [[1, 2, 3, 4, 0.9]]
    assert frame == first.frame_path and Path(frame).is_file()
    assert synced is not None and verdicts == ["ANOMALY", "GOOD", "ERROR"] and version == 1


def test_frames_url_references_the_frame_on_a_share(central, tmp_path):
    log = make_log(tmp_path / "results.sqlite3", 3)
    sync_log(central, log, station="s1", frames_url="smb://nas/line1/")
    with admin(central) as conn:
        frames = [r[0] for r in conn.execute("SELECT frame_path FROM results WHERE frame_path IS NOT NULL")]
    assert len(frames) == 1 and frames[0].startswith("smb://nas/line1/frames/") and frames[0].endswith(".jpg")


def test_server_stopped_between_batches_then_restarted_every_row_once(pg, central, tmp_path):
    log = make_log(tmp_path / "results.sqlite3", 1000)
    batches = []

    def stop_after_two(batch):
        batches.append(batch)
        if len(batches) == 2:
            pg.stop("fast")

    with pytest.raises(CentralUnreachable) as lost:
        sync_log(central, log, station="s1", batch_size=100, on_batch=stop_after_two)
    assert "\n" not in str(lost.value) and PASSWORD not in str(lost.value)
    pg.start()
    report = sync_log(central, log, station="s1", batch_size=100)
    assert (report.sent, report.already) == (800, 0)  # the mark says where the server stopped
    assert central_rows(central, "s1") == local_rows(log)


def test_server_crash_in_the_middle_of_a_batch_then_restarted_every_row_once(pg, central, tmp_path):
    log = make_log(tmp_path / "results.sqlite3", 600)
    sync_log(central, log, station="s1")  # creates the table
    add_rows(log, 900)
    blocker = admin(central)
    blocker.execute("BEGIN")
    blocker.execute("LOCK TABLE results IN EXCLUSIVE MODE")  # the next insert waits inside its transaction

    def crash_while_an_insert_waits():
        wait_until_an_insert_waits(central)
        pg.stop("immediate")

    crasher = threading.Thread(target=crash_while_an_insert_waits)
    crasher.start()
    try:
        with pytest.raises(CentralUnreachable):
            sync_log(central, log, station="s1", batch_size=200)
    finally:
        crasher.join(30)
        blocker.close()
    assert not pg.running
    pg.start()  # crash recovery: the batch that was in flight was never committed
    report = sync_log(central, log, station="s1", batch_size=200)
    assert (report.sent, report.already) == (900, 0)
    assert central_rows(central, "s1") == local_rows(log)


def test_rows_committed_before_the_mark_was_saved_are_not_stored_twice(central, tmp_path):
    log = make_log(tmp_path / "results.sqlite3", 250)
    sync_log(central, log, station="s1", batch_size=100)
    with sqlite3.connect(log) as conn:  # as if the station died between the server's commit and the local mark
        conn.execute("UPDATE meta SET value = '100' WHERE key LIKE ?", (MARK_PREFIX + "%",))
    conn.close()
    report = sync_log(central, log, station="s1", batch_size=100)
    assert (report.sent, report.already) == (0, 150)
    assert central_rows(central, "s1") == local_rows(log)


def test_a_server_restored_from_an_older_backup_gets_the_missing_rows_again(central, tmp_path):
    log = make_log(tmp_path / "results.sqlite3", 300)
    sync_log(central, log, station="s1")
    with admin(central) as conn:
        conn.execute("DELETE FROM results WHERE local_id > 120")
    report = sync_log(central, log, station="s1")
    assert (report.sent, report.already) == (180, 0)
    assert central_rows(central, "s1") == local_rows(log)


def test_the_station_id_is_kept_and_cannot_change_once_rows_were_sent(central, tmp_path, capfd):
    log = make_log(tmp_path / "results.sqlite3", 5)
    first = sync_log(central, log).station_id  # generated: host name and a random suffix, stored in the log
    assert sync_log(central, log).station_id == first
    assert main(["sync", central, "--log", str(log), "--station", "other"]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and f"already sent as station {first!r}" in err


def test_a_newer_central_schema_is_refused_in_one_line(central, tmp_path):
    log = make_log(tmp_path / "results.sqlite3", 3)
    sync_log(central, log, station="s1")
    with admin(central) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (99)")
    with pytest.raises(CentralError, match="schema version 99, newer than the 1"):
        sync_log(central, log, station="s1")


def test_unreachable_server_is_one_line_and_a_nonzero_exit(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    with socket_without_server() as port:
        log = make_log(tmp_path / "results.sqlite3", 3)
        code = main(["sync", f"postgresql://station@127.0.0.1:{port}/plant", "--log", str(log)])
    out, err = capfd.readouterr()
    assert code != 0 and out == ""
    assert err.startswith(f"visinspect: error: cannot reach the central store 127.0.0.1:{port}/plant: ")
    assert err.count("\n") == 1 and "Traceback" not in err and PASSWORD not in err


def test_a_password_in_the_url_is_refused_and_never_shown(tmp_path, capfd):
    log = make_log(tmp_path / "results.sqlite3", 3)
    assert main(["sync", f"postgresql://station:{PASSWORD}@127.0.0.1:1/plant", "--log", str(log)]) == 2
    err = capfd.readouterr().err
    assert "holds a password" in err and PASSWORD not in err and err.count("\n") == 1


def test_wrong_password_fails_in_one_line_and_a_pgpass_file_logs_in(pg, central, tmp_path, capfd, monkeypatch):
    log = make_log(tmp_path / "results.sqlite3", 3)
    monkeypatch.setenv("PGPASSWORD", PASSWORD + "-wrong")
    assert main(["sync", central, "--log", str(log)]) == 2
    err = capfd.readouterr().err
    assert "password authentication failed" in err and err.count("\n") == 1 and PASSWORD not in err

    monkeypatch.delenv("PGPASSWORD")
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{pg.port}:*:*:{PASSWORD}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    assert main(["sync", central, "--log", str(log)]) == 0
    out, err = capfd.readouterr()
    assert out.startswith("3 results sent to ") and PASSWORD not in out + err


def test_sslmode_require_against_a_server_without_tls_fails_in_one_line(central, tmp_path, capfd):
    log = make_log(tmp_path / "results.sqlite3", 3)
    assert main(["sync", central + "&sslmode=require", "--log", str(log)]) == 2
    err = capfd.readouterr().err
    assert "server does not support SSL, but SSL was required" in err and err.count("\n") == 1


def test_progress_belongs_to_the_store_not_to_its_address(pg, central, tmp_path, capfd):
    log = make_log(tmp_path / "results.sqlite3", 30)
    schema = central.rsplit("%3D", 1)[1]
    assert main(["sync", central, "--log", str(log)]) == 0
    assert main(["sync", central.replace("127.0.0.1", "localhost"), "--log", str(log)]) == 0  # same store, other name
    with admin(central) as conn:  # a new, empty store where the old one was
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    assert main(["sync", central, "--log", str(log)]) == 0
    where = host_db(central)
    assert capfd.readouterr().out.splitlines() == [
        f"30 results sent to {where} (0 already there)",
        f"0 results sent to {where.replace('127.0.0.1', 'localhost')} (0 already there)",
        f"30 results sent to {where} (0 already there)",
    ]
    assert central_rows(central, sync_log(central, log).station_id) == local_rows(log)


def test_a_station_role_that_may_only_insert_and_read_sends_once_the_owner_created_the_schema(central, tmp_path, capfd):
    schema = central.rsplit("%3D", 1)[1]
    station_url = central.replace("plant_admin@", f"station_{schema}@")
    with admin(central) as conn:
        conn.execute(  # as docs/scale-out.md says
            psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                psycopg.sql.Identifier(f"station_{schema}"), psycopg.sql.Literal(PASSWORD)
            )
        )
        conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO station_{schema}")
    log = make_log(tmp_path / "results.sqlite3", 20)
    assert main(["sync", station_url, "--log", str(log)]) == 2  # an empty store: it may not create the tables
    err = capfd.readouterr().err
    assert f"refused: permission denied for schema {schema}" in err and err.count("\n") == 1

    assert sync_log(central, make_log(tmp_path / "owner.sqlite3", 3)).sent == 3  # the owner creates the schema
    with admin(central) as conn:
        conn.execute(f"GRANT SELECT, INSERT ON results TO station_{schema}")
        conn.execute(f"GRANT SELECT ON schema_version, store_identity TO station_{schema}")
    assert main(["sync", station_url, "--log", str(log)]) == 0
    assert main(["sync", station_url, "--log", str(log)]) == 0
    assert [line.split(" results")[0] for line in capfd.readouterr().out.splitlines()] == ["20", "0"]
    with admin(central) as conn:
        conn.execute(f"DROP OWNED BY station_{schema}")
        conn.execute(f"DROP ROLE station_{schema}")


def test_a_row_postgresql_would_refuse_as_it_is_still_arrives_and_blocks_nothing(central, tmp_path):
    log = make_log(tmp_path / "results.sqlite3", 3)
    with sqlite3.connect(log) as conn:  # NUL in text and NaN in JSON: SQLite and Python accept both, PostgreSQL neither
        conn.execute("UPDATE results SET error = ?, regions = ? WHERE id = 3", ("bad\x00byte", "[[1, 2, 3, 4, NaN, Infinity]]"))
    conn.close()
    add_rows(log, 2)
    assert sync_log(central, log, station="s1", batch_size=2).sent == 5
    with admin(central) as conn:
        error, regions = conn.execute("SELECT error, regions FROM results WHERE local_id = 3").fetchone()
    assert error == "bad\\x00byte" and regions == [[1, 2, 3, 4, None, None]]
    assert central_rows(central, "s1") == local_rows(log)
