"""The station on the line: OPC UA / Modbus / MQTT endpoints on one LineHub, fed by the live run, and PLC recipe writes.

The endpoints named by the recipe in use (or set with Station → Line I/O…) start and stop in a worker, never on
the GUI thread; the live run publishes every result to the hub (one per PLC trigger in triggered mode). A PLC
that writes Recipe switches the station to that recipe as the engineer's menu would, restarting a running line.
"""

from __future__ import annotations

import logging
import socket

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QCheckBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QVBoxLayout

from engine.lineio.endpoints import start_endpoints, stop_endpoints
from engine.lineio.hub import LineHub
from engine.recipes import LineIOSettings, Recipe, load_recipe
from visinspect_gui.access import Mode
from visinspect_gui.widgets.status_bar import ShrinkingLabel
from visinspect_gui.workers import Latest

log = logging.getLogger(__name__)


def _restart(endpoints: list, hub: LineHub, io: LineIOSettings, *, stop) -> list:
    """Worker job: stop the running endpoints, start those io names; yields the new list (and the stop problems)."""
    problems = stop_endpoints(endpoints)
    yield start_endpoints(hub, io, station=hub.state().station) if io.any else [], problems


class LineIO(QObject):
    """The station's line endpoints, the hub the live run publishes to, and the status-bar field naming them."""

    changed = Signal(str)  # one line: what the line sees now
    recipe_requested = Signal(object)  # Recipe a PLC asked for (emitted on an endpoint's thread; queued to the GUI)

    def __init__(self, window) -> None:
        super().__init__(window)
        self.w = window
        self.hub = LineHub(station=socket.gethostname())
        self.io = LineIOSettings()
        self.triggered = False  # one inspection per PLC trigger instead of every frame
        self.endpoints: list = []
        self._job = Latest()
        self._restart_after_switch = False
        self._queued: tuple[LineIOSettings, bool] | None = None  # asked for while endpoints were still starting
        self.field = ShrinkingLabel("Line: off")
        self.field.setObjectName("LineField")
        self.field.setToolTip("The line endpoints this station serves (Station → Line I/O… or the recipe sets them)")
        window.status.addPermanentWidget(self.field)
        self.hub.set_recipe_handler(self._on_plc_recipe)
        self.recipe_requested.connect(self._switch_for_plc)
        window.recipes.recipe_applied.connect(self._on_recipe_applied)
        window.station.model_failed.connect(self._on_model_failed)

    # -- what the live run gets --------------------------------------------------------------------

    def run_options(self) -> dict:
        """live_job's line arguments: the hub while endpoints serve, and triggered mode when asked for."""
        if not self.endpoints:
            return {}
        return {"hub": self.hub, "triggered": self.triggered and any(e.triggers for e in self.endpoints)}

    # -- settings ------------------------------------------------------------------------------------

    def apply(self, io: LineIOSettings, *, triggered: bool = False) -> None:
        """Serve the endpoints io names (none: off), in a worker; the field says what happened."""
        self.io, self.triggered = io, bool(triggered)
        if self._job.busy():  # never two restarts at once: endpoints a superseded one started would keep their ports
            self._queued = (io, self.triggered)
            return
        self.field.setText("Line: starting…" if io.any else "Line: off")
        self._job.start(_restart, list(self.endpoints), self.hub, io, on_event=self._on_started, on_failed=self._on_failed,
                        on_finished=self._next)  # fmt: skip
        self.endpoints = []

    def _next(self) -> None:
        """Apply what was asked for while the last restart ran."""
        if self._queued is not None:
            (io, triggered), self._queued = self._queued, None
            self.apply(io, triggered=triggered)

    def _on_started(self, started) -> None:
        endpoints, problems = started
        self.endpoints = endpoints
        for problem in problems:
            log.warning("line endpoint did not stop cleanly: %s", problem)
        text = " · ".join(e.description for e in endpoints)
        if endpoints:
            text += " · one inspection per trigger" if self.run_options().get("triggered") else ""
        self.field.setText(f"Line: {text}" if endpoints else "Line: off")
        self.field.setToolTip("\n".join(e.description for e in endpoints) or "No line endpoint is served")
        self.changed.emit(self.field.text())
        if endpoints:
            log.info("line endpoints: %s", text)
            if self.w.station.is_running:
                self.w.show_message("Line I/O is ready; it serves the live run from its next start.", "info")

    def _on_failed(self, text: str) -> None:
        self.field.setText("Line: failed")
        self.field.setToolTip(text)
        self.w.show_message(f"Line I/O could not start: {text}", "error")
        self.changed.emit(self.field.text())

    def ask(self) -> None:
        """Station → Line I/O…: edit the endpoints (engineer mode)."""
        if self.w.access.mode is not Mode.ENGINEER:
            self.w.show_message("Changing the line I/O needs engineer mode (Station → Engineer mode…).", "warning")
            return
        dialog = LineIODialog(self.io, self.triggered, self.w)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.apply(dialog.io, triggered=dialog.triggered)

    # -- recipes --------------------------------------------------------------------------------------

    def _on_recipe_applied(self, recipe: Recipe) -> None:
        """A recipe is in use: the PLC sees its name, and its line settings are served (when they differ)."""
        self.hub.set_recipe(recipe.name)
        self.hub.set_error("")
        if (recipe.io, recipe.triggered) != (self.io, self.triggered) and (recipe.io.any or self.io.any):
            self.apply(recipe.io, triggered=recipe.triggered)
        if self._restart_after_switch:
            self._restart_after_switch = False
            self.w.source_panel.start_button.click()

    def _on_plc_recipe(self, name: str) -> None:
        """On an endpoint's thread: a recipe that cannot be read is refused now (LastError); else the GUI switches to it."""
        self.recipe_requested.emit(load_recipe(name))

    def _switch_for_plc(self, recipe: Recipe) -> None:
        """A PLC asked for a recipe: stop a running line, switch as the Recipe menu would, start again once it is in."""
        log.info("PLC asked for recipe %s", recipe.name)
        self.w.show_message(f"The PLC asked for recipe {recipe.name}.", "info")
        if self.w.station.is_running:
            self._restart_after_switch = True
            self.w.station.stop()
        self.w.recipes.apply_recipe(recipe, who="plc")

    def _on_model_failed(self, text: str) -> None:
        if self._restart_after_switch:
            self._restart_after_switch = False
            self.hub.set_error(f"recipe not switched: {text}")

    def shutdown(self) -> None:
        """Stop the endpoints (the window waits for the worker)."""
        self.hub.set_recipe_handler(None)
        self._job.start(_restart, list(self.endpoints), self.hub, LineIOSettings())
        self.endpoints = []


