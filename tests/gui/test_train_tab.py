"""Train tab, as an engineer uses it: pick a folder, set options, Train, watch curves, read the report, use it."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt  # noqa: E402

from engine.data.synthetic import generate_dataset  # noqa: E402
from engine.inference import Inspector  # noqa: E402
from engine.modelfile import read_meta  # noqa: E402
from visinspect_gui.widgets.train_tab import TrainTab  # noqa: E402

TRAIN_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A small synthetic MVTec-layout product with masks (64 px, 38 images)."""
    return generate_dataset(
        tmp_path_factory.mktemp("train_tab") / "widget", n_train_good=16, n_test_good=4, n_per_defect=6, image_size=64
    ).root


@pytest.fixture()
def weights(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "weights"
    monkeypatch.setenv("VISINSPECT_WEIGHTS", str(folder))
    return folder


def scan(qtbot, tab: TrainTab, folder: Path, **kwargs):
    """Choose a dataset folder and wait for the worker that reads it; returns the DatasetIndex or None."""
    with qtbot.waitSignal(tab.dataset_scanned, timeout=30_000) as scanned:
        tab.set_dataset_folder(str(folder), **kwargs)
    return scanned.args[0]


def fast_tab(qtbot, dataset: Path, *, gallery_limit: int = 12) -> TrainTab:
    """A Train tab set up as a user would for the fast CPU recipe (random init, 64 px)."""
    tab = TrainTab(gallery_limit=gallery_limit)
    qtbot.addWidget(tab)
    tab.resize(1400, 900)
    tab.show()
    scan(qtbot, tab, dataset)
    tab.options.field_widget("backbone").setCurrentText("vgg16_bn")
    tab.options.weights.kind.setCurrentIndex(tab.options.weights.kind.findData("none"))
    tab.options.field_widget("image_size").setValue(64)
    tab.options.field_widget("epochs").setValue(30)
    tab.options.field_widget("lr").setValue(0.001)
    tab.set_product("widget")
    return tab


def test_dataset_folder_shows_layout_counts_and_masks(qtbot, dataset, weights) -> None:
    tab = TrainTab()
    qtbot.addWidget(tab)
    with qtbot.waitSignal(tab.dataset_scanned, timeout=30_000):
        tab.set_dataset_folder(str(dataset))  # returns at once: the folder is read in a worker
        assert "Reading" in tab.picker.dataset_label.text() and not tab.train_button.isEnabled()
        assert tab.start_training() is False and "Still reading" in tab.status_text()
    text = tab.picker.dataset_label.text()
    assert "MVTec" in text and "good 20" in text and "crack 6" in text and "masks for 18 of 18" in text
    assert not tab.picker.good_dir_combo.isEnabled()  # MVTec needs no good-folder name
    assert tab.picker.product_edit.text() == "widget" and tab.train_button.isEnabled()
    assert tab.picker.target_label.toolTip() == str(weights / "widget.safetensors")  # in full; the label may elide it
    assert "widget.safetensors" in tab.picker.target_label.text()


def test_class_folders_guess_the_good_folder_and_report_missing_ones(qtbot, dataset, tmp_path, weights) -> None:
    root = tmp_path / "tiles"
    shutil.copytree(dataset / "train" / "good", root / "MT_Free")
    shutil.copytree(dataset / "test" / "crack", root / "MT_Crack")
    tab = TrainTab()
    qtbot.addWidget(tab)
    scan(qtbot, tab, root)
    assert tab.picker.good_dir_combo.currentText() == "MT_Free" and tab.picker.good_dir_combo.isEnabled()
    assert "class folders, good = MT_Free" in tab.picker.dataset_label.text()
    assert "good 16" in tab.picker.dataset_label.text() and "MT_Crack 6" in tab.picker.dataset_label.text()
    assert "no masks" in tab.picker.dataset_label.text()
    assert scan(qtbot, tab, root, good_dir="OK") is None
    assert "no good-image folder 'OK'" in tab.picker.dataset_label.text()
    assert not tab.train_button.isEnabled() and tab.dataset is None


def test_train_shows_curves_report_gallery_and_saves_a_usable_model(qtbot, dataset, weights) -> None:
    tab = fast_tab(qtbot, dataset)
    with qtbot.waitSignal(tab.model_saved, timeout=TRAIN_TIMEOUT_MS) as saved:
        qtbot.mouseClick(tab.train_button, Qt.MouseButton.LeftButton)
        assert not tab.train_button.isEnabled() and tab.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not tab.is_busy() and tab.train_button.isEnabled(), timeout=TRAIN_TIMEOUT_MS)

    path = Path(saved.args[0])
    assert path == weights / "widget.safetensors" and path.is_file()
    assert "Done in" in tab.status_text()

    # curves: one point per epoch run, train and held-out, plus per-step losses
    points = tab.curve_points()
    epochs = len(tab.history)
    assert epochs >= 1 and tab.epoch_bar.value() == epochs
    for name in ("train loss", "held-out loss", "train accuracy", "held-out accuracy"):
        assert points[name][0] == [float(e) for e in range(1, epochs + 1)], name
    assert len(points["step loss"][0]) >= epochs
    assert all(0.0 <= a <= 1.0 for a in points["held-out accuracy"][1])

    # the held-out report: the confusion grid adds up to the held-out set the model file records
    meta = read_meta(path)
    held_out = len(meta.dataset["held_out"])
    counts = tab.report_view.confusion.counts()
    assert sum(counts.values()) == held_out == tab.result.report.n
    assert counts == {"tp": meta.metrics["tp"], "fn": meta.metrics["fn"], "fp": meta.metrics["fp"], "tn": meta.metrics["tn"]}
    assert tab.report_view.metrics.text("accuracy") == f"{meta.metrics['accuracy']:.1%}"
    assert tab.report_view.metrics.text("pixel AUROC") != "n/a" and "masks" in tab.report_view.metrics.text("pixel AUROC")
    assert tab.report_view.metrics.text("image AUROC") != "n/a"

    # the gallery: held-out predictions with misclassified ones first
    entries = tab.report_view.gallery.entries()
    assert len(entries) == min(12, held_out) == tab.report_view.gallery.count()
    flags = [e.misclassified for e in entries]
    assert flags == sorted(flags, reverse=True)
    assert all(max(e.image.shape[:2]) <= 192 and e.inspection.heatmap.shape == e.image.shape[:2] for e in entries)

    # the calibration view has the held-out scores and can store into the saved file
    assert tab.calibration.model_path() == str(path) and tab.calibration.store_button.isEnabled()

    # "Use on live view" hands the saved path on, and the file loads with its threshold
    with qtbot.waitSignal(tab.use_model_requested, timeout=1000) as used:
        qtbot.mouseClick(tab.use_button, Qt.MouseButton.LeftButton)
    assert used.args == [str(path)]
    assert Inspector.from_file(path, device="cpu").threshold == pytest.approx(meta.threshold)

    # the held-out report can be exported from here too, as HTML and as PDF
    assert tab.export_button.isEnabled()
    for name in ("widget-report.html", "widget-report.pdf"):
        with qtbot.waitSignal(tab.report_exported, timeout=60_000) as exported:
            assert tab.export_report(str(path.parent / name))
        qtbot.waitUntil(lambda: not tab.is_busy(), timeout=60_000)
        assert exported.args == [str(path.parent / name)]
    html_text = (path.parent / "widget-report.html").read_text(encoding="utf-8")
    assert html_text.count("data:image/jpeg;base64,") == len(entries) and "held-out" in html_text
    assert (path.parent / "widget-report.pdf").read_bytes().startswith(b"%PDF-")


