"""The station gives the command line's answer: the same run key, model identity, precision and ordered settings (issue 10)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from engine.inference import Inspector
from engine.jobs.review import review_run_id
from engine.modelfile import file_sha256
from engine.results import ResultFilter, ResultsLog
from engine.thresholds import NOTHING_REJECTED
from engine.types import Verdict
from visinspect_gui.widgets.review_tab import ReviewTab


def _review(tab: ReviewTab, folder, qtbot) -> str:
    with qtbot.waitSignal(tab.review_finished, timeout=120_000) as done:
        assert tab.start(str(folder))
    return done.args[0]


def test_the_review_tab_resumes_a_predict_run_and_a_review_at_another_threshold(model_file, line_folder, tmp_path, qtbot):
    folder = tmp_path / "batch"
    shutil.copytree(line_folder, folder)
    db = tmp_path / "results.sqlite3"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cli = subprocess.run([sys.executable, "-m", "engine.cli", "predict", str(model_file), str(folder), "--log", str(db),
                          "--device", "cpu", "--csv", str(tmp_path / "cli.csv")], capture_output=True, text=True, env=env,
                         timeout=300)  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    inspector = Inspector.from_file(model_file, device="cpu")
    with ResultsLog(db) as results:
        tab = ReviewTab(results)
        qtbot.addWidget(tab)
        tab.set_inspector(inspector)
        assert _review(tab, folder, qtbot) == "done"
        assert tab.run_id == review_run_id(inspector.ref, [str(folder)]) and "(6 from the earlier run)" in tab.progress_label.text()
        assert results.count() == 6  # the CLI's results were the Review tab's: one run key, nothing inspected twice
        as_cli = {r.path: r.verdict for r in tab.model.rows}

        inspector.thresholds = inspector.thresholds.with_decision(NOTHING_REJECTED)  # a review at a threshold nothing passes
        assert _review(tab, folder, qtbot) == "done"
        assert "(6 from the earlier run)" in tab.progress_label.text()  # was: a new run, every file inspected again
        assert {r.verdict for r in tab.model.rows} == {Verdict.GOOD}  # judged at it from the logged p(anomaly)
        assert results.count() == 6
        inspector.thresholds = inspector.thresholds.with_decision(inspector.meta.threshold)
        assert _review(tab, folder, qtbot) == "done"
        assert {r.path: r.verdict for r in tab.model.rows} == as_cli
        tab.shutdown()


def test_the_station_logs_the_full_sha256_and_absolute_model_path_as_the_cli_does(loaded_window, line_folder, run_to_end, private_folders):
    w = loaded_window
    w.source_panel.set_source(str(line_folder))
    assert run_to_end(w) == "ended"
    with ResultsLog(private_folders[0] / "results.sqlite3") as log:
        rows = log.query(ResultFilter(run_id=w.station.run_id))
    sha = file_sha256(w.station.inspector.path)
    assert len(rows) == 6 and {(r.model_path, r.model_hash) for r in rows} == {(str(w.station.inspector.path), sha)}
    assert len(sha) == 64 and os.path.isabs(rows[0].model_path)  # was 16 hex digits from the station


def test_the_evaluate_tab_runs_the_model_as_the_station_does(make_window, model_file, synthetic_dataset, qtbot):
    w = make_window(device="cpu", precision="fp32")
    tab = w.evaluate
    tab.set_model(str(model_file))
    tab.set_dataset_folder(str(synthetic_dataset))
    qtbot.waitUntil(lambda: not tab.is_probing(), timeout=10_000)
    with qtbot.waitSignal(tab.evaluation_finished, timeout=120_000):
        assert tab.start_evaluation()
    assert tab.done.precision == "fp32"  # was: the Evaluate tab ignored --precision and ran auto
    assert "scored in fp32" in tab.report_view.headline.text()


def test_quick_settings_saves_end_with_the_newest(private_folders, qtbot, monkeypatch):
    import visinspect_gui.settings as settings_module

    slow_first = settings_module._write

    def write(path, values, *, stop):
        if values.get("review/folder") == "/first":
            time.sleep(0.4)  # the first write is slow (a busy disk): the second must not overtake it
        yield from slow_first(path, values, stop=stop)

    monkeypatch.setattr(settings_module, "_write", write)
    data = private_folders[0]
    settings = settings_module.StationSettings(data)
    settings.save_review_folder("/first")
    settings.save_review_folder("/second")
    assert settings.wait()
    from PySide6.QtCore import QSettings

    assert QSettings(str(data / "station.ini"), QSettings.Format.IniFormat).value("review/folder") == "/second"
