"""A product with only good images, in the station: scan, train good-only, calibrate to a false-reject target, inspect."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from engine.data.layouts import load_dataset
from engine.data.synthetic import generate_dataset
from engine.jobs.train import train_job
from engine.modelfile import read_meta
from engine.training import TrainConfig
from engine.types import Verdict
from visinspect_gui.widgets import train_tab as train_tab_module
from visinspect_gui.widgets.calibration_view import CalibrationView
from visinspect_gui.widgets.eval_tab import EvalTab
from visinspect_gui.widgets.train_tab import TrainTab

TRAIN_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    """A small synthetic MVTec-layout product (64 px) whose good and defect images the tests pick from."""
    return generate_dataset(tmp_path_factory.mktemp("good_only_station") / "pad", n_train_good=24, n_test_good=4,
                            n_per_defect=2, image_size=64).root  # fmt: skip


@pytest.fixture(scope="module")
def good_only_folder(synthetic, tmp_path_factory) -> Path:
    """Class folders with a good/ folder and no defect image at all."""
    root = tmp_path_factory.mktemp("good_only_product") / "pad"
    shutil.copytree(synthetic / "train" / "good", root / "good")
    return root


def scan(qtbot, tab: TrainTab, folder: Path):
    with qtbot.waitSignal(tab.dataset_scanned, timeout=30_000) as scanned:
        tab.set_dataset_folder(str(folder))
    return scanned.args[0]


def fast_options(tab: TrainTab) -> None:
    """The fast CPU options a test can afford: random init, 64 px."""
    tab.options.field_widget("backbone").setCurrentText("vgg16_bn")
    tab.options.weights.kind.setCurrentIndex(tab.options.weights.kind.findData("none"))
    tab.options.field_widget("image_size").setValue(64)


def test_good_only_product_trains_calibrates_and_inspects_in_the_station(window, good_only_folder, synthetic, run_to_end, qtbot):
    tab = window.train
    window.tabs.setCurrentWidget(tab)
    index = scan(qtbot, tab, good_only_folder)
    assert index is not None and index.n_anomaly == 0  # accepted: good images alone are a dataset
    assert "24 good, 0 defective: good-only training (one-class) recommended" in tab.picker.dataset_label.text()
    assert tab.mode.combo.currentText() == "Good only" and not tab.mode.supervised_allowed()
    assert tab.train_button.isEnabled()
    fast_options(tab)
    tab.set_product("pad")

    tab.train_button.click()
    qtbot.waitUntil(lambda: tab.saved_path is not None and not tab.is_busy(), timeout=TRAIN_TIMEOUT_MS)
    assert "Good-only training (one-class)" in tab.progress.mode_label.text()
    assert "0 defective images" in tab.progress.mode_label.text()
    assert "fitted on good images" in tab.eta_label.text() and "held-out good images rejected" in tab.status_text()
    meta = read_meta(tab.saved_path)
    assert meta.method == "padim" and meta.training["mode"] == "good-only"

    with qtbot.waitSignal(window.station.model_loaded, timeout=30_000):
        tab.use_button.click()
    assert window.tabs.currentWidget() is window.live

    calibration = tab.calibration  # a good-only model on good images: the false-reject target is the one offered
    assert not calibration.no_miss_button.isEnabled() and not calibration.balanced_button.isEnabled()
    assert calibration.current().target == "max-false-reject:2" and calibration.current().fp == 0
    calibration.false_reject_spin.setValue(0.0)
    assert calibration.current().target == "max-false-reject:0"  # the target follows its percentage
    with qtbot.waitSignal(window.station.model_loaded, timeout=60_000):  # stored, then the station reloads it
        with qtbot.waitSignal(tab.threshold_stored, timeout=60_000) as stored:
            calibration.store_button.click()
    stored_meta = read_meta(tab.saved_path)
    assert stored_meta.calibration["target"] == "max-false-reject:0" and stored_meta.calibration["fp"] == 0
    assert stored_meta.threshold == pytest.approx(stored.args[1]) and stored_meta.threshold != meta.threshold
    assert window.station.inspector.threshold == pytest.approx(stored.args[1])

    parts = sorted((synthetic / "test" / "good").glob("*.png"))  # good parts the model never saw
    window.source_panel.set_source([str(p) for p in parts])
    assert run_to_end(window) == "ended"
    counters = window.live.counters
    assert counters.inspected == len(parts) and counters.good + counters.anomaly == len(parts)
    assert counters.good >= len(parts) - 1
    assert window.live.banner.verdict in (Verdict.GOOD, Verdict.ANOMALY)
    assert parts[-1].name in window.live.banner.item_label.text()


def test_supervised_is_offered_only_with_two_defect_images(qtbot, synthetic, tmp_path, private_folders):
    one = tmp_path / "one_defect"
    shutil.copytree(synthetic / "train" / "good", one / "good")
    (one / "crack").mkdir()
    shutil.copy(next((synthetic / "test" / "crack").glob("*.png")), one / "crack")
    tab = TrainTab()
    qtbot.addWidget(tab)
    scan(qtbot, tab, one)
    assert not tab.mode.supervised_allowed() and tab.mode.mode() == "good-only"
    assert "Supervised needs at least 2 defect images; this dataset has 1." == tab.mode.reason.text()
    assert "24 good, 1 defective: good-only training (one-class) recommended" in tab.picker.dataset_label.text()
    epochs, lr = tab.options.field_widget("epochs"), tab.options.field_widget("lr")
    assert not epochs.isEnabled() and not lr.isEnabled()  # good-only uses no epochs or learning rate
    assert tab.options.field_widget("image_size").isEnabled() and tab.options.field_widget("batch_size").isEnabled()

    shutil.copy(sorted((synthetic / "test" / "crack").glob("*.png"))[1], one / "crack")
    scan(qtbot, tab, one)
    assert tab.mode.supervised_allowed() and tab.mode.mode() == "supervised" and tab.mode.reason.text() == ""
    assert "supervised training recommended" in tab.picker.dataset_label.text()
    assert epochs.isEnabled() and lr.isEnabled()


def test_the_mode_chosen_goes_into_the_training_config(qtbot, synthetic, monkeypatch, private_folders):
    configs = []

    def capture(dataset, config, *, stop, **kwargs):
        configs.append(config)
        yield from ()

    monkeypatch.setattr(train_tab_module, "_train_job", capture)
    tab = TrainTab()
    qtbot.addWidget(tab)
    scan(qtbot, tab, synthetic)
    assert tab.mode.mode() == "supervised"
    assert tab.options.field_widget("epochs").isEnabled()
    tab.mode.set_mode("good-only")  # an engineer who wants the one-class model although defects exist
    assert not tab.options.field_widget("epochs").isEnabled()
    tab.set_product("pad")
    assert tab.start_training()
    qtbot.waitUntil(lambda: not tab.is_busy(), timeout=10_000)
    assert [c.mode for c in configs] == ["good-only"]
    assert not tab.options.field_widget("epochs").isEnabled() and tab.options.field_widget("seed").isEnabled()  # after the run


def test_calibration_without_defects_starts_at_the_false_reject_target(qtbot):
    view = CalibrationView()
    qtbot.addWidget(view)
    scores = np.linspace(0.1, 0.4, 10)
    view.set_data([0] * 10, scores, threshold=0.5)
    assert not view.no_miss_button.isEnabled() and "needs defective images" in view.no_miss_button.toolTip()
    assert view.false_reject_button.isEnabled()
    assert view.current().target == "max-false-reject:2" and view.current().fp == 0
    assert view.threshold() < 0.5 and "No defective images" in view.title.text()
    view.false_reject_spin.setValue(10.0)
    assert view.current().target == "max-false-reject:10" and view.current().fp == 1
    view.set_data([0] * 5 + [1] * 5, np.linspace(0.1, 0.9, 10), threshold=0.5)  # defects: every target, the model's threshold
    assert view.no_miss_button.isEnabled() and view.balanced_button.isEnabled()
    assert view.current().target == "model threshold" and view.threshold() == pytest.approx(0.5)
    view.set_data([0] * 5 + [1] * 5, np.linspace(0.1, 0.9, 10), threshold=0.5, one_class=True)  # a good-only model
    assert view.current().target == "max-false-reject:10" and view.no_miss_button.isEnabled()  # defects: every target too


@pytest.fixture(scope="module")
def good_only_model(good_only_folder, tmp_path_factory) -> Path:
    """A good-only model of the folder, trained by the engine as `train --mode good-only` does (fast options)."""
    out = tmp_path_factory.mktemp("good_only_models") / "pad.safetensors"
    config = TrainConfig(backbone="vgg16_bn", backbone_weights="none", image_size=64, padim_dims=40, device="cpu", mode="good-only")
    for _ in train_job(load_dataset(good_only_folder, min_defective=0), config, product="pad", out=out, stop=threading.Event()):
        pass
    return out


def test_evaluate_tab_on_good_images_counts_false_rejects_and_calibrates_to_a_false_reject_target(qtbot, good_only_model,
                                                                                                   good_only_folder):  # fmt: skip
    tab = EvalTab()
    qtbot.addWidget(tab)
    tab.set_model(str(good_only_model))
    tab.set_dataset_folder(str(good_only_folder))
    tab.every_check.setChecked(True)
    qtbot.waitUntil(lambda: not tab.is_probing(), timeout=10_000)
    with qtbot.waitSignal(tab.evaluation_finished, timeout=60_000):
        assert tab.start_evaluation()
    assert "of 24 good images rejected" in tab.status_label.text() and "false-reject target" in tab.status_label.text()
    view = tab.calibration
    assert view.current().target == "max-false-reject:2" and not view.no_miss_button.isEnabled()
    with qtbot.waitSignal(tab.threshold_stored, timeout=60_000) as stored:
        view.store_button.click()
    meta = read_meta(good_only_model)
    assert meta.calibration["target"] == "max-false-reject:2" and meta.calibration["n"] == 24  # every image, all good
    assert meta.threshold == pytest.approx(stored.args[1]) and meta.calibration["fp"] <= 0.02 * 24
