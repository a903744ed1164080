"""The Train and Evaluate tabs inside the station: a saved model is listed, used on the live view, recalibrated."""

from __future__ import annotations

import shutil

from PySide6.QtCore import Qt

from engine.modelfile import update_meta

MatchContains = Qt.MatchFlag.MatchContains


def test_train_and_evaluate_tabs_are_part_of_the_station(window):
    names = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert names == ["Live", "Review", "History", "Train", "Evaluate"]


def test_use_on_live_view_loads_the_trained_model_and_shows_the_live_tab(window, model_file, private_folders, qtbot):
    saved = private_folders[1] / "new-product.safetensors"
    shutil.copyfile(model_file, saved)
    window.tabs.setCurrentWidget(window.train)
    window.train.model_saved.emit(str(saved))
    qtbot.waitUntil(lambda: any(str(p).endswith("new-product.safetensors") for p in window.model_panel.models()), timeout=10_000)
    assert window.evaluate.model_combo.findText("new-product.safetensors", flags=MatchContains) >= 0
    with qtbot.waitSignal(window.station.model_loaded, timeout=30_000):
        window.train.use_model_requested.emit(str(saved))
    assert window.tabs.currentWidget() is window.live
    assert window.station.inspector.path.name == "new-product.safetensors"


def test_stored_threshold_is_the_one_the_live_view_then_uses(window, model_file, private_folders, qtbot):
    path = private_folders[1] / "product.safetensors"
    shutil.copyfile(model_file, path)
    with qtbot.waitSignal(window.station.model_loaded, timeout=30_000):
        window.open_model(path)
    assert window.station.inspector.threshold != 0.731
    update_meta(path, threshold=0.731)  # what the calibration view's "Store threshold" does, in its worker
    with qtbot.waitSignal(window.station.model_loaded, timeout=30_000):
        window.evaluate.threshold_stored.emit(str(path), 0.731)
    assert window.station.inspector.threshold == 0.731
    assert abs(window.model_panel.threshold.value() - 0.731) < 1e-3  # the slider shows it
