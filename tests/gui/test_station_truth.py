"""Issue 11: what the Live screen shows is always the model, threshold and source named beside it, never a stale verdict."""

from __future__ import annotations

import shutil
from pathlib import Path

from engine.modelfile import update_meta
from engine.types import Verdict


def _second_model(model_file, tmp_path):
    """The same network under another product name: another file, another sha256."""
    other = tmp_path / "other-product.vimodel"
    shutil.copyfile(model_file, other)
    update_meta(other, product="other product")
    return other


def test_switching_models_mid_run_blanks_the_verdict_and_starts_the_counters_again(loaded_window, line_folder, model_file, tmp_path, qtbot):
    w = loaded_window
    w.source_panel.set_source(str(line_folder), loop=True, max_fps=20.0)
    w.source_panel.start_button.click()
    qtbot.waitUntil(lambda: w.live.counters.inspected >= 3, timeout=30_000)
    first_run = w.station.run_id
    other = _second_model(model_file, tmp_path)
    judged_by_new = []
    w.station.result_ready.connect(lambda r: judged_by_new.append(r) if r.inspection.model.path.endswith("other-product.vimodel") else None)
    with qtbot.waitSignal(w.station.model_loaded, timeout=30_000):
        w.open_model(other)
    # At once: the banner no longer shows the first model's verdict as current.
    assert w.live.banner.verdict is None and w.live.banner.verdict_label.text() == "MODEL CHANGED"
    assert w.station.run_id != first_run
    qtbot.waitUntil(lambda: w.live.result is not None and w.live.result.inspection.model.path.endswith("other-product.vimodel"), timeout=30_000)
    w.live.flush()
    counted = w.live.counters.inspected
    assert counted == len(judged_by_new) >= 1  # the counters restarted with the new model: they count its verdicts only
    assert "other-product.vimodel" in w.live.counters.scope.text()
    assert "other-product.vimodel" in w.live.context.text() and str(line_folder) in w.live.context.text()
    w.station.stop()
    qtbot.waitUntil(lambda: not w.station.is_running, timeout=10_000)
    assert w.results.flush()
    rows = w.results.query(limit=1000)
    models_by_run = {}
    for r in rows:
        models_by_run.setdefault(r.run_id, set()).add(Path(r.model_path).name)
    # One run, one model: the first run stays in the log under its own id, the second model's rows under a new one.
    assert models_by_run[first_run] == {model_file.name}
    assert models_by_run[w.station.run_id] == {other.name}


def test_a_source_that_fails_to_open_clears_the_verdict(loaded_window, line_folder, run_to_end, qtbot):
    w = loaded_window
    w.source_panel.set_source([str(line_folder / "part-02.png")])
    run_to_end(w)
    assert w.live.banner.verdict is Verdict.ANOMALY
    assert "last frame" in w.live.context.text()  # the run ended: the verdict is marked as its last
    w.source_panel.set_source("/no/such/folder/anywhere")
    with qtbot.waitSignal(w.station.run_finished, timeout=20_000):
        w.source_panel.start_button.click()
    assert w.live.banner.verdict is None and w.live.banner.verdict_label.text() == "NO VERDICT"
    assert "/no/such/folder/anywhere" in w.live.banner.detail_label.text()
    assert w.live.viewer.boxes_drawn == 0  # the old boxes went with the old verdict


def test_stop_then_step_goes_on_at_the_next_file_and_resume_says_running(loaded_window, line_folder, qtbot):
    w = loaded_window
    w.source_panel.set_source(str(line_folder), max_fps=5.0)
    w.source_panel.start_button.click()
    qtbot.waitUntil(lambda: w.live.counters.inspected >= 2, timeout=30_000)
    w.source_panel.stop_button.click()
    qtbot.waitUntil(lambda: not w.station.is_running and w.station.active_workers() == [], timeout=10_000)
    w.live.flush()
    last = w.live.result.frame.index
    with qtbot.waitSignal(w.station.result_ready, timeout=20_000) as blocker:
        w.source_panel.step_button.click()
    assert blocker.args[0].frame.index == last + 1  # Step after Stop: the next file, not part-01 again
    qtbot.waitUntil(lambda: w.station.state == "paused", timeout=10_000)
    assert w.status.source_state.text().startswith("Paused")
    w.source_panel.start_button.click()  # Resume
    assert w.station.state == "running" and w.status.source_state.text().startswith("Running")
    before = w.live.counters.inspected
    qtbot.waitUntil(lambda: w.live.counters.inspected > before, timeout=20_000)
    assert not w.status.source_state.text().startswith("Paused")


def test_next_launch_loads_the_model_in_use_and_never_a_failed_camera(make_window, model_file, tmp_path, line_folder, qtbot, private_folders):
    _, weights = private_folders
    newest = _second_model(model_file, tmp_path)
    shutil.copyfile(newest, weights / "newest.vimodel")  # the newest file in the weights folder
    first = make_window()
    with qtbot.waitSignal(first.station.model_loaded, timeout=30_000):
        first.open_model(model_file)
    first.source_panel.set_source(str(line_folder))
    first.source_panel.set_source("7")  # a camera that is not there
    with qtbot.waitSignal(first.station.run_finished, timeout=30_000):
        first.source_panel.start_button.click()
    first.close()

    second = make_window(auto_load=True)
    with qtbot.waitSignal(second.station.model_loaded, timeout=30_000):
        pass
    assert Path(second.station.inspector.path).name == model_file.name  # the one in use, not the newest file
    assert second.source_panel.spec() != "7"


def test_a_model_opened_from_elsewhere_is_listed_in_the_model_panel(loaded_window, model_file):
    items = [loaded_window.model_panel.list.item(i) for i in range(loaded_window.model_panel.list.count())]
    texts = [i.text() for i in items]
    assert any(model_file.name in t and "opened from" in t for t in texts)
    assert not any("No models in the weights folder" in t for t in texts)
    assert any(i.font().bold() for i in items)


def test_closing_hides_the_window_before_waiting_for_a_model_batch(loaded_window, line_folder, qtbot, monkeypatch):
    from visinspect_gui.workers import Worker

    w = loaded_window
    w.source_panel.set_source(str(line_folder), loop=True)
    w.source_panel.start_button.click()
    qtbot.waitUntil(lambda: w.live.counters.inspected >= 1, timeout=30_000)
    seen = []
    stop_all = Worker.stop_all
    monkeypatch.setattr(Worker, "stop_all", staticmethod(lambda *a, **k: (seen.append(w.isVisible()), stop_all(*a, **k))))
    w.close()
    assert seen == [False]  # the operator sees the window go at once; the workers end behind it
    assert not Worker.running()


def test_the_station_log_tells_an_engineer_what_happened_in_the_shift(loaded_window, line_folder, run_to_end, qtbot, caplog, tmp_path):
    import logging

    w = loaded_window
    caplog.set_level(logging.INFO)
    w.source_panel.set_source(str(line_folder))
    run_to_end(w)
    with qtbot.waitSignal(w.review.review_finished, timeout=60_000):
        assert w.review.start(str(line_folder))
    with qtbot.waitSignal(w.review.csv_exported, timeout=10_000):
        w.review.export_csv(tmp_path / "shift.csv")
    w.model_panel.threshold.slider.setValue(8000)
    w.access.flush()
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("visinspect_gui")]
    for expected in ("live run live-", "ended after frame", f"of {line_folder}: 6 files", "done in", "review exported: 6 rows",
                     "change: threshold", "-> 0.8000"):  # fmt: skip
        assert any(expected in line for line in lines), f"no log line with {expected!r}:\n" + "\n".join(lines)
