"""The inline message area: the latest problem or notice in one plain sentence, coloured by how serious it is."""

from __future__ import annotations

import logging

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

from visinspect_gui.widgets.common import set_prop

log = logging.getLogger(__name__)
LEVELS = ("info", "warning", "error")
INFO_HIDE_MS = 8000


class MessageBar(QFrame):
    """Shows one message at a time above the image; errors stay until dismissed or replaced, notices fade."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MessageBar")
        self.setProperty("level", "info")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 6, 6)
        self.icon = QLabel()
        self.icon.setObjectName("MessageIcon")
        self.text = QLabel()
        self.text.setObjectName("MessageText")
        self.text.setWordWrap(True)
        close = QToolButton()
        close.setObjectName("MessageClose")
        close.setText("✕")
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

    def show_message(self, text: str, level: str = "info") -> None:
        """Show text (one sentence) at level info, warning or error, and log it."""
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
        getattr(log, {"info": "info", "warning": "warning", "error": "error"}[level])("operator message: %s", text)
        self.text.setText(text)
        self.icon.setText({"info": "ℹ", "warning": "⚠", "error": "⛔"}[level])
        set_prop(self, "level", level)
        self.show()
        if level == "info":
            self._timer.start(INFO_HIDE_MS)
        else:
            self._timer.stop()
