"""The station remembers the operator's last source and review folder across launches."""

from __future__ import annotations

from visinspect_gui.settings import StationSettings


def test_next_launch_comes_back_on_the_last_source_and_review_folder(make_window, model_file, line_folder, qtbot, run_to_end):
    first = make_window()
    with qtbot.waitSignal(first.station.model_loaded, timeout=30_000):
        first.open_model(model_file)
    first.source_panel.set_source(str(line_folder), loop=False, max_fps=10.0)
    assert run_to_end(first) == "ended"
    with qtbot.waitSignal(first.review.review_finished, timeout=60_000):
        assert first.review.start(str(line_folder))
    first.close()

    second = make_window()  # the same data folder, as the next launch from the shortcut
    assert second.source_panel.spec() == str(line_folder)
    assert second.source_panel.max_fps == 10.0 and second.source_panel.loop is False
    assert "Folder" in second.source_panel.current.text()
    assert second.review.folder == str(line_folder)
    assert second.review.run_button.isEnabled() is False  # no model yet: nothing starts by itself
    assert second.station.state == "idle" and not second.station.is_running


def test_a_damaged_or_foreign_settings_file_is_ignored(tmp_path, private_folders, qtbot):
    data, _ = private_folders
    (data / "station.ini").write_text("[source]\nspec=not json {\nmax_fps=\"fast\"\n", encoding="utf-8")
    settings = StationSettings(data)
    assert settings.last_source() is None
    assert settings.last_review_folder() is None
    settings.save_source(["a.png", "b.png"], loop=True, max_fps=None)
    assert settings.last_source() == (["a.png", "b.png"], True, None)  # at once, while the worker writes
    assert settings.wait()
    assert StationSettings(data).last_source() == (["a.png", "b.png"], True, None)


def test_a_camera_with_a_resolution_is_shown_and_remembered(make_window):
    window = make_window()
    window.source_panel.set_source("0@1280x720")
    assert window.source_panel.current.text() == "Camera 0 at 1280x720"
    window.settings.save_source(window.source_panel.spec(), loop=False, max_fps=None)  # as a started run does
    window.close()
    again = make_window()
    assert again.source_panel.spec() == "0@1280x720" and again.source_panel.current.text() == "Camera 0 at 1280x720"
