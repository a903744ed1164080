"""The inline message area: the latest problem or notice in one plain sentence, coloured by how serious it is."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QStyle, QToolButton, QWidget

from visinspect_gui.widgets.common import set_prop

log = logging.getLogger(__name__)
LEVELS = ("info", "warning", "error")
INFO_HIDE_MS = 8000
BAR_HEIGHT = 34
_ICONS = {
    "info": QStyle.StandardPixmap.SP_MessageBoxInformation,
    "warning": QStyle.StandardPixmap.SP_MessageBoxWarning,
    "error": QStyle.StandardPixmap.SP_MessageBoxCritical,
}  # Qt's own icons: a glyph the font lacks would render as an empty box


class _ElidedLabel(QLabel):
    """One line that ends in … when it does not fit; the whole sentence is its tooltip."""

    def __init__(self) -> None:
        super().__init__()
        self.full_text = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def set_full_text(self, text: str) -> None:
        self.full_text = text
        self.setToolTip(text)
        self._elide()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        self.setText(self.fontMetrics().elidedText(self.full_text, Qt.TextElideMode.ElideRight, max(self.width(), 40)))


class MessageBar(QFrame):
    """One message at a time beside the tabs, one line high (elided, whole in its tooltip and the status bar),
    so showing it never moves the tabs under the mouse. Errors stay until dismissed or replaced; notices fade."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MessageBar")
        self.setProperty("level", "info")
        self.setFixedHeight(BAR_HEIGHT)
        self.setMinimumWidth(160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 2, 4, 2)
        self.icon = QLabel()
        self.icon.setObjectName("MessageIcon")
        self.text = _ElidedLabel()
        self.text.setObjectName("MessageText")
        close = QToolButton()
        close.setObjectName("MessageClose")
        close.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_TitleBarCloseButton))
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout.addWidget(self.icon)
        layout.addWidget(self.text, 1)
        layout.addWidget(close)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        self.hide()

    @property
    def level(self) -> str:
        """info, warning or error: how serious the message shown is."""
        return self.property("level")

    @property
    def message(self) -> str:
        """The whole sentence shown (it may be elided on screen)."""
        return self.text.full_text

    def show_message(self, text: str, level: str = "info") -> None:
        """Show text (one sentence) at level info, warning or error, and log it."""
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
        getattr(log, level)("operator message: %s", text)
        self.text.set_full_text(text)
        self.icon.setPixmap(self.style().standardIcon(_ICONS[level]).pixmap(18, 18))
        set_prop(self, "level", level)
        self.show()
        if level == "info":
            self._timer.start(INFO_HIDE_MS)
        else:
            self._timer.stop()
