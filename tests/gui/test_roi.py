"""The ROI on the live viewer: dragged in engineer mode, in image pixels, shown dashed, remembered, cleared."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt

from visinspect_gui.access import Mode


def on_screen(viewer, x: float, y: float):
    """The viewport position where image pixel (x, y) is drawn."""
    return viewer.mapFromScene(viewer.view.mapViewToScene(QPointF(x, y)))


def drag(qtbot, viewer, start, end) -> None:
    port = viewer.viewport()
    qtbot.mousePress(port, Qt.MouseButton.LeftButton, pos=on_screen(viewer, *start))
    qtbot.mouseMove(port, on_screen(viewer, (start[0] + end[0]) / 2, (start[1] + end[1]) / 2))
    qtbot.mouseMove(port, on_screen(viewer, *end))
    qtbot.mouseRelease(port, Qt.MouseButton.LeftButton, pos=on_screen(viewer, *end))


def show_frame(qtbot, window, h=120, w=200):
    viewer = window.live.viewer
    viewer.show_image(np.full((h, w, 3), 90, np.uint8))
    viewer.fit()
    qtbot.wait(50)  # the view box applies its range on the next event-loop turn
    return viewer


def near(a, b, tol=2) -> bool:
    return a is not None and all(abs(p - q) <= tol for p, q in zip(a, b))


def test_drag_draws_the_roi_in_image_pixels_shown_dashed_and_kept(qtbot, make_window):
    window = make_window()
    viewer, tool = show_frame(qtbot, window), window.roi_tool
    drag(qtbot, viewer, (20, 10), (60, 50))  # not in draw mode: a drag pans, no ROI
    assert tool.roi is None and not tool.item.isVisible()
    tool.draw_button.click()
    drag(qtbot, viewer, (60, 70), (20, 30))  # drawn from bottom-right to top-left: the same rectangle
    assert near(tool.roi, (20, 30, 40, 40)), tool.roi
    assert tool.item.isVisible() and tool.item.pen().style() == Qt.PenStyle.DashLine
    assert tool.item.rect().getRect() == tuple(float(v) for v in tool.roi)
    assert window.station.roi == tool.roi and not tool.drawing
    assert window.settings.wait()
    again = make_window()
    assert again.roi_tool.roi == tool.roi and again.roi_tool.item.isVisible()  # remembered for the next launch


def test_roi_is_clipped_to_the_frame_and_cleared_by_esc_and_the_button(qtbot, make_window):
    window = make_window()
    viewer, tool = show_frame(qtbot, window), window.roi_tool
    tool.draw_button.click()
    drag(qtbot, viewer, (150, 80), (260, 200))  # past the frame's corner
    assert near(tool.roi, (150, 80, 50, 40)) and tool.roi[0] + tool.roi[2] <= 200 and tool.roi[1] + tool.roi[3] <= 120
    viewer.setFocus()
    qtbot.keyClick(viewer, Qt.Key.Key_Escape)
    assert tool.roi is None and not tool.item.isVisible() and window.station.roi is None
    tool.set_roi((5, 5, 20, 20))
    assert tool.clear_button.isEnabled()
    tool.clear_button.click()
    assert tool.roi is None and window.settings.roi() is None


def test_operator_sees_the_roi_but_cannot_draw_or_clear_it(qtbot, make_window):
    window = make_window()
    viewer, tool = show_frame(qtbot, window), window.roi_tool
    tool.set_roi((10, 10, 30, 30))
    assert window.access.set_pin("4711")
    window.access.lock()
    assert window.access.mode is Mode.OPERATOR
    assert not tool.bar.isVisible() and tool.item.isVisible()
    viewer.setFocus()
    qtbot.keyClick(viewer, Qt.Key.Key_Escape)
    assert tool.roi == (10, 10, 30, 30)
    assert not any(a.isEnabled() for a in window.menu_actions.engineer_only if a.text() in ("Clear ROI", "Draw ROI on the live image"))


def test_a_run_with_an_roi_shows_only_it_and_a_roi_drawn_on_it_is_in_camera_pixels(loaded_window, line_folder, qtbot, run_to_end):
    w = loaded_window
    w.source_panel.set_source(str(line_folder))
    w.roi_tool.set_roi((10, 20, 100, 80))
    assert run_to_end(w) == "ended"
    viewer, tool = w.live.viewer, w.roi_tool
    assert viewer.image.shape[:2] == (80, 100)  # only the ROI was inspected and is shown
    assert tool.item.rect().getRect() == (0.0, 0.0, 100.0, 80.0)  # the dashed outline is the frame shown
    viewer.fit()
    qtbot.wait(50)
    tool.draw_button.click()
    drag(qtbot, viewer, (20, 10), (60, 50))  # inside the part shown: camera pixels are offset by the ROI's corner
    assert near(tool.roi, (30, 30, 40, 40)), tool.roi
    assert near(tool.item.rect().getRect(), (20, 10, 40, 40))
