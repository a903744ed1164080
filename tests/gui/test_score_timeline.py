"""The Production panel's timeline: recent scores, coloured by verdict, at their height, against the threshold."""

from __future__ import annotations

from PySide6.QtGui import QColor

from engine.types import Verdict
from visinspect_gui.widgets.counters import TIMELINE_POINTS, CountersPanel
from visinspect_gui.widgets.verdict_style import VERDICT_RGB

GOOD_RGB, ANOMALY_RGB = VERDICT_RGB[Verdict.GOOD], VERDICT_RGB[Verdict.ANOMALY]


def _near(colour: QColor, rgb, tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip((colour.red(), colour.green(), colour.blue()), rgb))


def _colours_in(image, x: int, y0: int, y1: int) -> list[QColor]:
    return [image.pixelColor(x + dx, y) for dx in (-1, 0, 1) for y in range(max(0, y0), min(image.height(), y1))]


def test_a_defect_shows_as_a_red_dot_high_on_the_timeline_and_a_good_part_as_a_green_dot_low(qtbot):
    panel = CountersPanel()
    qtbot.addWidget(panel)
    panel.resize(440, 420)
    panel.show()
    panel.add(Verdict.GOOD, 0.05)
    panel.add(Verdict.ANOMALY, 0.95)
    panel.flush()
    timeline = panel.plot
    assert timeline.scores == (0.05, 0.95)
    image = timeline.grab().toImage()
    rect = timeline._plot_rect()
    newest_x, previous_x = round(rect.right()), round(rect.right() - rect.width() / (TIMELINE_POINTS - 1))
    high, low = round(rect.bottom() - 0.95 * rect.height()), round(rect.bottom() - 0.05 * rect.height())
    assert any(_near(c, ANOMALY_RGB) for c in _colours_in(image, newest_x - 2, high - 3, high + 4))
    assert not any(_near(c, ANOMALY_RGB) for c in _colours_in(image, newest_x - 2, low - 3, low + 4))
    assert any(_near(c, GOOD_RGB) for c in _colours_in(image, previous_x, low - 3, low + 4))


def test_the_timeline_keeps_the_most_recent_parts_and_reset_clears_it(qtbot):
    panel = CountersPanel()
    qtbot.addWidget(panel)
    for i in range(TIMELINE_POINTS + 25):
        panel.add(Verdict.GOOD, (i % 100) / 100)
    panel.flush()
    assert len(panel.plot.scores) == TIMELINE_POINTS
    assert panel.plot.scores[-1] == ((TIMELINE_POINTS + 24) % 100) / 100
    panel.set_threshold(0.3)
    assert panel.plot.threshold == 0.3
    panel.reset()
    assert panel.plot.scores == () and panel.inspected == 0
