"""The Review tab loses no result: the station killed with SIGKILL mid-review keeps every committed row,
and reviewing the same folder again resumes without inspecting finished files twice."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from engine.inference import Inspector
from engine.jobs.review import review_run_id
from engine.results import ResultFilter, ResultsLog
from engine.types import Verdict
from tests.conftest import intact_rows, sigkill_after_rows
from visinspect_gui.widgets.review_tab import ReviewTab

N_FILES = 400
KILL_AFTER_ROWS = 16


@pytest.fixture(scope="module")
def big_folder(synthetic_dataset, tmp_path_factory) -> Path:
    """N_FILES copies of the synthetic test images, long enough a review to kill it halfway."""
    sources = sorted((synthetic_dataset / "test").rglob("*.png"))
    out = tmp_path_factory.mktemp("review-crash") / "archive 2026"
    out.mkdir()
    for i in range(N_FILES):
        (out / f"part{i:04d}.png").write_bytes(sources[i % len(sources)].read_bytes())
    return out


def _review(tab: ReviewTab, folder: Path, qtbot) -> str:
    with qtbot.waitSignal(tab.review_finished, timeout=300_000) as done:
        assert tab.start(str(folder))
    return done.args[0]


def test_station_killed_mid_review_resumes_without_repeating_files(model_file, big_folder, tmp_path, qtbot):
    data, weights = tmp_path / "data", tmp_path / "weights"
    data.mkdir()
    weights.mkdir()
    db = data / "results.sqlite3"
    env = {
        **os.environ, "QT_QPA_PLATFORM": "offscreen", "VISINSPECT_DATA": str(data), "VISINSPECT_WEIGHTS": str(weights),
        "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore",
    }  # fmt: skip
    command = [sys.executable, "-m", "visinspect_gui.app", "--model", str(model_file), "--review", str(big_folder),
               "--device", "cpu", "--no-demo"]  # fmt: skip
    seen = sigkill_after_rows(command, env, db, KILL_AFTER_ROWS, what="the station")
    assert len(seen) < N_FILES, "the review finished before the kill: make the folder bigger"
    after_kill = intact_rows(db)
    assert set(seen) <= set(after_kill)
    assert KILL_AFTER_ROWS <= len(after_kill) < N_FILES
    assert all(verdict != Verdict.ERROR for _, _, verdict in after_kill)
    earlier = {item: verdict for _, item, verdict in after_kill}

    inspector = Inspector.from_file(model_file, device="cpu")
    results = ResultsLog(db)
    tab = ReviewTab(results)
    qtbot.addWidget(tab)
    tab.set_inspector(inspector)
    try:
        assert _review(tab, big_folder, qtbot) == "done"
        rows = tab.model.rows
        assert [r.path for r in rows] == sorted(str(p) for p in big_folder.iterdir())  # folder order, resumed or not
        shown = {r.path: r.verdict for r in rows}
        assert all(shown[item] == verdict for item, verdict in earlier.items())  # earlier verdicts shown as logged
        label = tab.progress_label.text()
        assert label.startswith(f"Done: {N_FILES:,} files") and f"({len(earlier):,} from the earlier run)" in label
        assert tab.run_id == review_run_id(inspector.ref, [str(big_folder)], recursive=True)
        results.flush()
    finally:
        tab.shutdown()
        results.close()
    final = intact_rows(db)
    per_item = Counter(item for _, item, _ in final)
    assert len(final) == N_FILES and set(per_item.values()) == {1}  # nothing inspected twice


def _shown(row):
    """What the table shows of a row: verdict, p(anomaly) and boxes to the log's stored precision."""
    return row.verdict, round(row.p_anomaly, 6), tuple((b.x0, b.y0, b.x1, b.y1, round(b.score, 4)) for b in row.boxes)


def test_review_again_shows_logged_verdicts_and_reinspects_only_changed_files(model_file, line_folder, tmp_path, qtbot):
    folder = tmp_path / "today"
    folder.mkdir()
    for p in sorted(line_folder.iterdir()):
        (folder / p.name).write_bytes(p.read_bytes())
    inspector = Inspector.from_file(model_file, device="cpu")
    with ResultsLog(tmp_path / "results.sqlite3") as results:
        tab = ReviewTab(results)
        qtbot.addWidget(tab)
        tab.set_inspector(inspector)
        assert _review(tab, folder, qtbot) == "done"
        first = {r.path: _shown(r) for r in tab.model.rows}
        assert results.count(ResultFilter(run_id=tab.run_id)) == 6

        assert _review(tab, folder, qtbot) == "done"  # nothing changed: every verdict comes from the log
        assert {r.path: _shown(r) for r in tab.model.rows} == first
        assert "(6 from the earlier run)" in tab.progress_label.text()
        assert results.count(ResultFilter(run_id=tab.run_id)) == 6

        changed = folder / "part-01.png"
        changed.write_bytes((folder / "part-02.png").read_bytes())  # a new part under an old name
        future = time.time() + 5
        os.utime(changed, (future, future))
        assert _review(tab, folder, qtbot) == "done"
        assert "(5 from the earlier run)" in tab.progress_label.text()
        now = {r.path: _shown(r) for r in tab.model.rows}
        assert now[str(changed)][:2] == first[str(folder / "part-02.png")][:2]  # judged anew, not the old verdict
        assert first[str(changed)][0] != first[str(folder / "part-02.png")][0]
        assert results.count(ResultFilter(run_id=tab.run_id)) == 7

        tab.resume_box.setChecked(False)  # the operator asks for a fresh review
        assert _review(tab, folder, qtbot) == "done"
        assert "earlier run" not in tab.progress_label.text()
        assert results.count(ResultFilter(run_id=tab.run_id)) == 13
        tab.shutdown()


def test_a_resumed_review_shows_every_row_in_folder_order(model_file, line_folder, tmp_path, qtbot):
    folder = tmp_path / "shift"
    folder.mkdir()
    parts = sorted(line_folder.iterdir())
    for p in parts[1::2]:  # the first run saw every other part...
        (folder / p.name).write_bytes(p.read_bytes())
    inspector = Inspector.from_file(model_file, device="cpu")
    with ResultsLog(tmp_path / "results.sqlite3") as results:
        tab = ReviewTab(results)
        qtbot.addWidget(tab)
        tab.set_inspector(inspector)
        assert _review(tab, folder, qtbot) == "done"
        for p in parts[0::2]:  # ...the rest arrived later, with names that sort between them
            (folder / p.name).write_bytes(p.read_bytes())
        assert _review(tab, folder, qtbot) == "done"
        assert f"({len(parts[1::2])} from the earlier run)" in tab.progress_label.text()
        expected = [str(folder / p.name) for p in parts]
        assert [r.path for r in tab.model.rows] == expected  # reused and new rows interleaved, as in the folder
        shown = [tab.proxy.index(r, 0).data() for r in range(tab.proxy.rowCount())]
        assert shown == [p.name for p in parts]
        tab.shutdown()
