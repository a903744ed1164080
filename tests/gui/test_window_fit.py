"""Issue 11: the station fits a 1280x720 screen on every tab, never grows by itself, and says true things about itself."""

from __future__ import annotations

import logging

import pytest
from PySide6.QtWidgets import QApplication

SMALL = (1280, 720)


@pytest.mark.parametrize("title", ["Live", "Review", "History", "Train", "Evaluate"])
def test_every_tab_fits_a_1280x720_screen(loaded_window, title, qtbot):
    w = loaded_window
    w.resize(*SMALL)
    index = next(i for i in range(w.tabs.count()) if w.tabs.tabText(i) == title)
    w.tabs.setCurrentIndex(index)
    qtbot.wait(50)
    hint = w.minimumSizeHint()
    assert hint.width() <= SMALL[0] and hint.height() <= SMALL[1], f"{title} needs {hint.width()}x{hint.height()}"
    assert (w.width(), w.height()) == SMALL
    area = w.tabs.widget(index)  # the page's scroll area: at 1280x720 the page fits without scrolling
    assert not area.horizontalScrollBar().isVisible() and not area.verticalScrollBar().isVisible()


def test_the_window_never_grows_and_the_message_bar_never_moves_the_tabs(loaded_window, qtbot):
    w = loaded_window
    w.resize(*SMALL)
    qtbot.wait(50)
    top = w.tabs.mapTo(w, w.tabs.rect().topLeft()).y()
    tabs_before = [w.tabs.tabBar().tabRect(i) for i in range(w.tabs.count())]
    page_before = w.tabs.widget(0).geometry()
    long_sentence = "The results log could not be written: " + "disk full on /very/long/path/" * 20
    w.show_message(long_sentence, "error")
    QApplication.processEvents()
    assert w.tabs.mapTo(w, w.tabs.rect().topLeft()).y() == top  # the tabs stay where the mouse expects them
    assert [w.tabs.tabBar().tabRect(i) for i in range(w.tabs.count())] == tabs_before
    assert w.tabs.widget(0).geometry() == page_before and w.messages.isVisible()
    assert w.messages.message == long_sentence and w.messages.text.toolTip() == long_sentence
    assert w.messages.text.text().endswith("…")  # one line, elided: the bar keeps its height
    w.messages.hide()
    QApplication.processEvents()
    assert w.tabs.mapTo(w, w.tabs.rect().topLeft()).y() == top
    w.status.set_source_state("Running: folder " + "/deep" * 80)
    w.status.set_device("CPU: Intel(R) Xeon(R) Platinum 8480+ with a very long marketing name, 2 threads · int8")
    w.status.set_model("a product with a long name (a-model-file-with-a-long-name-2026-11-30.safetensors)")
    QApplication.processEvents()
    assert (w.width(), w.height()) == SMALL and w.minimumSizeHint().width() <= SMALL[0]  # the status bar elides


def test_window_opens_inside_a_small_screen(make_window, monkeypatch):
    w = make_window()
    screen = w.screen().availableGeometry()
    w.fit_to_screen()
    assert w.width() <= screen.width() and w.height() <= screen.height()


def test_title_banner_and_help_say_true_things(loaded_window, model_file):
    w = loaded_window
    assert w.windowTitle().count("VisInspect") <= 1 and "Inspection Station" in w.windowTitle()
    assert model_file.name in w.windowTitle()
    assert w.live.banner.verdict_label.text() == "READY" and "Load a model" not in w.live.banner.detail_label.text()
    assert model_file.name in w.live.banner.detail_label.text()
    help_menu = next(a.menu() for a in w.menuBar().actions() if a.text() == "&Help")
    entries = [a.text() for a in help_menu.actions() if a.text()]
    assert {"About VisInspect", "Documentation", "Open log folder"} <= set(entries)
    from visinspect_gui.about import about_html

    text = about_html(w.station.inspector, log_folder=w.log_folder)
    for expected in ("torch", "PySide6", "numpy", w.station.inspector.ref.sha256, str(w.log_folder)):
        assert expected in text


def test_message_icons_come_from_qt_not_the_font(window):
    for level in ("info", "warning", "error"):
        window.show_message(f"a {level}", level)
        pixmap = window.messages.icon.pixmap()
        assert pixmap is not None and not pixmap.isNull()
        assert window.messages.icon.text() == ""


def test_the_log_names_the_arguments_it_started_with(monkeypatch, caplog, tmp_path):
    from visinspect_gui import app

    monkeypatch.setattr(app, "setup_logging", lambda: tmp_path / "station.log")

    class Stop(Exception):
        pass

    def stop(*_a, **_k):
        raise Stop

    monkeypatch.setattr(app, "setup_application", stop)
    with caplog.at_level(logging.INFO, logger="visinspect_gui"), pytest.raises(Stop):
        app.main(["--no-demo", "--precision", "fp32"])
    line = next(r.getMessage() for r in caplog.records if "station starting" in r.getMessage())
    assert line.endswith("--no-demo --precision fp32") and "()" not in line


def test_scrolling_the_sidebar_never_moves_a_threshold_or_a_choice(loaded_window):
    from tests.gui.test_train_eval_fit import wheel

    mp = loaded_window.model_panel
    before = (mp.decision_threshold, mp.box_threshold.value(), mp.opacity.value(), mp.colormap_combo.currentIndex(),
              mp.scale_combo.currentIndex(), loaded_window.source_panel.rate_combo.currentIndex())  # fmt: skip
    for widget in (mp.threshold.slider, mp.box_threshold.slider, mp.opacity.slider, mp.colormap_combo, mp.scale_combo,
                   loaded_window.source_panel.rate_combo):  # fmt: skip
        wheel(widget, -1)
    after = (mp.decision_threshold, mp.box_threshold.value(), mp.opacity.value(), mp.colormap_combo.currentIndex(),
             mp.scale_combo.currentIndex(), loaded_window.source_panel.rate_combo.currentIndex())  # fmt: skip
    assert after == before
