"""The Production counters' figures: new counts 4 times a second repaint the numbers and lay nothing out again,
and a count that outgrows its quarter of the column (a long shift) is drawn smaller, whole, not cut off."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QVBoxLayout, QWidget

from engine.types import Verdict
from visinspect_gui.app import PACKAGE_DIR
from visinspect_gui.widgets.counters import CountersPanel


class _Layouts(QObject):
    """Counts the layout passes asked of the widgets it watches."""

    count = 0

    def eventFilter(self, obj, event):  # noqa: N802 - Qt's name
        self.count += event.type() == QEvent.Type.LayoutRequest
        return False


def _panel_in_a_column(qtbot) -> tuple[QWidget, CountersPanel]:
    column = QWidget()
    qtbot.addWidget(column)
    column.setStyleSheet((PACKAGE_DIR / "style.qss").read_text(encoding="utf-8"))  # the station's big figures
    column.setFixedWidth(440)
    panel = CountersPanel()
    QVBoxLayout(column).addWidget(panel)
    column.resize(440, 480)
    column.show()
    qtbot.waitExposed(column)
    return column, panel


def test_new_counts_are_repainted_without_laying_out_the_page_again(qtbot):
    column, panel = _panel_in_a_column(qtbot)
    for verdict in (Verdict.GOOD, Verdict.ANOMALY, Verdict.GOOD):  # each figure has changed and grown: a run under way
        panel.add(verdict, 0.1, fps=8.0 if verdict is Verdict.GOOD else 48.0, latency_ms=35)
        panel.flush()
        qtbot.wait(20)
    layouts = _Layouts()
    for watched in (column, panel):
        watched.installEventFilter(layouts)
    for i in range(12):  # three seconds of a line at 48 parts/s, redrawn 4 times a second
        for _ in range(12):
            panel.add(Verdict.ANOMALY if i % 3 == 0 else Verdict.GOOD, 0.2, fps=47.0 + i / 10, latency_ms=30 + i)
        panel.flush()
        qtbot.wait(5)
    assert layouts.count == 0
    assert panel._inspected.value.text() == "147" and panel.rate_label.text() == "48.1 fps"


def _inked_columns(label) -> list[int]:
    """The x of every pixel column of the label where its text colour is drawn."""
    image = label.grab().toImage()
    ink = label.palette().color(label.foregroundRole())

    def near(c: QColor) -> bool:
        return abs(c.red() - ink.red()) + abs(c.green() - ink.green()) + abs(c.blue() - ink.blue()) < 60

    return [x for x in range(image.width()) if any(near(image.pixelColor(x, y)) for y in range(image.height()))]


def test_a_count_that_outgrows_its_room_is_drawn_whole_and_smaller(qtbot):
    column, panel = _panel_in_a_column(qtbot)
    for _ in range(3):
        panel.add(Verdict.GOOD, 0.1)
        panel.flush()
        qtbot.wait(5)
    label = panel._inspected.value
    short = _inked_columns(label)
    panel.inspected = panel.good = 12_345_678  # a long shift on a fast line: wider than a quarter of the column
    panel.add(Verdict.GOOD, 0.1)
    panel.flush()
    qtbot.wait(20)
    assert label.text() == "12,345,679" and label.fontMetrics().horizontalAdvance(label.text()) > label.width()
    inked = _inked_columns(label)
    assert inked and min(inked) > 0 and max(inked) < label.width() - 1  # not cut off at either end
    assert max(inked) - min(inked) > max(short) - min(short)
    assert label.width() <= column.width() // 4  # the other counters keep their room
