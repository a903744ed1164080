"""`review-archive ... --central URL`: the archive review's rows reach the central `results` table exactly once,
across a resumed run and reruns (in-process, no Ray; a real PostgreSQL)."""
from __future__ import annotations

import csv
import threading

import pytest

from engine.cli import main
from tests.engine.central_helpers import (
    admin,
    central_fixture,  # noqa: F401 - fixtures
    pg_fixture,  # noqa: F401
    plant_db_fixture,  # noqa: F401
    socket_without_server,
)
from tests.engine.test_archive import archive, tiny_model  # noqa: F401 - fixtures

pytest.importorskip("psycopg")

from engine.central.archive import archive_station_id  # noqa: E402

CPU = ["--device", "cpu", "--precision", "fp32"]


def _central(url: str) -> list[tuple]:
    with admin(url) as conn:
        return conn.execute(
            "SELECT station_id, item, verdict, p_anomaly, threshold, error, source FROM results ORDER BY station_id, item"
        ).fetchall()


def _csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_archive_rows_reach_the_central_table_once_across_a_resume_and_reruns(central, tiny_model, archive, tmp_path, capsys):  # noqa: F811
    from engine.archive.job import ArchiveProgress, archive_job, in_process
    from engine.inference.inspector import Inspector

    out = tmp_path / "review.csv"
    inspector = Inspector.from_file(tiny_model, device="cpu", precision="fp32")
    stop = threading.Event()
    for event in archive_job([archive], inspector, out, source=in_process(inspector, batch_size=2, stop=stop), part_rows=1, stop=stop):
        if isinstance(event, ArchiveProgress) and event.inspected == 4:
            stop.set()  # as if killed after 4 files: parts only, no output, nothing sent
    assert not out.exists()

    assert main(["review-archive", str(tiny_model), str(archive), "--out", str(out), "--central", central, *CPU]) == 1
    station = archive_station_id()
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"central: 11 results sent to {central.split('@')[1].split('?')[0]} (0 already there) as station {station}"
    )
    rows = _csv(out)
    assert [(r["path"], r["verdict"], float(r["p_anomaly"]) if r["p_anomaly"] else None) for r in sorted(rows, key=lambda r: r["path"])] == [
        (item, verdict, pytest.approx(p, abs=1e-6) if p is not None else None) for _, item, verdict, p, *_ in _central(central)
    ]  # fmt: skip
    central_rows = _central(central)
    assert {r[0] for r in central_rows} == {station} and station.startswith("archive:")
    assert all(abs(r[4] - inspector.thresholds.decision) < 1e-6 for r in central_rows if r[2] != "ERROR")
    assert [r[5] for r in central_rows if r[2] == "ERROR"][0].startswith("not a readable image")
    assert central_rows[0][6] == f"review-archive {archive}"

    # The same command again (nothing left to inspect), and the same review into another output: no row twice.
    assert main(["review-archive", str(tiny_model), str(archive), "--out", str(out), "--central", central, *CPU]) == 1
    assert main(["review-archive", str(tiny_model), str(archive / "line2"), "--out", str(tmp_path / "b.csv"), "--central", central, *CPU]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert "central: 0 results sent" in lines[-1] and "(1 already there)" in lines[-1]
    assert _central(central) == central_rows


def test_an_unreachable_central_store_keeps_the_output_and_says_how_to_send_it(tiny_model, archive, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "review.csv"
    with socket_without_server() as port:
        url = f"postgresql://station@127.0.0.1:{port}/plant?connect_timeout=2"
        assert main(["review-archive", str(tiny_model), str(archive / "line2"), "--out", str(out), "--central", url, *CPU]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("visinspect: error: cannot reach the central store 127.0.0.1:")
    assert err[-1].endswith(f"the results are in {out}: run the same command again to send them")
    assert len(_csv(out)) == 1


def test_a_password_in_the_url_is_refused_before_any_inspection(tiny_model, archive, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "review.csv"
    url = "postgresql://station:Secret-1@127.0.0.1/plant"
    assert main(["review-archive", str(tiny_model), str(archive), "--out", str(out), "--central", url, *CPU]) == 2
    err = capsys.readouterr().err
    assert "holds a password" in err and "Secret-1" not in err and not out.exists()
