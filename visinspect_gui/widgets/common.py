"""Small helpers the panels share: restyling after a property change, section titles, formatting."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QEvent, QModelIndex, QObject, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QIcon, QPainter, QPixmap, QPolygonF, QWheelEvent
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QApplication,
    QFrame,
    QLabel,
    QScrollArea,
    QTableView,
    QVBoxLayout,
    QWidget,
)

TAB_ROOM = QSize(900, 560)  # what a tab gets in a 1280x720 window beside the 350 px sidebar
QWIDGETSIZE_MAX = 16_777_215  # Qt's largest widget size: no maximum


def repolish(widget: QWidget) -> None:
    """Re-apply the style sheet after a dynamic property used by a QSS selector changed."""
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)
    widget.update()


def set_prop(widget: QWidget, name: str, value, *, children: bool = False) -> None:
    """Set a QSS-visible property and restyle when it changed (children too, for descendant selectors)."""
    if widget.property(name) != value:
        widget.setProperty(name, value)
        repolish(widget)
        if children:
            for child in widget.findChildren(QWidget):
                repolish(child)


class ListTableModel(QAbstractTableModel):
    """Read-only table over a Python list `rows` with fixed column titles; subclasses supply data()."""

    columns: tuple[str, ...] = ()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list = []

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802 - Qt API
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.columns[section]
        return None


class Card(QFrame):
    """A titled panel: a small caps title above the content, on a slightly raised background."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Card")
        self.body = QVBoxLayout(self)
        self.body.setContentsMargins(12, 10, 12, 12)
        self.body.setSpacing(8)
        self.title = QLabel(title.upper())
        self.title.setObjectName("CardTitle")
        self.body.addWidget(self.title)


def hold_size(widget: QWidget) -> None:
    """Fix a widget at the size the layout gave it: a change inside it then repaints it and lays nothing else out."""
    widget.setFixedSize(widget.size())


def release_size(widget: QWidget) -> None:
    """Let the layout size the widget again (undoes hold_size)."""
    widget.setMinimumSize(0, 0)
    widget.setMaximumSize(QWIDGETSIZE_MAX, QWIDGETSIZE_MAX)


class SteadyLabel(QLabel):
    """A label for a figure that changes several times a second (a counter, a rate): a new text is repainted, not laid out.

    Qt lays the whole window out again after each new text of a label whose size may change (on the Live tab, the
    counters did so 4 times a second). Once shown, this label holds the size the layout gave it, and lets go of it
    only for a text that needs more room or a new font. For a label in a column whose width does not change.
    """

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self._held = False
        self._regrowing = False  # let go for a longer text: held again at the size the layout then gives it

    def setText(self, text: str) -> None:  # noqa: N802 - Qt API
        if text == self.text():
            return
        if not self._held and self.isVisible():
            self._hold()
        super().setText(text)
        if self._held and self._outgrown(self.sizeHint()):
            self._let_go()
            self._regrowing = True

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        if self._regrowing and self.isVisible():
            self._regrowing = False
            self._hold()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt API
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange) and self._held:
            self._let_go()
        super().changeEvent(event)

    def _outgrown(self, hint: QSize) -> bool:
        """True when the text just set needs more room than the size held."""
        return hint.width() > self.width() or hint.height() > self.height()

    def _hold(self) -> None:
        """Fix the size to the one the layout gave (one more layout pass; none at later texts that fit)."""
        self._held = True
        hold_size(self)

    def _let_go(self) -> None:
        """Let the layout size the label again."""
        self._held = False
        release_size(self)


class FigureLabel(SteadyLabel):
    """A big figure (a count, a yield) that shrinks to its width rather than be cut off at both ends.

    Four counters share the side column, a quarter each: five digits at the counters' size. At 50 parts a
    second the count passes that within the first hour of a shift.
    """

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt API
        hint = super().minimumSizeHint()  # asks no more width than four digits: the rest is shrunk to fit
        return QSize(min(hint.width(), self.fontMetrics().horizontalAdvance("0000")), hint.height())

    def _outgrown(self, hint: QSize) -> bool:
        return hint.height() > self.height()  # a wider text is drawn smaller: only a taller font needs room

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        room = self.contentsRect()
        needed = self.fontMetrics().horizontalAdvance(self.text())
        if needed <= room.width() or not self.text():
            super().paintEvent(event)
            return
        font = QFont(self.font())
        if font.pixelSize() > 0:
            font.setPixelSize(max(1, int(font.pixelSize() * room.width() / needed)))
        else:
            font.setPointSizeF(max(1.0, font.pointSizeF() * room.width() / needed))
        painter = QPainter(self)
        painter.setFont(font)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(room, int(self.alignment()), self.text())
        painter.end()


