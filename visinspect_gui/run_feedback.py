"""What the station's live run does, told to the operator: banner, status bar and messages follow its events."""

from __future__ import annotations

import time

from visinspect_gui.station import RunState

EVENT_LEVELS = {
    "lost": "error", "recovered": "info", "stalled": "warning", "file_error": "warning",
    "resolution_changed": "info", "empty_frame": "warning", "ended": "info",
}  # fmt: skip


LOG_CHECK_S = 2.0  # while results stream in, the results log's health and the frames' size are checked this often
DROPPED_EVERY_S = 0.25  # a free-running camera drops frames between most results: the count is redrawn at this pace


class RunFeedback:
    """Turns the Station's signals into what the window shows; a verdict is never left up as current after it."""

    def __init__(self, window) -> None:
        self.w = window
        self.starting: tuple | None = None  # (spec, loop, max_fps) of the run being opened: saved once it opens
        self._dropped = 0  # the dropped-frames count shown
        self._dropped_latest = 0  # the newest result's count (shown within DROPPED_EVERY_S, and when the run ends)
        self._dropped_at = 0.0  # time.monotonic() when the count shown was set
        self._log_checked = 0.0  # time.monotonic() of the last results-log check

    def on_result_ready(self, result) -> None:
        """Show a live result; check the results log now and then (every LOG_CHECK_S) for write problems."""
        self.w.live.add_result(result)
        now = time.monotonic()
        self._dropped_latest = result.dropped_total
        if result.dropped_total != self._dropped and now - self._dropped_at >= DROPPED_EVERY_S:
            self._show_dropped(now)
        if now - self._log_checked >= LOG_CHECK_S:
            self._log_checked = now
            self.w.check_results_log()

    def on_source_event(self, event) -> None:
        """Tell the operator what the source did (lost, recovered, stalled, bad file, ended)."""
        level = EVENT_LEVELS.get(event.kind, "info")
        if event.kind == "lost":
            self.w.status.set_source_state("Camera lost — retrying", "error")
            self.w.live.show_no_verdict("NO SIGNAL", "Camera lost — retrying")
            self.w.show_message(f"Camera lost — retrying: {event.message}", level)
        elif event.kind == "recovered":
            self.on_run_started(self.w.station.source_description)
            self.w.show_message(f"Camera recovered: {event.message}", level)
        elif event.kind == "ended":
            self.w.status.set_source_state("Source ended")
            self.w.show_message(event.message, level)
        elif event.kind == "stalled":
            self.w.show_message(f"Camera stalled: {event.message}", level)
        elif event.kind == "file_error":
            self.w.show_message(f"Skipped an unreadable file: {event.message}", level)
        else:
            self.w.show_message(event.message, level)

    def on_state_changed(self, state: RunState) -> None:
        """Keep the buttons and the status bar in step with the live run's state."""
        self.w.source_panel.set_state(state)
        description = self.w.station.source_description
        if state is RunState.PAUSED:
            self.w.status.set_source_state(f"Paused: {description}")
        elif state is RunState.RUNNING:
            self.w.status.set_source_state(f"Running: {description}")
        elif state is RunState.STARTING:
            self.w.status.set_source_state("Opening source…")
        elif self.w.status.source_state.toolTip().startswith(("Running", "Paused", "Opening")):
            self.w.status.set_source_state("Stopped")

    def on_run_started(self, description: str) -> None:
        """The source is open: remember it for the next launch; say whether the run is going or paused on it."""
        self.w.live.set_source(description)
        paused = self.w.station.state is RunState.PAUSED
        self.w.status.set_source_state(f"{'Paused' if paused else 'Running'}: {description}")
        if self.starting is not None and self.starting[0]:
            spec, loop, max_fps = self.starting
            self.w.settings.save_source(spec, loop=loop, max_fps=max_fps)
        self.starting = None

    def on_run_failed(self, text: str) -> None:
        """The run could not start or stopped on an error: no verdict is current; say why."""
        self.starting = None
        self.w.live.show_no_verdict("NO VERDICT", text)
        self.w.show_message(text, "error")

    def _show_dropped(self, now: float) -> None:
        """Put the newest dropped-frames count in the status bar."""
        self._dropped, self._dropped_at = self._dropped_latest, now
        self.w.status.set_dropped(self._dropped)

    def on_run_finished(self, reason: str) -> None:
        """The run ended: the last verdict is marked as the run's last; refresh History if it is on screen."""
        self.w.check_results_log()
        if self._dropped_latest != self._dropped:
            self._show_dropped(time.monotonic())
        if reason == "failed":
            self.w.status.set_source_state("Stopped on an error", "error")
        else:
            self.w.live.mark_last(f"The run {'was stopped' if reason == 'stopped' else 'ended'}: this is its last frame.")
        if self.w.tabs.currentWidget() is self.w.history:
            self.w.history.refresh()
