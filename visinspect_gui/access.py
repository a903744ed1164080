"""Operator and engineer modes: the operator sees verdicts, counters and Start / Stop; an engineer PIN unlocks the rest.

Every change of mode, model or threshold is written to the results log's audit table (who, when, old, new).
"""

from __future__ import annotations

import getpass
import logging
from enum import Enum

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QInputDialog, QLineEdit, QWidget

from engine.access import PinError, check_pin, hash_pin
from engine.results import ChangeKind
from visinspect_gui.workers import Latest, call

log = logging.getLogger(__name__)
SETTLE_MS = 1500  # a threshold slider is audited once it has rested this long, not at every step of a drag


class Mode(str, Enum):
    """Who is at the station: the operator (locked) or an engineer (PIN entered, or no PIN set)."""

    OPERATOR = "operator"
    ENGINEER = "engineer"


class AccessControl(QObject):
    """The station's mode, the engineer PIN (hashed in the settings) and the audit of changes."""

    mode_changed = Signal(object)  # Mode
    refused = Signal(str)  # one sentence: why unlocking or setting the PIN did not happen

    def __init__(self, settings, results, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings, self.results = settings, results
        self.mode = Mode.OPERATOR if settings.pin_hash() else Mode.ENGINEER
        self._checker = Latest()
        self._settling: dict[ChangeKind, tuple[str, str]] = {}  # kind -> (value before the drag, latest value)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SETTLE_MS)
        self._timer.timeout.connect(self.flush)

    @property
    def who(self) -> str:
        """The account at the keyboard and its mode, for the audit table."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no user name in the environment or the password database
            user = "unknown user"
        return f"{user} ({self.mode.value})"

    @property
    def has_pin(self) -> bool:
        return self.settings.pin_hash() is not None

    # -- modes ---------------------------------------------------------------------------------

    def ask_unlock(self, parent: QWidget) -> None:
        """Ask for the engineer PIN; the check (scrypt) runs in a worker and switches the mode when it matches."""
        stored = self.settings.pin_hash()
        if stored is None:
            self._set_mode(Mode.ENGINEER)
            return
        pin, ok = QInputDialog.getText(parent, "Engineer mode", "Engineer PIN:", QLineEdit.EchoMode.Password)
        if ok:
            self._checker.start(call, check_pin, pin, stored, on_event=self._on_checked)

    def _on_checked(self, matches: bool) -> None:
        if matches:
            self._set_mode(Mode.ENGINEER)
        else:
            log.warning("engineer mode refused: wrong PIN")
            self.refused.emit("Wrong PIN: the station stays in operator mode.")

    def lock(self) -> None:
        """Back to operator mode (only possible once a PIN is set, or nobody could unlock it)."""
        if not self.has_pin:
            self.refused.emit("Set an engineer PIN first (Station → Set engineer PIN…); without one there is no lock.")
            return
        self._set_mode(Mode.OPERATOR)

    def ask_new_pin(self, parent: QWidget) -> None:
        """Set or change the engineer PIN (engineer mode only); it is stored hashed."""
        if self.mode is not Mode.ENGINEER:
            return
        pin, ok = QInputDialog.getText(parent, "Engineer PIN", "New engineer PIN (at least 4 characters):", QLineEdit.EchoMode.Password)
        if not ok:
            return
        again, ok = QInputDialog.getText(parent, "Engineer PIN", "The same PIN again:", QLineEdit.EchoMode.Password)
        if not ok:
            return
        if pin != again:
            self.refused.emit("The two PINs differ: the PIN was not changed.")
            return
        self.set_pin(pin)

    def set_pin(self, pin: str) -> bool:
        """Store a new PIN's hash; False (with refused) when the PIN breaks the rule."""
        try:
            self.settings.save_pin_hash(hash_pin(pin))
        except PinError as exc:
            self.refused.emit(f"The PIN was not changed: {exc}.")
            return False
        self.record(ChangeKind.MODE, "", "engineer PIN changed")
        return True

    def _set_mode(self, mode: Mode) -> None:
        if mode is self.mode:
            return
        self.record(ChangeKind.MODE, self.mode.value, mode.value)  # by whoever was in the old mode
        self.mode = mode
        self.mode_changed.emit(mode)

    # -- audit ---------------------------------------------------------------------------------

    def record(self, kind: ChangeKind, old: str, new: str) -> None:
        """Write one change to the audit table and the station log."""
        log.info("change: %s %s -> %s by %s", kind.value, old or "-", new or "-", self.who)
        self.results.record_change(kind, old, new, who=self.who)

    def record_settled(self, kind: ChangeKind, old: str, new: str) -> None:
        """Record a slider's change once it has rested: one row per adjustment, from where it started to where it ended."""
        start = self._settling.get(kind, (old, new))[0]
        self._settling[kind] = (start, new)
        self._timer.start()

    def flush(self) -> None:
        """Record the settled slider changes now (timer, model switch, close)."""
        self._timer.stop()
        settled, self._settling = self._settling, {}
        for kind, (old, new) in settled.items():
            if old != new:
                self.record(kind, old, new)

    def shutdown(self) -> None:
        self.flush()
        self._checker.stop()
