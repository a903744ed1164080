"""Anomaly frames copied to a plant share as their rows are sent, against a real PostgreSQL: nothing overwritten,
nothing copied twice, resumable; the central row references the copy."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from engine.cli import main
from engine.results import ResultsLog
from engine.types import Verdict
from tests.engine.central_helpers import (
    add_rows,
    admin,
    central_fixture,  # noqa: F401 - fixtures
    central_rows,
    local_rows,
    make_log,
    pg_fixture,  # noqa: F401
    plant_db_fixture,  # noqa: F401
    wait_for,
)

psycopg = pytest.importorskip("psycopg")

from engine.central import CentralError, Forwarder, sync_log  # noqa: E402


def _anomaly(log: Path):
    with ResultsLog(log) as local:
        return next(r for r in local.query(limit=None) if r.verdict is Verdict.ANOMALY)


def _frames(url: str) -> list[str]:
    with admin(url) as conn:
        return [r[0] for r in conn.execute("SELECT frame_path FROM results WHERE frame_path IS NOT NULL")]


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_sync_copies_the_anomaly_frame_to_the_share_and_the_row_references_the_copy(central, tmp_path, capfd):
    log = make_log(tmp_path / "station" / "results.sqlite3", 5)
    share = tmp_path / "share"
    share.mkdir()
    assert main(["sync", central, "--log", str(log), "--station", "line1", "--share", str(share)]) == 0
    anomaly = _anomaly(log)
    copy = share / "line1" / datetime.fromtimestamp(anomaly.time).strftime("%Y-%m-%d") / f"{anomaly.id}.jpg"
    assert _files(share) == [copy]  # only the anomaly's frame, no temporary file left
    assert copy.read_bytes() == Path(anomaly.frame_path).read_bytes()
    assert _frames(central) == [str(copy)]

    # Again, as after a lost mark: the server skips the rows, the share keeps its one copy.
    with admin(central) as conn:
        conn.execute("DELETE FROM results WHERE local_id > 1")
    assert main(["sync", central, "--log", str(log), "--share", str(share)]) == 0
    assert _files(share) == [copy] and _frames(central) == [str(copy)]
    assert central_rows(central, "line1") == local_rows(log)
    assert "4 results sent" in capfd.readouterr().out.splitlines()[-1]


def test_a_different_file_on_the_share_is_never_overwritten_and_frames_url_names_the_copy(central, tmp_path):
    log = make_log(tmp_path / "station" / "results.sqlite3", 3)
    anomaly = _anomaly(log)
    day = tmp_path / "share" / "line1" / datetime.fromtimestamp(anomaly.time).strftime("%Y-%m-%d")
    day.mkdir(parents=True)
    (day / f"{anomaly.id}.jpg").write_bytes(b"someone else's file")
    sync_log(central, log, station="line1", share=tmp_path / "share", frames_url="smb://nas/frames")
    assert (day / f"{anomaly.id}.jpg").read_bytes() == b"someone else's file"
    assert (day / f"{anomaly.id}-1.jpg").read_bytes() == Path(anomaly.frame_path).read_bytes()
    assert _frames(central) == [f"smb://nas/frames/line1/{day.name}/{anomaly.id}-1.jpg"]


def test_a_share_that_refuses_the_copy_sends_nothing_and_the_next_sync_resumes(central, tmp_path, capfd):
    log = make_log(tmp_path / "station" / "results.sqlite3", 4)
    share = tmp_path / "share"
    share.mkdir()
    (share / "line1").write_text("a file where the station's folder goes")
    assert main(["sync", central, "--log", str(log), "--station", "line1", "--share", str(share), "--batch-size", "2"]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot copy frame" in err[0] and str(share) in err[0]
    assert central_rows(central, "line1") == []  # the anomaly is in the first batch: not sent without its copy

    (share / "line1").unlink()
    assert main(["sync", central, "--log", str(log), "--share", str(share)]) == 0
    assert central_rows(central, "line1") == local_rows(log)
    assert len(_files(share)) == 1 and _frames(central) == [str(_files(share)[0])]


def test_a_share_that_does_not_exist_is_refused_in_one_line(central, tmp_path, capfd):
    log = make_log(tmp_path / "results.sqlite3", 3)
    assert main(["sync", central, "--log", str(log), "--share", str(tmp_path / "not-mounted")]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not-mounted" in err[0] and "mounted" in err[0]
    with pytest.raises(CentralError, match="not-mounted"):
        Forwarder(central, log, share=tmp_path / "not-mounted")


def test_the_forwarder_copies_frames_to_the_share_as_it_sends_and_says_when_the_share_refuses(central, tmp_path):
    log = make_log(tmp_path / "station" / "results.sqlite3", 3)
    share = tmp_path / "share"
    share.mkdir()
    (share / "line2").write_text("a file where the station's folder goes")
    forwarder = Forwarder(central, log, station="line2", share=share, interval_s=0.05, backoff_s=0.05, max_backoff_s=0.1)
    forwarder.start()
    try:
        refused = wait_for(forwarder, lambda s: s.last_error is not None)
        assert refused.share_failed and "frames share" in refused.last_error and refused.sent == 0
        (share / "line2").unlink()
        status = wait_for(forwarder, lambda s: s.sent == 3)
        assert not status.share_failed and status.last_error is None
        add_rows(log, 2)
        forwarder.poke()
        wait_for(forwarder, lambda s: s.sent == 5 and s.pending == 0)
    finally:
        assert forwarder.stop()
    copies = _files(share)
    assert len(copies) == 1 and copies[0].parent.parent.name == "line2" and _frames(central) == [str(copies[0])]


def test_serve_refuses_a_share_without_a_central_store_in_one_line(tmp_path, capfd):
    assert main(["serve", "--model", str(tmp_path / "m.safetensors"), "--source", str(tmp_path), "--central-share", str(tmp_path)]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert err == ["visinspect: error: --central-share goes with --central URL"]