class LineIODialog(QDialog):
    """Where the station talks to the line: OPC UA and Modbus servers, an MQTT broker, and triggered mode."""

    def __init__(self, io: LineIOSettings, triggered: bool, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Line I/O")
        self.setMinimumWidth(480)
        layout = QVBoxLayout(self)
        note = QLabel("Addresses as HOST:PORT. 127.0.0.1 serves this PC only; on any other address OPC UA writes need a user "
                      "from the line users file (docs/line-integration.md). Leave a field empty to not use it.")  # fmt: skip
        note.setWordWrap(True)
        layout.addWidget(note)
        form = QFormLayout()
        self.fields = {}
        for key, label, example in (("opcua", "OPC UA server", "127.0.0.1:4840"), ("modbus", "Modbus TCP server", "127.0.0.1:5020"),
                                    ("mqtt", "MQTT broker", "broker.plant:1883")):  # fmt: skip
            edit = QLineEdit(getattr(io, key) or "")
            edit.setPlaceholderText(example)
            self.fields[key] = edit
            form.addRow(label, edit)
        self.triggered_box = QCheckBox("One inspection per PLC trigger (otherwise every frame)")
        self.triggered_box.setChecked(triggered)
        form.addRow(self.triggered_box)
        layout.addLayout(form)
        self.error = QLabel("")
        self.error.setObjectName("FieldError")
        self.error.setWordWrap(True)
        layout.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.io, self.triggered = io, triggered

    def _accept(self) -> None:
        values = {k: (e.text().strip() or None) for k, e in self.fields.items()}
        try:
            self.io = LineIOSettings(**values)
        except ValueError as exc:
            self.error.setText(str(exc))
            return
        self.triggered = self.triggered_box.isChecked()
        self.accept()
