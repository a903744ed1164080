"""Issue 11: operator mode shows verdict, counters and Start / Stop; an engineer PIN unlocks the rest; changes are audited."""

from __future__ import annotations

from PySide6.QtWidgets import QInputDialog

from engine.access import check_pin, hash_pin
from visinspect_gui.access import Mode


def _visible_tabs(w) -> list[str]:
    return [w.tabs.tabText(i) for i in range(w.tabs.count()) if w.tabs.isTabVisible(i)]


def test_pin_is_stored_hashed_and_checked():
    stored = hash_pin("4711")
    assert "4711" not in stored and check_pin("4711", stored) and not check_pin("4712", stored)
    assert not check_pin("4711", "not a hash")


def test_without_a_pin_the_station_is_open_and_cannot_be_locked(window):
    assert window.access.mode is Mode.ENGINEER
    window.access.lock()
    assert window.access.mode is Mode.ENGINEER and "PIN" in window.messages.message


def test_operator_mode_hides_model_thresholds_training_and_source_choice(loaded_window, qtbot, monkeypatch):
    w = loaded_window
    assert w.access.set_pin("4711")
    assert w.settings.wait()  # the settings file is written in a worker
    stored = (w.data_dir / "station.ini").read_text(encoding="utf-8")
    assert "scrypt$" in stored and "4711" not in stored  # only the hash is on disk
    w.access.lock()
    assert w.access.mode is Mode.OPERATOR and w.mode_label.text() == "Operator mode"
    assert not w.model_panel.isVisible() and not w.source_panel.edit.isVisible()
    assert w.source_panel.start_button.isVisible() and w.source_panel.stop_button.isVisible()
    assert _visible_tabs(w) == ["Live", "History"]
    w.handle_dropped([str(w.station.inspector.path)])
    assert "engineer mode" in w.messages.message

    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("0000", True))
    w.access.ask_unlock(w)
    qtbot.waitUntil(lambda: "Wrong PIN" in w.messages.message, timeout=10_000)
    assert w.access.mode is Mode.OPERATOR
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("4711", True))
    with qtbot.waitSignal(w.access.mode_changed, timeout=10_000):
        w.access.ask_unlock(w)
    assert w.access.mode is Mode.ENGINEER and w.model_panel.isVisible()
    assert _visible_tabs(w) == ["Live", "Review", "History", "Train", "Evaluate"]


def test_model_and_threshold_changes_are_audited_with_who_and_old_and_new(loaded_window, model_file, qtbot):
    w = loaded_window
    old = w.station.inspector.thresholds.decision
    w.model_panel.threshold.slider.setValue(7000)
    w.model_panel.threshold.slider.setValue(7200)  # one drag: one audit row, from where it started to where it ended
    w.access.flush()
    changes = w.results.changes()
    kinds = [c.what.value for c in changes]
    assert "model" in kinds  # the model loaded at start
    threshold = [c for c in changes if c.what.value == "threshold"]
    assert len(threshold) == 1 and threshold[0].old == f"{old:.4f}" and threshold[0].new == "0.7200"
    assert "engineer" in threshold[0].who
