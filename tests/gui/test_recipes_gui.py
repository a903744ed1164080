"""Recipes in the station: the engineer saves the setup and switches back to it; the operator only sees its name."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtWidgets import QInputDialog, QMessageBox

from engine.recipes import list_recipes, load_recipe
from visinspect_gui.access import Mode


@pytest.fixture
def two_sources(tmp_path, line_folder):
    a, b = tmp_path / "line-a", tmp_path / "line-b"
    shutil.copytree(line_folder, a)
    shutil.copytree(line_folder, b)
    return str(a), str(b)


def save(qtbot, window, name: str) -> None:
    with qtbot.waitSignal(window.recipes.recipe_saved, timeout=10_000):
        window.recipes.save_as(name)


def test_save_then_switch_recipe_brings_back_model_thresholds_source_and_roi(loaded_window, make_window, model_file, two_sources, qtbot, tmp_path, monkeypatch):
    w = loaded_window
    source_a, source_b = two_sources
    w.source_panel.set_source(source_a)
    w.model_panel.set_threshold(0.7)
    w.roi_tool.set_roi((4, 6, 50, 40))
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("widget-a", True))
    with qtbot.waitSignal(w.recipes.recipe_saved, timeout=10_000):
        next(a for a in w.menuBar().actions() if a.text() == "&Recipe").menu().actions()[0].trigger()
    assert w.recipes.field.text() == "Recipe: widget-a"
    stored = load_recipe("widget-a")  # what is on disk, read back by the engine
    assert stored.model == str(model_file.resolve()) and stored.decision_threshold == 0.7
    assert stored.source == source_a and stored.roi == (4, 6, 50, 40)

    other_model = tmp_path / "other.safetensors"
    shutil.copyfile(model_file, other_model)
    with qtbot.waitSignal(w.station.model_loaded, timeout=30_000):
        w.open_model(other_model)
    w.source_panel.set_source(source_b)
    w.model_panel.set_threshold(0.3)
    w.roi_tool.clear()
    save(qtbot, w, "widget-b")
    assert list_recipes() == ["widget-a", "widget-b"] and w.recipes.field.text() == "Recipe: widget-b"

    monkeypatch.setattr(QInputDialog, "getItem", lambda _p, _t, _l, names, *a: ("widget-a", True) if "widget-a" in names else ("", False))
    with qtbot.waitSignal(w.recipes.recipe_applied, timeout=30_000):
        w.recipes.ask_switch()
    assert w.model_panel.loaded_path == str(model_file)
    assert w.station.inspector.thresholds.decision == 0.7 and w.model_panel.decision_threshold == 0.7
    assert w.source_panel.spec() == source_a and source_a.split("/")[-1] in w.source_panel.current.text()
    assert w.roi_tool.roi == (4, 6, 50, 40) and w.roi_tool.item.isVisible()
    assert w.recipes.field.text() == "Recipe: widget-a" and "Recipe widget-a in use" in w.messages.message
    assert w.settings.wait()
    assert make_window().recipes.field.text() == "Recipe: widget-a"  # the next launch names it too


def test_switching_to_a_recipe_whose_model_is_gone_says_so_and_keeps_the_station(loaded_window, model_file, tmp_path, qtbot):
    w = loaded_window
    gone = tmp_path / "gone.safetensors"
    shutil.copyfile(model_file, gone)
    with qtbot.waitSignal(w.station.model_loaded, timeout=30_000):
        w.open_model(gone)
    save(qtbot, w, "vanished")
    with qtbot.waitSignal(w.station.model_loaded, timeout=30_000):
        w.open_model(model_file)
    w.roi_tool.set_roi((1, 1, 10, 10))
    save(qtbot, w, "kept")
    gone.unlink()
    w.recipes.switch_to("vanished")
    qtbot.waitUntil(lambda: "was not switched to" in w.messages.message, timeout=30_000)
    assert "model file not found" in w.messages.message and "Recipe kept stays in use" in w.messages.message
    assert w.model_panel.loaded_path == str(model_file) and w.roi_tool.roi == (1, 1, 10, 10)  # nothing half-switched
    assert w.recipes.field.text() == "Recipe: kept"


def test_a_name_a_recipe_cannot_have_is_refused_in_one_line_and_an_existing_one_is_replaced_only_when_confirmed(loaded_window, qtbot, monkeypatch):
    w = loaded_window
    w.recipes.save_as("bad/name")
    qtbot.waitUntil(lambda: "bad/name" in w.messages.message, timeout=10_000)
    assert list_recipes() == [] and w.recipes.field.text() == "Recipe: none"
    save(qtbot, w, "widget-a")
    w.model_panel.set_threshold(0.9)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("widget-a", True))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    w.recipes.ask_save()
    qtbot.waitUntil(lambda: not w.recipes._job.busy(), timeout=10_000)
    assert load_recipe("widget-a").decision_threshold != 0.9  # not replaced
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(w.recipes.recipe_saved, timeout=10_000):
        w.recipes.ask_save()
    assert load_recipe("widget-a").decision_threshold == 0.9


def test_operator_mode_cannot_save_or_switch_but_sees_the_recipe(loaded_window, qtbot):
    w = loaded_window
    save(qtbot, w, "widget-a")
    assert w.access.set_pin("4711")
    w.access.lock()
    assert w.access.mode is Mode.OPERATOR
    recipe_menu = next(a for a in w.menuBar().actions() if a.text() == "&Recipe").menu()
    assert not any(a.isEnabled() for a in recipe_menu.actions() if not a.isSeparator())
    w.recipes.save_as("sneaky")
    assert "engineer mode" in w.messages.message
    w.recipes.switch_to("widget-a")
    w.recipes.ask_switch()
    qtbot.wait(100)
    assert list_recipes() == ["widget-a"] and w.recipes.field.isVisible() and w.recipes.field.text() == "Recipe: widget-a"
