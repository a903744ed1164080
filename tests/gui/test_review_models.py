"""The Review tab names the model that judged each row: after another model is loaded the slider leaves those rows
as they were, says so, and re-inspecting gives the loaded model's verdicts."""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import Qt

from engine.inference import Inspector
from engine.modelfile import update_meta
from engine.results import ResultsLog
from engine.types import Verdict
from visinspect_gui.widgets.review_model import MODEL
from visinspect_gui.widgets.review_tab import ReviewTab


def _review(tab: ReviewTab, qtbot, start) -> str:
    with qtbot.waitSignal(tab.review_finished, timeout=120_000) as done:
        assert start()
    return done.args[0]


def test_rows_of_another_model_are_not_rejudged_and_can_be_reinspected(model_file, line_folder, tmp_path, qtbot):
    other_file = tmp_path / "retrained.safetensors"
    shutil.copyfile(model_file, other_file)
    update_meta(other_file, product="retrained")  # the same network in another file: another model by its sha256
    first = Inspector.from_file(model_file, device="cpu")
    second = Inspector.from_file(other_file, device="cpu")
    assert first.ref.sha256 != second.ref.sha256
    with ResultsLog(tmp_path / "results.sqlite3") as results:
        tab = ReviewTab(results)
        qtbot.addWidget(tab)
        tab.set_inspector(first)
        assert _review(tab, qtbot, lambda: tab.start(str(line_folder))) == "done"
        assert not tab.model_notice.isVisibleTo(tab)
        assert not tab.frames_box.isChecked() and "Results logged; anomaly frames not saved" in tab.summary.text()
        assert not list(results.frames_dir.rglob("*.jpg"))  # nothing but the log unless asked for
        as_reviewed = [r.verdict for r in tab.model.rows]
        assert Verdict.GOOD in as_reviewed

        tab.set_inspector(second)  # e.g. a retrained model was loaded
        assert tab.model_notice.isVisibleTo(tab)
        assert "All 6 rows judged by synthetic.safetensors, not by the loaded model retrained.safetensors" in (
            tab.model_notice.label.text()
        )
        assert tab.proxy.index(0, MODEL).data(Qt.ItemDataRole.ToolTipRole).endswith("keeps its own verdict")
        tab.rejudge(0.0)  # its threshold: would flag every file, but none of these rows is its own
        assert [r.verdict for r in tab.model.rows] == as_reviewed
        assert "every row is another model's" in tab.progress_label.text()
        assert "0 verdicts changed" not in tab.progress_label.text()

        with qtbot.waitSignal(tab.review_finished, timeout=120_000) as done:
            tab.model_notice.button.click()
        assert done.args == ["done"]
        assert {tab.proxy.index(r, MODEL).data() for r in range(tab.proxy.rowCount())} == {Path(other_file).name}
        assert not tab.model_notice.isVisibleTo(tab)
        tab.rejudge(0.0)
        assert {r.verdict for r in tab.model.rows} == {Verdict.ANOMALY}  # now the loaded model's rows follow the slider
        tab.shutdown()
