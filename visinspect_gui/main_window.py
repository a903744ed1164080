"""The station window: composes the panels and wires their signals to the Station; no inspection logic here."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QMainWindow, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from engine import paths
from engine.modelfile import MODEL_SUFFIX
from engine.results import ResultsLog
from engine.types import RuntimeOptions
from visinspect_gui.settings import StationSettings
from visinspect_gui.station import Station
from visinspect_gui.widgets.demo_panel import DemoPanel
from visinspect_gui.widgets.eval_tab import EvalTab
from visinspect_gui.widgets.history_tab import HistoryTab
from visinspect_gui.widgets.live_tab import LiveTab
from visinspect_gui.widgets.message_bar import MessageBar
from visinspect_gui.widgets.model_panel import ModelPanel
from visinspect_gui.widgets.review_tab import ReviewTab
from visinspect_gui.widgets.source_panel import SourcePanel
from visinspect_gui.widgets.status_bar import StationStatusBar
from visinspect_gui.widgets.train_tab import TrainTab
from visinspect_gui.workers import Worker

log = logging.getLogger(__name__)
EVENT_LEVELS = {
    "lost": "error", "recovered": "info", "stalled": "warning", "file_error": "warning",
    "resolution_changed": "info", "empty_frame": "warning", "ended": "info",
}  # fmt: skip


class MainWindow(QMainWindow):
    """Source and model on the left; Live, Review, History, Train and Evaluate tabs; messages on top, status below."""

    def __init__(
        self,
        *,
        data_dir: str | os.PathLike | None = None,
        results_path: str | os.PathLike | None = None,
        weights_dir: str | os.PathLike | None = None,
        device: str = "auto",
        precision: str = "auto",
        auto_demo: bool = False,
        auto_load: bool = False,
    ) -> None:
        super().__init__()
        self.setWindowTitle("VisInspect — Inspection Station")
        self.setAcceptDrops(True)
        self.data_dir = Path(data_dir) if data_dir is not None else paths.data_dir()
        self.results = ResultsLog(results_path if results_path is not None else self.data_dir / "results.sqlite3")
        runtime = RuntimeOptions(device, precision)  # chosen once: every model and every tab runs so
        self.station = Station(self.results, runtime=runtime, parent=self)
        self.auto_demo = auto_demo
        self.auto_load = auto_load
        self._autostart = False
        self._autoreview = False
        self._scanned_once = False
        self._closed = False

        self.source_panel = SourcePanel()
        self.model_panel = ModelPanel(folder=Path(weights_dir) if weights_dir is not None else None)
        self.demo_panel = DemoPanel(out_dir=self.data_dir / "demo", model_dir=weights_dir)
        self.demo_panel.hide()
        self.messages = MessageBar()
        self.live = LiveTab(self.demo_panel)
        self.review = ReviewTab(self.results)
        self.history = HistoryTab(self.results)
        self.train = TrainTab(runtime=runtime)
        self.evaluate = EvalTab(runtime=runtime)
        self.status = StationStatusBar()
        self.setStatusBar(self.status)
        self._compose()
        self._make_menus()
        self._wire()
        self.model_panel.refresh()
        self.settings = StationSettings(self.data_dir)
        self._restore_settings()
        self.resize(1480, 920)

    # -- layout --------------------------------------------------------------------------------

    def _compose(self) -> None:
        """Lay out the sidebar (source, model), the message bar and the Live / Review / History tabs."""
        sidebar = QWidget()
        sidebar.setObjectName("Sidebar")
        column = QVBoxLayout(sidebar)
        column.setContentsMargins(10, 10, 4, 10)
        column.setSpacing(10)
        column.addWidget(self.source_panel)
        column.addWidget(self.model_panel)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setObjectName("SidebarScroll")
        scroll.setWidget(sidebar)
        scroll.setWidgetResizable(True)
        scroll.setFixedWidth(350)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("MainTabs")
        self.tabs.addTab(self.live, "Live")
        self.tabs.addTab(self.review, "Review")
        self.tabs.addTab(self.history, "History")
        self.tabs.addTab(self.train, "Train")
        self.tabs.addTab(self.evaluate, "Evaluate")
        main = QWidget()
        main_layout = QVBoxLayout(main)
        main_layout.setContentsMargins(4, 10, 10, 6)
        main_layout.setSpacing(8)
        main_layout.addWidget(self.messages)
        main_layout.addWidget(self.tabs, 1)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(scroll)
        layout.addWidget(main, 1)
        self.setCentralWidget(central)

    def _make_menus(self) -> None:
        """Menus and keyboard shortcuts for what the panels' buttons do (F5 start, Shift+F5 stop, F10 step)."""
        def action(menu, text, slot, shortcut=None):
            """Add a menu entry with an optional shortcut."""
            act = QAction(text, self)
            if shortcut:
                act.setShortcut(QKeySequence(shortcut))
            act.triggered.connect(slot)
            menu.addAction(act)
            return act

        file_menu = self.menuBar().addMenu("&File")
        action(file_menu, "Open model file…", self.model_panel._on_open_clicked, "Ctrl+M")
        action(file_menu, "Open folder…", self.source_panel._on_folder_clicked, "Ctrl+O")
        action(file_menu, "Open video…", self.source_panel._on_video_clicked)
        file_menu.addSeparator()
        action(file_menu, "Quit", self.close, "Ctrl+Q")
        station = self.menuBar().addMenu("&Station")
        self.start_action = action(station, "Start", self._on_start_requested, "F5")
        self.stop_action = action(station, "Stop", self.station.stop, "Shift+F5")
        self.step_action = action(station, "Step one frame", self._on_step_requested, "F10")
        station.addSeparator()
        action(station, "Reset counters", self.live.counters.reset)
        action(station, "Fit image to view", self.live.viewer.fit, "Ctrl+0")
        help_menu = self.menuBar().addMenu("&Help")
        action(help_menu, "Build demo model", self.demo_panel.start)

    def _wire(self) -> None:
        """Connect panel requests to the Station and Station events back to the panels."""
        sp, mp, st = self.source_panel, self.model_panel, self.station
        sp.start_requested.connect(self._on_start_requested)
        sp.stop_requested.connect(st.stop)
        sp.step_requested.connect(self._on_step_requested)
        sp.source_changed.connect(lambda text: self.status.showMessage(f"Source: {text}", 4000))
        mp.model_requested.connect(self.open_model)
        mp.models_found.connect(self._on_models_found)
        mp.threshold_changed.connect(self._on_threshold_changed)
        mp.box_threshold_changed.connect(self._on_box_threshold_changed)
        mp.overlay_changed.connect(self._on_overlay_changed)
        st.model_loaded.connect(self._on_model_loaded)
        st.model_failed.connect(lambda text: self.show_message(text, "error"))
        st.result_ready.connect(self._on_result_ready)
        st.source_event.connect(self._on_source_event)
        st.state_changed.connect(self._on_state_changed)
        st.run_started.connect(self._on_run_started)
        st.run_finished.connect(self._on_run_finished)
        st.failed.connect(lambda text: self.show_message(text, "error"))
        self.demo_panel.demo_ready.connect(self._on_demo_ready)
        self.demo_panel.failed.connect(lambda text: self.show_message(f"The demo could not be built: {text}", "error"))
        self.review.failed.connect(lambda text: self.show_message(text, "warning"))
        self.review.review_finished.connect(self._on_review_finished)
        self.history.failed.connect(lambda text: self.show_message(text, "warning"))
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.train.model_saved.connect(self._on_model_saved)
        self.train.use_model_requested.connect(self._on_use_model_requested)
        self.train.threshold_stored.connect(self._on_threshold_stored)
        self.evaluate.threshold_stored.connect(self._on_threshold_stored)

    # -- operations (also used by app.main and tests) ------------------------------------------

    def open_model(self, path: str | os.PathLike) -> None:
        """Load a model file in the background."""
        self.status.showMessage(f"Loading model {Path(path).name}…")
        self.station.load_model(path)

    def review_when_loaded(self, folder: str) -> None:
        """Open the Review tab on folder and review it as soon as a model is loaded (now, if one is)."""
        self.tabs.setCurrentWidget(self.review)
        self.review.set_folder(folder)
        if self.station.inspector is not None:
            self.review.start()
        else:
            self._autoreview = True

    def start_when_loaded(self) -> None:
        """Start the live run as soon as a model is loaded (now, if one is)."""
        if self.station.inspector is not None:
            self._on_start_requested()
        else:
            self._autostart = True

    def show_message(self, text: str, level: str = "info") -> None:
        """One plain sentence for the operator, above the tabs and in the status bar."""
        self.messages.show_message(text, level)
        self.status.showMessage(text, 10_000)

    # -- slots ---------------------------------------------------------------------------------

    def _on_start_requested(self) -> None:
        """Start (or resume) the live run on the source panel's source."""
        sp = self.source_panel
        if self.station.start(sp.spec(), loop=sp.loop, max_fps=sp.max_fps):
            self.settings.save_source(sp.spec(), loop=sp.loop, max_fps=sp.max_fps)

    def _on_step_requested(self) -> None:
        """Inspect one frame and pause, starting a paused run when idle."""
        sp = self.source_panel
        self.station.step(sp.spec(), loop=sp.loop, max_fps=sp.max_fps)

    def _on_review_finished(self, _state: str) -> None:
        """Remember the reviewed folder; say if results could not be saved."""
        if self.review.folder:
            self.settings.save_review_folder(self.review.folder)
        self._check_results_log()

    def _restore_settings(self) -> None:
        """Put back the last source and review folder (the command line's --source still wins)."""
        last = self.settings.last_source()
        if last is not None and self.source_panel.spec() is None:
            spec, loop, max_fps = last
            self.source_panel.set_source(spec, loop=loop, max_fps=max_fps)
        folder = self.settings.last_review_folder()
        if folder and not self.review.folder:
            self.review.set_folder(folder)

    def _on_models_found(self, count: int) -> None:
        """First scan: load the newest model (auto_load), or offer and maybe start the demo when there is none."""
        first, self._scanned_once = not self._scanned_once, True
        if first and count and self.auto_load and self.station.inspector is None and not self.station.is_loading:
            self.open_model(self.model_panel.models()[0])
        if count == 0 and self.station.inspector is None and not self._autostart:
            self.demo_panel.show()
            if first and self.auto_demo:
                self.demo_panel.start()

    def _on_model_loaded(self, inspector) -> None:
        """Show the new model everywhere, say plainly if it lacks ImageNet weights, start if asked to."""
        self.model_panel.set_model(inspector)
        self.live.set_model(inspector)
        self.review.set_inspector(inspector)
        self.history.set_inspector(inspector)
        self.status.set_model(f"{inspector.meta.product} ({Path(inspector.path).name})")
        self.status.set_device(f"{inspector.device_name} · {inspector.precision_name}", inspector.precision_note)
        note = "" if inspector.meta.pretrained else " It was trained without ImageNet weights (random init)."
        self.show_message(f"Model {Path(inspector.path).name} loaded.{note}", "info")
        if not self.demo_panel.is_running:
            self.demo_panel.hide()
        if self._autostart:
            self._autostart = False
            self._on_start_requested()
        if self._autoreview:
            self._autoreview = False
            self.review.start()

    def _on_model_saved(self, _path: str) -> None:
        """A new product model: list it in the model panel and the Evaluate tab."""
        self.model_panel.refresh()
        self.evaluate.refresh_models()

    def _on_use_model_requested(self, path: str) -> None:
        """Put a just-trained model on the live view."""
        self.open_model(path)
        self.tabs.setCurrentWidget(self.live)

    def _on_threshold_stored(self, path: str, threshold: float) -> None:
        """A calibrated threshold was stored: reload that model if it is the one on the line."""
        inspector = self.station.inspector
        if inspector is not None and Path(inspector.path).resolve() == Path(path).resolve():
            self.open_model(path)
        self.show_message(f"Threshold {threshold:.3f} stored in {Path(path).name}.", "info")

    def _on_threshold_changed(self, value: float) -> None:
        """Apply the decision threshold to later frames; re-judge the frame on screen and the reviewed files."""
        self.station.set_threshold(value)
        self.live.counters.set_threshold(value)
        self.live.rejudge(self.station.inspector)
        self.review.rejudge(value)

    def _on_box_threshold_changed(self, value: float) -> None:
        """Apply the box threshold to later frames and redraw the boxes on screen."""
        self.station.set_box_threshold(value)
        self.live.rejudge(self.station.inspector)

    def _on_overlay_changed(self) -> None:
        """Redraw both viewers with the heatmap switch, opacity and colour map chosen."""
        mp = self.model_panel
        self.live.viewer.set_overlay(
            heatmap_on=mp.heatmap_on, opacity=mp.heatmap_opacity, colormap=mp.colormap, heat_scale=mp.heat_scale
        )
        self.review.set_overlay(heatmap_on=mp.heatmap_on, opacity=mp.heatmap_opacity, colormap=mp.colormap)

    def _on_result_ready(self, result) -> None:
        """Show a live result; check the results log now and then for write problems."""
        self.live.add_result(result)
        self.status.set_dropped(result.dropped_total)
        if result.inspected_total % 10 == 1:
            self._check_results_log()

    def _on_source_event(self, event) -> None:
        """Tell the operator what the source did (lost, recovered, stalled, bad file, ended)."""
        level = EVENT_LEVELS.get(event.kind, "info")
        if event.kind == "lost":
            self.status.set_source_state("Camera lost — retrying", "error")
            self.show_message(f"Camera lost — retrying: {event.message}", level)
        elif event.kind == "recovered":
            self._on_run_started(self.station.source_description)
            self.show_message(f"Camera recovered: {event.message}", level)
        elif event.kind == "ended":
            self.status.set_source_state("Source ended")
            self.show_message(event.message, level)
        elif event.kind == "stalled":
            self.show_message(f"Camera stalled: {event.message}", level)
        elif event.kind == "file_error":
            self.show_message(f"Skipped an unreadable file: {event.message}", level)
        else:
            self.show_message(event.message, level)

    def _on_state_changed(self, state: str) -> None:
        """Keep the buttons and the status bar in step with the live run's state."""
        self.source_panel.set_state(state)
        if state == "paused":
            self.status.set_source_state(f"Paused: {self.station.source_description}")
        elif state == "starting":
            self.status.set_source_state("Opening source…")
        elif state == "idle" and self.status.source_state.text().startswith(("Running", "Paused", "Opening")):
            self.status.set_source_state("Stopped")

    def _on_run_started(self, description: str) -> None:
        """The source is open: say whether the run is going or paused on it."""
        paused = self.station.state == "paused"
        self.status.set_source_state(f"{'Paused' if paused else 'Running'}: {description}")

    def _on_run_finished(self, reason: str) -> None:
        """The run ended: surface log problems and refresh History if it is on screen."""
        self._check_results_log()
        if reason == "failed":
            self.status.set_source_state("Stopped on an error", "error")
        if self.tabs.currentWidget() is self.history:
            self.history.refresh()

    def _on_demo_ready(self, ready) -> None:
        """Load the demo model and replay its line folder in a loop, so the station shows itself working."""
        self.source_panel.set_source(str(ready.line_folder), loop=True, max_fps=5.0)
        self.review.set_folder(str(ready.line_folder))
        self._autostart = True
        self.open_model(ready.model_path)
        self.model_panel.refresh()

    def _on_tab_changed(self, _index: int) -> None:
        """History is re-queried whenever it is brought to the front."""
        if self.tabs.currentWidget() is self.history:
            self.history.refresh()

    def _check_results_log(self) -> None:
        """Show (or clear) the status-bar warning when results cannot be written."""
        self.status.set_log_warning(self.results.last_error)

    # -- drag and drop, close ------------------------------------------------------------------

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        """A model file loads; a folder on the Review tab is reviewed; anything else becomes the source."""
        dropped = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        event.acceptProposedAction()
        self.handle_dropped(dropped)

    def handle_dropped(self, dropped: list[str]) -> None:
        """Act on dropped paths: load a model, set the review folder, or choose the live source."""
        if len(dropped) == 1 and dropped[0].endswith(MODEL_SUFFIX):
            self.open_model(dropped[0])
        elif self.tabs.currentWidget() is self.review and len(dropped) == 1 and Path(dropped[0]).is_dir():
            self.review.set_folder(dropped[0])
        elif self.station.is_running:
            self.show_message("Stop the running source before choosing another one.", "warning")
        elif not self.source_panel.accept_paths(dropped):
            self.show_message("Nothing usable was dropped: drop a folder, a video, images or a model file.", "warning")

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        """Stop every worker, release the source and close the results log before the window goes."""
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop and wait for every worker, release the source and close the results log (once)."""
        if self._closed:
            return
        self._closed = True
        self.station.shutdown()
        for panel in (self.review, self.history, self.model_panel, self.demo_panel, self.train, self.evaluate):
            panel.shutdown()
        self.settings.wait()
        Worker.stop_all()
        self.results.close()
        log.info("station closed")