def test_cancel_mid_run_leaves_no_model_file(qtbot, dataset, weights) -> None:
    tab = fast_tab(qtbot, dataset)
    tab.options.field_widget("epochs").setValue(200)
    tab.options.field_widget("early_stop_accuracy").setValue(1.0)
    assert tab.start_training()
    qtbot.waitUntil(lambda: len(tab.curve_points()["step loss"][0]) >= 2, timeout=TRAIN_TIMEOUT_MS)
    with qtbot.waitSignal(tab.busy_changed, timeout=30_000):
        qtbot.mouseClick(tab.cancel_button, Qt.MouseButton.LeftButton)
    assert "cancelled" in tab.status_text() and "no model was saved" in tab.status_text()
    assert tab.eta_label.text() == "" and tab.epoch_bar.text().startswith("cancelled")  # no time left standing
    assert not (weights / "widget.safetensors").exists()
    assert not weights.exists() or not any(weights.iterdir())  # no temp files either
    assert tab.train_button.isEnabled() and not tab.cancel_button.isEnabled() and not tab.use_button.isEnabled()


def test_an_existing_model_is_replaced_only_after_asking(qtbot, dataset, weights, monkeypatch) -> None:
    weights.mkdir(parents=True)
    existing = weights / "widget.safetensors"
    existing.write_bytes(b"keep me")
    tab = fast_tab(qtbot, dataset)
    asked = []
    monkeypatch.setattr(tab, "_ask_overwrite", lambda path: asked.append(path) or False)
    qtbot.mouseClick(tab.train_button, Qt.MouseButton.LeftButton)
    assert asked == [existing] and not tab.is_busy()
    assert "exists" in tab.status_text() and existing.read_bytes() == b"keep me"


