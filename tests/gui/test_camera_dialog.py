"""The Camera dialog: cameras listed by a worker, a live preview of any source, settings -> the spec OK gives."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from engine.sources import discover
from engine.sources.industrial import CameraKind, CameraSettings, TriggerMode, format_camera_spec, parse_camera_spec
from visinspect_gui.widgets.camera_dialog import CameraDialog, CameraScan
from visinspect_gui.workers import Worker

COLOURS = ((220, 30, 30), (30, 220, 30), (30, 30, 220))


@pytest.fixture
def colour_folder(tmp_path):
    """Three flat-coloured images: a previewed frame can be told apart by its colour."""
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, rgb in enumerate(COLOURS):
        cv2.imwrite(str(folder / f"p{i}.png"), np.full((48, 64, 3), rgb[::-1], np.uint8))
    return folder


@pytest.fixture
def listing(monkeypatch):
    """Wraps the real list_cameras: records the thread it ran on and holds it until the test lets it go."""
    release, threads = threading.Event(), []
    real = discover.list_cameras

    def recorded(**kwargs):
        threads.append(threading.current_thread())
        assert release.wait(10)
        return real(**kwargs)

    monkeypatch.setattr(discover, "list_cameras", recorded)
    yield release, threads, real
    release.set()


def open_dialog(qtbot, **kwargs) -> CameraDialog:
    dialog = CameraDialog(**kwargs)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def close_and_check(qtbot, dialog: CameraDialog) -> None:
    dialog.reject()
    qtbot.waitUntil(lambda: not Worker.running(), timeout=5000)


def test_device_list_fills_from_a_worker_while_the_dialog_stays_responsive(qtbot, listing, monkeypatch):
    monkeypatch.setenv("PYLON_CAMEMU", "2")
    release, threads, real = listing
    dialog = open_dialog(qtbot)
    qtbot.waitUntil(lambda: bool(threads), timeout=5000)
    assert threads[0] is not threading.main_thread()
    # the listing is held: the GUI thread still handles input meanwhile
    assert dialog.scan_status.text() == "Looking for cameras…" and not dialog.refresh_button.isEnabled()
    qtbot.keyClicks(dialog.other, "rtsp://cam.local/stream")
    assert dialog.spec() == "rtsp://cam.local/stream"
    dialog.other.clear()
    release.set()
    qtbot.waitUntil(lambda: dialog.scans_done == 1, timeout=10_000)
    shown = [dialog.devices.topLevelItem(i).text(3) for i in range(dialog.devices.topLevelItemCount())]
    rows = [dialog.devices.topLevelItem(i).data(0, 0x0100) for i in range(dialog.devices.topLevelItemCount())]
    assert shown == [info.spec for info in real()]  # every camera the engine sees, with the spec to use
    if discover.backend_status()[CameraKind.PYLON] is None:  # pypylon installed: its emulator's two cameras are listed
        assert sum(info.kind is CameraKind.PYLON for info in rows) == 2
    else:
        assert "pip install 'visinspect[pylon]'" in dialog.backend_lines.text()
    assert dialog.scan_status.text().endswith(("found.", "No camera found."))
    close_and_check(qtbot, dialog)


def test_a_missing_backend_is_named_with_how_to_add_it(qtbot):
    dialog = open_dialog(qtbot)
    qtbot.waitUntil(lambda: dialog.scans_done == 1, timeout=20_000)
    line = "pylon cameras: pip install 'visinspect[pylon]'"
    dialog._on_scanned(CameraScan([], {CameraKind.OPENCV: None, CameraKind.PYLON: line, CameraKind.GENICAM: None}))
    assert dialog.backend_lines.isVisible() and dialog.backend_lines.text() == line
    assert dialog.scan_status.text() == "No camera found." and dialog.devices.topLevelItemCount() == 0
    assert "Select a camera" in dialog.preview.text() and dialog.spec() is None
    assert not dialog.buttons.button(dialog.buttons.StandardButton.Ok).isEnabled()
    close_and_check(qtbot, dialog)


def test_preview_shows_frames_of_a_folder_source_and_stops_on_close(qtbot, colour_folder):
    dialog = open_dialog(qtbot)
    dialog.other.setText(str(colour_folder))
    qtbot.waitUntil(lambda: dialog.preview.frames_shown >= 4, timeout=10_000)  # the folder loops in the preview
    frame = dialog.preview.frame
    assert tuple(int(v) for v in frame.image[0, 0]) in COLOURS
    assert not dialog.preview.pixmap().isNull()
    assert dialog.preview.pixmap().width() <= dialog.preview.width()
    assert "64x48" in dialog.preview_note.text()
    assert dialog.spec() == str(colour_folder)
    close_and_check(qtbot, dialog)
    shown = dialog.preview.frames_shown
    qtbot.wait(200)
    assert dialog.preview.frames_shown == shown


def test_preview_of_a_video_stops_when_the_selection_changes(qtbot, tmp_path):
    video = tmp_path / "line.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    dialog = open_dialog(qtbot)
    dialog.other.setText(str(video))
    qtbot.waitUntil(lambda: dialog.preview.frames_shown >= 2, timeout=10_000)
    first_worker = dialog._preview.worker
    dialog.other.setText("")  # nothing chosen: the preview stops and says so
    qtbot.waitUntil(lambda: not first_worker.is_running(), timeout=5000)
    qtbot.waitUntil(lambda: dialog.preview.frame is None, timeout=5000)
    assert "Select a camera" in dialog.preview.text()
    close_and_check(qtbot, dialog)


def test_ok_gives_the_selected_camera_with_its_settings(qtbot, monkeypatch):
    pytest.importorskip("pypylon")
    monkeypatch.setenv("PYLON_CAMEMU", "1")
    dialog = open_dialog(qtbot)
    qtbot.waitUntil(lambda: dialog.scans_done == 1, timeout=20_000)
    rows = [dialog.devices.topLevelItem(i) for i in range(dialog.devices.topLevelItemCount())]
    pylon_rows = [r for r in rows if r.text(1) == "pylon"]
    assert pylon_rows, "the pylon emulator's camera is listed"
    dialog.devices.setCurrentItem(pylon_rows[0])
    assert dialog.form.exposure.isVisibleTo(dialog) and not dialog.form.resolution.isVisibleTo(dialog)
    qtbot.keyClicks(dialog.form.exposure, "5000")
    qtbot.keyClicks(dialog.form.roi, "0,0,320,240")
    dialog.form.trigger.setCurrentIndex(1)
    target = parse_camera_spec(pylon_rows[0].text(3)).target
    expected = format_camera_spec(
        CameraKind.PYLON, target, CameraSettings(exposure_us=5000, roi=(0, 0, 320, 240), trigger=TriggerMode.SOFTWARE)
    )
    assert dialog.spec() == expected
    assert parse_camera_spec(dialog.spec()).settings.exposure_us == 5000
    assert dialog.spec_label.toolTip() == expected and "exposure_us=5000" in dialog.spec_label.text()
    dialog.form.roi.setText("0,0,320")  # not four numbers: OK is off and the form says why
    assert not dialog.buttons.button(dialog.buttons.StandardButton.Ok).isEnabled()
    assert "four whole numbers" in dialog.form.problem.text()
    dialog.form.roi.setText("")
    with qtbot.waitSignal(dialog.accepted):
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert dialog.spec() == format_camera_spec(CameraKind.PYLON, target, CameraSettings(exposure_us=5000, trigger=TriggerMode.SOFTWARE))
    qtbot.waitUntil(lambda: not Worker.running(), timeout=5000)


def test_source_panel_camera_button_sets_the_spec_from_the_dialog(qtbot, window):
    panel = window.source_panel
    panel.camera_button.click()
    dialog = panel.camera_dialog
    assert dialog.isVisible()  # open(), not exec(): the window goes on meanwhile
    dialog.other.setText("rtsp://10.0.0.5/line")
    with qtbot.waitSignal(panel.source_changed):
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert panel.spec() == "rtsp://10.0.0.5/line"
    assert "Stream" in panel.current.text()


@pytest.mark.parametrize("trigger", [0, 1])  # free run, software trigger
def test_preview_of_an_emulated_pylon_camera(qtbot, monkeypatch, trigger):
    pytest.importorskip("pypylon")
    pytest.importorskip("engine.sources.pylon")  # the pylon source arrives with the industrial cameras
    monkeypatch.setenv("PYLON_CAMEMU", "1")
    dialog = open_dialog(qtbot)
    qtbot.waitUntil(lambda: dialog.scans_done == 1, timeout=20_000)
    row = next(dialog.devices.topLevelItem(i) for i in range(dialog.devices.topLevelItemCount()) if dialog.devices.topLevelItem(i).text(1) == "pylon")
    dialog.devices.setCurrentItem(row)
    dialog.form.trigger.setCurrentIndex(trigger)
    qtbot.waitUntil(lambda: dialog._previewing == dialog.spec(), timeout=5000)  # the preview restarted with the trigger
    before = dialog.preview.frames_shown
    qtbot.waitUntil(lambda: dialog.preview.frames_shown >= before + 3, timeout=20_000)
    assert dialog.preview.frame.image.ndim == 3 and not dialog.preview.pixmap().isNull()
    close_and_check(qtbot, dialog)
