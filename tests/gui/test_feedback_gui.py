"""Issue 13 item 4: the operator labels results on Live, Review and History; the Train tab counts them, retrains, compares."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from engine.data.layouts import load_dataset
from engine.results.labels import read_labels
from visinspect_gui.access import Mode
from visinspect_gui.widgets import label_actions

# Tiny on purpose: one epoch at 32 px; the loop is tested, not the model's quality.
TINY_TRAIN = dict(backbone="vgg16_bn", backbone_weights="none", image_size=32, epochs=1, lr=1e-3)


@pytest.fixture(scope="session")
def tiny_template(tmp_path_factory):
    """A small MVTec-layout synthetic product and a one-epoch model of it: (dataset folder, model file)."""
    from engine.data.synthetic import generate_dataset
    from engine.modelfile import save_model
    from engine.training import TrainConfig, fit

    base = tmp_path_factory.mktemp("tiny")
    root = generate_dataset(base / "product", n_train_good=8, n_test_good=4, n_per_defect=4, defect_types=("scratch", "spot"),
                            image_size=64, seed=1).root  # fmt: skip
    result = fit(load_dataset(root), TrainConfig(**TINY_TRAIN), product="tiny")
    return root, save_model(base / "tiny.safetensors", result.model, result.meta, calibration=result.calibration)


@pytest.fixture
def product(tiny_template, private_folders, tmp_path):
    """This test's own copy of the dataset, and the model re-saved in the station's weights folder pointing at it."""
    from engine.modelfile import load_model, save_model

    root, model = tiny_template
    data = shutil.copytree(root, tmp_path / "product")
    loaded = load_model(model)
    meta = replace(loaded.meta, dataset={**loaded.meta.dataset, "root": str(data)})
    path = save_model(private_folders[1] / "tiny.safetensors", loaded.model, meta, calibration=loaded.calibration)
    line = tmp_path / "line"
    line.mkdir()
    for i, src in enumerate(sorted((data / "test" / "good").iterdir())[:2]):
        shutil.copyfile(src, line / f"part-{i + 1}.png")
    return data, path, line


@pytest.fixture
def station(make_window, product, qtbot, run_to_end):
    """A window with the tiny model loaded that has judged the two parts of the line folder."""
    data, model, line = product
    w = make_window()
    with qtbot.waitSignal(w.station.model_loaded, timeout=30_000):
        w.open_model(model)
    w.source_panel.set_source(str(line), loop=False, max_fps=None)
    assert run_to_end(w) == "ended"
    return w


def _count_text(w) -> str:
    return w.labels.panel.count_label.text()


def test_live_result_marked_good_lands_in_the_dataset_and_the_train_tab_counts_it(station, product, qtbot):
    w, (data, _model, _line) = station, product
    qtbot.waitUntil(lambda: _count_text(w).startswith("0 new labelled images"), timeout=10_000)
    assert not w.labels.panel.retrain_button.isEnabled()
    before = load_dataset(data).counts()["good"]
    shown = Path(w.live.result.frame.path)
    assert w.labels.bar.good_button.isEnabled()
    w.labels.bar.good_button.click()
    qtbot.waitUntil(lambda: _count_text(w).startswith("1 new labelled image since this model"), timeout=10_000)
    copies = list((data / "train" / "good").glob("feedback-*.png"))
    assert len(copies) == 1 and copies[0].read_bytes() == shown.read_bytes()
    assert load_dataset(data).counts()["good"] == before + 1
    assert "actually good" in w.messages.message and w.labels.panel.retrain_button.isEnabled()
    (label,) = read_labels(w.results)
    assert label.label.describe() == "actually good" and "(engineer)" in label.who


def test_review_row_context_menu_marks_a_file_defective_with_a_new_type(station, product, qtbot, monkeypatch):
    w, (data, _model, line) = station, product
    with qtbot.waitSignal(w.review.review_finished, timeout=30_000):
        w.review.start(str(line))
    asked = []
    answers = iter(["good", "dent"])  # "good" is not a defect type: said, nothing copied
    monkeypatch.setattr(label_actions, "ask_defect_type", lambda parent, types: asked.append(types) or next(answers))
    qtbot.waitUntil(lambda: w.labels.facts is not None, timeout=10_000)
    w.review.table.selectRow(1)
    menu = w.labels.menu_for(w.review.table, w.labels.label_review_row)
    assert [a.text() for a in menu.actions()] == ["Actually good", "Actually defective…"]
    menu.actions()[1].trigger()
    assert "Not labelled" in w.messages.message and read_labels(w.results) == []
    menu.actions()[1].trigger()
    qtbot.waitUntil(lambda: len(read_labels(w.results)) == 1, timeout=10_000)
    assert sorted(asked[0]) == ["scratch", "spot"]  # the dataset's own types are offered
    assert load_dataset(data).counts()["dent"] == 1
    assert Path(read_labels(w.results)[0].copy_path).parent == data / "test" / "dent"
    qtbot.waitUntil(lambda: "defective: dent 1" in _count_text(w), timeout=10_000)


def test_history_row_labelled_by_an_operator_is_recorded_with_who(station, product, qtbot):
    w, (data, _model, _line) = station, product
    assert w.access.set_pin("4711") and w.settings.wait()
    w.access.lock()
    assert w.access.mode is Mode.OPERATOR
    with qtbot.waitSignal(w.history.loaded, timeout=10_000):
        w.tabs.setCurrentWidget(w.history)
    w.history.table.selectRow(1)  # newest first: the first part, not the one still on the Live tab
    w.labels.menu_for(w.history.table, w.labels.label_history_row).actions()[0].trigger()
    qtbot.waitUntil(lambda: len(read_labels(w.results)) == 1, timeout=10_000)
    (label,) = read_labels(w.results)
    assert "(operator)" in label.who and Path(label.copy_path).parent == data / "train" / "good"
    w.tabs.setCurrentWidget(w.live)
    assert w.labels.bar.isVisible()  # the live buttons stay usable in operator mode
    w.labels.bar.good_button.click()
    qtbot.waitUntil(lambda: len(read_labels(w.results)) == 2, timeout=10_000)
    assert all("(operator)" in lab.who for lab in read_labels(w.results))


def test_retrain_with_labels_compares_old_and_new_then_puts_the_new_model_live(station, product, qtbot):
    w, (_data, model, _line) = station, product
    w.labels.bar.good_button.click()
    qtbot.waitUntil(lambda: w.labels.panel.retrain_button.isEnabled(), timeout=10_000)
    w.tabs.setCurrentWidget(w.train)
    w.labels.panel.retrain_button.click()
    assert w.train.picker.product == "tiny-2"
    qtbot.waitUntil(lambda: w.labels.panel.use_button.isVisible(), timeout=240_000)
    panel = w.labels.panel
    for column in (0, 1):
        assert all(panel.cell(m, column) not in ("", "n/a") for m in ("Accuracy", "Balanced accuracy"))
    assert "held-out images" in panel.status_label.text()
    new = w.train.model_path()
    assert new.exists() and new != model
    with qtbot.waitSignal(w.station.model_loaded, timeout=30_000):
        panel.use_button.click()
    assert Path(w.station.inspector.path) == new
    qtbot.waitUntil(lambda: _count_text(w).startswith("0 new labelled images"), timeout=10_000)  # none since the new model
    assert "tiny-2" in w.windowTitle()