def test_bad_options_are_explained_and_nothing_starts(qtbot, dataset, weights) -> None:
    tab = fast_tab(qtbot, dataset)
    tab.picker.product_edit.setText("bad/name")
    assert not tab.start_training() and "Product name" in tab.status_text()
    tab.picker.product_edit.setText("widget")
    tab.options.weights.kind.setCurrentIndex(tab.options.weights.kind.findData("file"))
    tab.options.weights.file_edit.setText(str(weights / "missing.pth"))
    assert not tab.start_training() and "weights file not found" in tab.status_text()
    assert not tab.is_busy()


def test_offline_imagenet_weights_are_explained_with_the_forms_controls(qtbot, dataset, weights, monkeypatch) -> None:
    import urllib.error

    from engine.model.builder import BACKBONES

    def offline(*_args, **_kwargs):
        raise urllib.error.URLError("no network")

    enum = BACKBONES["vgg16"][1]
    monkeypatch.setattr(type(enum), "get_state_dict", offline)
    monkeypatch.setattr("torch.hub.get_dir", lambda: str(weights / "hub"))  # no cached copy either
    tab = fast_tab(qtbot, dataset)
    tab.options.field_widget("backbone").setCurrentText("vgg16")
    tab.options.weights.kind.setCurrentIndex(tab.options.weights.kind.findData("imagenet"))
    with qtbot.waitSignal(tab.busy_changed, timeout=60_000, check_params_cb=lambda running: not running):
        assert tab.start_training()
    message = tab.status_text()
    assert "could not be downloaded" in message and "--" not in message
    assert "“Local file…”" in message and "“None (random init)”" in message and enum.url.rsplit("/", 1)[-1] in message
    assert not (weights / "widget.safetensors").exists()


def test_random_init_applies_the_recipe_that_trains_from_scratch_and_says_so(qtbot) -> None:
    tab = TrainTab()
    qtbot.addWidget(tab)
    form = tab.options
    assert form.field_widget("backbone").currentText() == "vgg16" and form.field_widget("lr").value() == pytest.approx(1e-4)
    form.weights.kind.setCurrentIndex(form.weights.kind.findData("none"))
    assert form.field_widget("backbone").currentText() == "vgg16_bn"
    assert form.field_widget("lr").value() == pytest.approx(1e-3)
    assert "vgg16_bn" in form.note.text() and "0.001" in form.note.text()
    config = form.config()
    assert (config.backbone, config.backbone_weights, config.lr) == ("vgg16_bn", "none", pytest.approx(1e-3))
    form.weights.kind.setCurrentIndex(form.weights.kind.findData("imagenet"))
    assert form.note.text() == ""
    assert "PATH" not in form.weights.toolTip() and "random init" in form.weights.toolTip()  # worded for the form