class FoldingLabel(QLabel):
    """A wrapping label that takes no room while it has nothing to say."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setWordWrap(True)
        self._fold()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt API
        super().setText(text)
        self._fold()

    def _fold(self) -> None:
        if not self.text():
            self.hide()
        elif self.parent() is not None:  # never shown as a window of its own
            self.show()


def hint(text: str) -> QLabel:
    """A muted, wrapping explanatory label."""
    label = QLabel(text)
    label.setObjectName("Hint")
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def elide_middle(text: str, limit: int = 60) -> str:
    """Shorten a long path in the middle, keeping its start and file name."""
    if len(text) <= limit:
        return text
    keep = (limit - 1) // 2
    return f"{text[:keep]}…{text[-(limit - 1 - keep):]}"


def breakable(text: str) -> str:
    """The text with a zero-width break after each path separator, so a wrapping label can wrap a long path."""
    return text.replace("/", "/\u200b").replace("\\", "\\\u200b")


def scrolled(widget: QWidget) -> QScrollArea:
    """The widget in a frameless scroll area that resizes it: a page that never asks for more room than it gets."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(widget)
    return area


def glyph_icon(kind: str, colour: str = "#ffffff", size: int = 32) -> QIcon:
    """A crisp media glyph drawn with QPainter (play, stop, step), independent of the installed fonts."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(colour))
    s = size
    if kind == "play":
        painter.drawPolygon(QPolygonF([QPointF(s * 0.25, s * 0.18), QPointF(s * 0.82, s * 0.5), QPointF(s * 0.25, s * 0.82)]))
    elif kind == "stop":
        painter.drawRoundedRect(QRectF(s * 0.22, s * 0.22, s * 0.56, s * 0.56), s * 0.06, s * 0.06)
    elif kind == "step":
        painter.drawPolygon(QPolygonF([QPointF(s * 0.18, s * 0.2), QPointF(s * 0.64, s * 0.5), QPointF(s * 0.18, s * 0.8)]))
        painter.drawRect(QRectF(s * 0.68, s * 0.2, s * 0.13, s * 0.6))
    else:
        raise ValueError(f"unknown glyph {kind!r}")
    painter.end()
    return QIcon(pixmap)


THRESHOLD_DECIMALS = 4


def format_threshold(value: float) -> str:
    """A decision threshold as every panel shows it (4 decimals), so the panels, the report and messages agree."""
    return f"{value:.{THRESHOLD_DECIMALS}f}"


class _WheelOnlyWhenFocused(QObject):
    """Keeps the wheel from an unfocused field and hands it to the scroll area it sits in, which scrolls instead."""

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        if event.type() != QEvent.Type.Wheel or obj.hasFocus():
            return False
        area = obj.parentWidget()
        while area is not None and not isinstance(area, QAbstractScrollArea):
            area = area.parentWidget()
        if area is None:
            event.ignore()  # ignored: Qt offers it to the parent widgets
            return True
        viewport = area.viewport()
        pos = QPointF(obj.mapTo(viewport, event.position().toPoint()))
        QApplication.sendEvent(viewport, QWheelEvent(pos, event.globalPosition(), event.pixelDelta(), event.angleDelta(),
                                                     event.buttons(), event.modifiers(), event.phase(), event.inverted()))  # fmt: skip
        event.accept()
        return True


def wheel_only_when_focused(*widgets: QWidget) -> None:
    """Scrolling a page must not change the combo or spin box under the pointer: the wheel reaches one only once it has focus."""
    for widget in widgets:
        widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        widget.installEventFilter(_WheelOnlyWhenFocused(widget))


def table_font_metrics(table: QTableView) -> tuple[QFontMetrics, QFontMetrics]:
    """The metrics of a table's cells and of its bold header labels, in the style sheet's fonts (not the defaults)."""
    header = table.horizontalHeader()
    table.ensurePolished()
    header.ensurePolished()
    bold = header.font()
    bold.setBold(True)
    return table.fontMetrics(), QFontMetrics(bold)
