"""The viewer's picture and defect boxes as an operator sees them: the right pixels, boxes on their defects, labels
readable at any zoom and never left behind."""

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QImage

from engine.types import Box
from visinspect_gui.widgets.frame_items import BOX_COLOUR
from visinspect_gui.widgets.viewer import ImageViewer

RED = (BOX_COLOUR.red(), BOX_COLOUR.green(), BOX_COLOUR.blue())


def _screen(viewer, qtbot) -> np.ndarray:
    """The viewer as drawn on screen, RGB (H, W, 3)."""
    qtbot.wait(20)
    image = viewer.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def _box_coloured(screen: np.ndarray) -> np.ndarray:
    """Where the screen shows the box colour."""
    return np.all(np.abs(screen.astype(int) - RED) <= 12, axis=2)


@pytest.fixture
def viewer(qtbot):
    view = ImageViewer()
    view.resize(400, 400)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    return view


def _to_screen(viewer, x: float, y: float) -> tuple[int, int]:
    """Screen pixel (column, row) of a frame pixel."""
    point = viewer.mapFromScene(viewer.view.mapViewToScene(QPointF(x, y)))
    return point.x(), point.y()


def test_a_crop_of_a_wider_frame_is_shown_with_its_own_pixels(viewer, qtbot):
    wide = np.zeros((100, 300, 3), np.uint8)
    wide[:, :100] = (200, 0, 0)
    wide[:, 100:200] = (0, 200, 0)  # the crop: green
    wide[:, 200:] = (0, 0, 200)
    viewer.show_image(wide[:, 100:200])  # a view with the wide frame's row stride, as an ROI crop is
    screen = _screen(viewer, qtbot)
    x, y = _to_screen(viewer, 50, 50)
    assert tuple(screen[y, x]) == (0, 200, 0)


def test_boxes_sit_on_their_defects_and_labels_keep_their_size_at_any_zoom(viewer, qtbot):
    frame = np.full((200, 200, 3), 90, np.uint8)
    viewer.show_image(frame)
    viewer.set_boxes([Box(60, 80, 120, 140, score=0.9, level=0.75)])
    assert viewer.boxes_drawn == 1 and viewer.box_labels == ["0.75"]
    label_heights = []
    for zoom in (1.0, 0.5):  # 0.5: zoomed in twice
        viewer.fit()
        viewer.view.scaleBy((zoom, zoom))
        screen = _screen(viewer, qtbot)
        red = _box_coloured(screen)
        left, top = _to_screen(viewer, 60, 80)
        right, bottom = _to_screen(viewer, 120, 140)
        assert red[(top + bottom) // 2, left - 2 : left + 3].any() and red[(top + bottom) // 2, right - 2 : right + 3].any()
        assert not red[top + 5 : bottom - 5, left + 5 : right - 5].any()  # an outline: the defect stays visible
        column = red[: top - 2, left + 2]  # the label's fill, just above the box's left corner
        label_heights.append(int(column.sum()))
    assert label_heights[0] > 8 and abs(label_heights[0] - label_heights[1]) <= 1


def test_a_box_at_the_top_edge_keeps_its_label_on_the_frame_and_removed_boxes_leave_nothing(viewer, qtbot):
    frame = np.full((200, 200, 3), 90, np.uint8)
    viewer.show_image(frame)
    viewer.set_boxes([Box(150, 0, 200, 30, score=1.0)])
    screen = _screen(viewer, qtbot)
    red = _box_coloured(screen)
    left, top = _to_screen(viewer, 0, 0)
    right, bottom = _to_screen(viewer, 200, 200)
    assert red.any() and not red[: top - 2].any() and not red[:, right + 3 :].any()  # nothing above or right of the frame
    viewer.set_boxes([])
    assert viewer.boxes_drawn == 0
    assert not _box_coloured(_screen(viewer, qtbot)).any()
