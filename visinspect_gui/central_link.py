"""The station's link to the plant's central PostgreSQL: results forwarded in the background, its state in the status bar.

Set `[central] url` in station.ini (no password in it: PGPASSWORD or a pgpass file gives it), and `[central] share`
to copy anomaly frames to a mounted plant share. The local results log keeps working whatever the server does; the
forwarder thread sends what is new every few seconds. History then offers the plant's results too.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QTimer

from visinspect_gui.widgets.status_bar import ShrinkingLabel

log = logging.getLogger(__name__)
POLL_MS = 2000


class CentralLink(QObject):
    """Starts the store-and-forward thread when a central URL is set and shows where it stands."""

    def __init__(self, window, url: str | None) -> None:
        super().__init__(window)
        self.forwarder = None
        self.field = ShrinkingLabel("")
        self.field.setObjectName("CentralField")
        self.field.hide()
        if not url:
            return
        window.status.addPermanentWidget(self.field)
        try:
            from engine.central.forwarder import Forwarder

            self.forwarder = Forwarder(url, window.results.path, share=window.settings.central_share())
        except Exception as exc:  # noqa: BLE001 - a settings boundary: a bad URL or a missing package is one line
            log.warning("central store not used: %s", exc)
            window.show_message(f"Plant results store not used: {exc}", "warning")
            return
        self.forwarder.start()
        window.history.set_plant(self.forwarder.target)
        self.field.show()
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._show)
        self._timer.start()
        self._show()

    def _show(self) -> None:
        """The forwarder's state in one short field: sent, waiting, or why not."""
        s = self.forwarder.status()
        where = self.forwarder.target.display
        if s.last_error and s.share_failed:
            text, tip = "Plant: frames share unavailable", f"{s.last_error}\nResults stay in the local log and are sent once their frames can be copied."
        elif s.last_error:
            text, tip = "Plant: unreachable", f"{where}: {s.last_error}\nResults stay in the local log and are sent when it is back."
        elif s.pending:
            text, tip = f"Plant: {s.pending:,} to send", f"{where}: {s.sent:,} results sent since start"
        else:
            text, tip = "Plant: up to date" if s.last_sync else "Plant: connecting…", f"{where}: {s.sent:,} results sent since start"
        self.field.setText(text)
        self.field.setToolTip(tip)

    def shutdown(self) -> None:
        """Stop the forwarder (what is not sent yet goes at the next start)."""
        if self.forwarder is not None:
            self._timer.stop()
            if not self.forwarder.stop(timeout=5):
                log.warning("central forwarder still busy at close; the rest is sent at the next start")
