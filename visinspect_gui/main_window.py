"""The station window: composes the panels and wires their signals to the Station; no inspection logic here."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMainWindow, QScrollArea, QVBoxLayout, QWidget

from engine import paths
from engine.modelfile import MODEL_SUFFIX
from engine.results import ChangeKind, ResultsLog
from engine.types import RuntimeOptions
from visinspect_gui.access import AccessControl, Mode
from visinspect_gui.central_link import CentralLink
from visinspect_gui.line_io import LineIO
from visinspect_gui.menus import build_menus
from visinspect_gui.operator_labels import OperatorLabels
from visinspect_gui.recipes_panel import RecipeController
from visinspect_gui.run_feedback import RunFeedback
from visinspect_gui.settings import StationSettings
from visinspect_gui.station import Station
from visinspect_gui.threshold_controls import ThresholdControls
from visinspect_gui.widgets.demo_panel import DemoPanel
from visinspect_gui.widgets.eval_tab import EvalTab
from visinspect_gui.widgets.history_tab import HistoryTab
from visinspect_gui.widgets.live_tab import LiveTab
from visinspect_gui.widgets.main_tabs import MainTabs
from visinspect_gui.widgets.message_bar import MessageBar
from visinspect_gui.widgets.model_panel import ModelPanel
from visinspect_gui.widgets.review_tab import ReviewTab
from visinspect_gui.widgets.roi_tool import RoiTool
from visinspect_gui.widgets.source_panel import SourcePanel
from visinspect_gui.widgets.status_bar import StationStatusBar
from visinspect_gui.widgets.train_tab import TrainTab
from visinspect_gui.workers import Worker

log = logging.getLogger(__name__)
TITLE = "Inspection Station"  # the window system adds the application name: "Inspection Station — VisInspect"
PREFERRED_SIZE = (1480, 920)


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
        self.setWindowTitle(TITLE)
        self.setAcceptDrops(True)
        self.data_dir = Path(data_dir) if data_dir is not None else paths.data_dir()
        self.log_folder = self.data_dir / "logs"
        self.results = ResultsLog(results_path if results_path is not None else self.data_dir / "results.sqlite3")
        self.settings = StationSettings(self.data_dir)
        self.access = AccessControl(self.settings, self.results, parent=self)
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
        self.live.use_display_feed(self.station.display)
        self.review = ReviewTab(self.results)
        self.history = HistoryTab(self.results)
        self.train = TrainTab(runtime=runtime)
        self.evaluate = EvalTab(runtime=runtime)
        self.status = StationStatusBar()
        self.mode_label = QLabel()  # short: never elided
        self.mode_label.setObjectName("ModeField")
        self.status.addPermanentWidget(self.mode_label)
        self.setStatusBar(self.status)
        self._compose()
        self.roi_tool = RoiTool(self.live.viewer, self.settings, self.station)
        self.recipes = RecipeController(self)
        self.line_io = LineIO(self)  # OPC UA / Modbus / MQTT endpoints the live run publishes to
        self.station.line_options = self.line_io.run_options
        self.central = CentralLink(self, self.settings.central_url())  # results to the plant PostgreSQL, when set
        self.menu_actions = build_menus(self)
        self._wire()
        self.model_panel.refresh()
        self._restore_settings()
        self._apply_mode(self.access.mode)
        self.fit_to_screen()

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
        self.tabs = MainTabs()
        for page, title in ((self.live, "Live"), (self.review, "Review"), (self.history, "History"), (self.train, "Train"), (self.evaluate, "Evaluate")):
            self.tabs.add_page(page, title)
        main = QWidget()
        main_layout = QVBoxLayout(main)
        main_layout.setContentsMargins(4, 10, 10, 6)
        main_layout.setSpacing(8)
        self.tabs.setCornerWidget(self.messages, Qt.Corner.TopRightCorner)  # beside the tabs: showing it moves nothing
        main_layout.addWidget(self.tabs, 1)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(scroll)
        layout.addWidget(main, 1)
        self.setCentralWidget(central)

    def fit_to_screen(self) -> None:
        """Open at the preferred size or, on a smaller screen, inside its available area (the window never grows itself)."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        area = screen.availableGeometry() if screen is not None else None
        width, height = PREFERRED_SIZE
        if area is not None:
            width, height = min(width, area.width() - 16), min(height, area.height() - 40)  # room for the frame
        self.resize(width, height)

    def _wire(self) -> None:
        """Connect panel requests to the Station and Station events back to the panels."""
        sp, mp, st = self.source_panel, self.model_panel, self.station
        sp.start_requested.connect(self._on_start_requested)
        sp.stop_requested.connect(st.stop)
        sp.step_requested.connect(self._on_step_requested)
        sp.source_changed.connect(lambda text: self.status.showMessage(f"Source: {text}", 4000))
        mp.model_requested.connect(self.open_model)
        mp.models_found.connect(self._on_models_found)
        tc = self.threshold_controls = ThresholdControls(self)
        mp.threshold_changed.connect(tc.on_threshold_changed)
        mp.box_threshold_changed.connect(tc.on_box_threshold_changed)
        mp.overlay_changed.connect(tc.on_overlay_changed)
        st.model_loaded.connect(self._on_model_loaded)
        st.model_failed.connect(self._on_model_failed)
        st.model_switched.connect(self._on_model_switched)
        fb = self.feedback = RunFeedback(self)
        st.result_ready.connect(fb.on_result_ready)
        st.source_event.connect(fb.on_source_event)
        st.state_changed.connect(fb.on_state_changed)
        st.run_started.connect(fb.on_run_started)
        st.run_finished.connect(fb.on_run_finished)
        st.failed.connect(fb.on_run_failed)
        self.access.mode_changed.connect(self._apply_mode)
        self.access.refused.connect(lambda text: self.show_message(text, "warning"))
        self.demo_panel.demo_ready.connect(self._on_demo_ready)
        self.demo_panel.failed.connect(lambda text: self.show_message(f"The demo could not be built: {text}", "error"))
        self.review.failed.connect(lambda text: self.show_message(text, "warning"))
        self.review.review_finished.connect(self._on_review_finished)
        self.review.csv_exported.connect(lambda rows, path: log.info("review exported: %d rows to %s", rows, path))
        self.history.failed.connect(lambda text: self.show_message(text, "warning"))
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.train.model_saved.connect(self._on_model_saved)
        self.train.use_model_requested.connect(self._on_use_model_requested)
        self.train.threshold_stored.connect(tc.on_threshold_stored)
        self.evaluate.threshold_stored.connect(tc.on_threshold_stored)
        self.labels = OperatorLabels(self)  # label buttons and menus on Live, Review, History; retrain box on Train

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
        """Start (or resume) the live run on the source panel's source; it is remembered once it has opened."""
        sp = self.source_panel
        self.feedback.starting = (sp.spec(), sp.loop, sp.max_fps)
        self.station.start(sp.spec(), loop=sp.loop, max_fps=sp.max_fps)

    def _on_step_requested(self) -> None:
        """Inspect one frame and pause, starting a paused run when idle (a stopped file source goes on where it was)."""
        sp = self.source_panel
        self.feedback.starting = (sp.spec(), sp.loop, sp.max_fps)
        self.station.step(sp.spec(), loop=sp.loop, max_fps=sp.max_fps)

    def _on_start_over(self) -> None:
        """The next Start reads the file source from its first frame."""
        self.station.rewind()
        self.show_message("The next Start reads the source from its first frame.", "info")

    def _on_review_finished(self, outcome: str) -> None:
        """Remember the reviewed folder and log how the review ended; say if results could not be saved."""
        log.info("review of %s %s", self.review.folder, outcome)
        if self.review.folder:
            self.settings.save_review_folder(self.review.folder)
        self.check_results_log()

    def _restore_settings(self) -> None:
        """Put back the last source and review folder (the command line's --source still wins)."""
        last = self.settings.last_source()
        if last is not None and self.source_panel.spec() is None:
            spec, loop, max_fps = last
            self.source_panel.set_source(spec, loop=loop, max_fps=max_fps)
        folder = self.settings.last_review_folder()
        if folder and not self.review.folder:
            self.review.set_folder(folder)
        self.results.frames.set_policy(self.settings.retention_policy())
        self.status.refresh_frames(self.results.frames)

    def _on_models_found(self, count: int) -> None:
        """First scan: load the model last in use, else the newest (auto_load); offer the demo when there is none."""
        first, self._scanned_once = not self._scanned_once, True
        idle = self.station.inspector is None and not self.station.is_loading
        if first and self.auto_load and idle and (count or self.settings.last_model()):
            self.open_model(self.settings.last_model() or self.model_panel.models()[0])
        if count == 0 and self.station.inspector is None and not self.station.is_loading and not self._autostart:
            self.demo_panel.show()
            if first and self.auto_demo:
                self.demo_panel.start()

    def _on_model_loaded(self, inspector) -> None:
        """Show the new model everywhere, say plainly if it lacks ImageNet weights, start if asked to."""
        self.access.flush()
        previous = self.model_panel.loaded_path
        self.model_panel.set_model(inspector)
        self.live.set_model(inspector)
        self.review.set_inspector(inspector)
        self.history.set_inspector(inspector)
        self.evaluate.set_loaded_model(str(inspector.path))
        name = Path(inspector.path).name
        self.setWindowTitle(f"{inspector.meta.product} · {name} — {TITLE}")
        self.status.set_model(f"{inspector.meta.product} ({name})")
        self.status.set_device(f"{inspector.device_name} · {inspector.precision_name}", inspector.precision_note)
        note = "" if inspector.meta.pretrained else " It was trained without ImageNet weights (random init)."
        self.show_message(f"Model {name} loaded.{note}", "info")
        self.settings.save_model(str(inspector.path))
        if previous != str(inspector.path):
            self.access.record(ChangeKind.MODEL, previous or "", str(inspector.path))
        if not self.demo_panel.is_running:
            self.demo_panel.hide()
        if self._autostart:
            self._autostart = False
            self._on_start_requested()
        if self._autoreview:
            self._autoreview = False
            self.review.start()

    def _on_model_failed(self, text: str) -> None:
        """A model file could not be loaded: the model in use (if any) stays, and the message says so."""
        kept = f" {Path(self.station.inspector.path).name} stays in use." if self.station.inspector is not None else ""
        self.show_message(f"{text}{kept}", "error")

    def _on_model_switched(self, run_id: str, name: str) -> None:
        """A live run goes on with another model: no verdict is current until it judges a frame."""
        self.show_message(f"{name} judges the live view from the next frame (run {run_id}); counters start again.", "info")

    def _on_model_saved(self, _path: str) -> None:
        """A new product model: list it in the model panel and the Evaluate tab."""
        self.model_panel.refresh()
        self.evaluate.refresh_models()

    def _on_use_model_requested(self, path: str) -> None:
        """Put a just-trained model on the live view."""
        self.open_model(path)
        self.tabs.setCurrentWidget(self.live)

    def _on_demo_ready(self, ready) -> None:
        """Load the demo model and replay its line folder in a loop, so the station shows itself working."""
        self.source_panel.set_source(str(ready.line_folder), loop=True, max_fps=5.0)
        self.review.set_folder(str(ready.line_folder))
        self._autostart = True
        self.open_model(ready.model_path)
        self.model_panel.refresh()

    def _apply_mode(self, mode: Mode) -> None:
        """Operator mode: verdict, counters, History and Start / Stop / Step; engineer mode: everything."""
        engineer = mode is Mode.ENGINEER
        self.model_panel.setVisible(engineer)
        self.source_panel.set_choosing_allowed(engineer)
        self.roi_tool.set_enabled(engineer)
        for page in (self.review, self.train, self.evaluate):
            self.tabs.set_page_visible(page, engineer)
        for act in self.menu_actions.engineer_only:
            act.setEnabled(engineer)
        self.menu_actions.unlock.setVisible(not engineer)
        self.menu_actions.lock.setVisible(engineer)
        self.mode_label.setText("Engineer mode" if engineer else "Operator mode")
        self.mode_label.setToolTip("Station → Operator mode locks model, thresholds and training" if engineer else "Station → Engineer mode… (PIN) unlocks model, thresholds, training and settings")
        if not engineer and self.demo_panel.isVisible() and not self.demo_panel.is_running:
            self.demo_panel.hide()

    def _on_tab_changed(self, _index: int) -> None:
        """History is re-queried whenever it is brought to the front."""
        if self.tabs.currentWidget() is self.history:
            self.history.refresh()

    def check_results_log(self) -> None:
        """Show (or clear) the status-bar warning when results cannot be written, and the saved frames' size."""
        self.status.set_log_warning(self.results.last_error)
        self.status.refresh_frames(self.results.frames)

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
        """Act on dropped paths: load a model, set the review folder, or choose the live source (engineer mode)."""
        if self.access.mode is not Mode.ENGINEER:
            self.show_message("Changing the model or the source needs engineer mode (Station → Engineer mode…).", "warning")
        elif len(dropped) == 1 and dropped[0].endswith(MODEL_SUFFIX):
            self.open_model(dropped[0])
        elif self.tabs.currentWidget() is self.review and len(dropped) == 1 and Path(dropped[0]).is_dir():
            self.review.set_folder(dropped[0])
        elif self.station.is_running:
            self.show_message("Stop the running source before choosing another one.", "warning")
        elif not self.source_panel.accept_paths(dropped):
            self.show_message("Nothing usable was dropped: drop a folder, a video, images or a model file.", "warning")

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        """Hide at once, then stop every worker (a model batch in flight ends first), release the source, close the log."""
        self.hide()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop and wait for every worker, release the source and close the results log (once)."""
        if self._closed:
            return
        self._closed = True
        self.access.shutdown()
        self.labels.shutdown()
        self.line_io.shutdown()
        self.central.shutdown()
        self.station.shutdown()
        for panel in (self.review, self.history, self.model_panel, self.demo_panel, self.train, self.evaluate, self.recipes):
            panel.shutdown()
        self.settings.wait()
        started = time.perf_counter()
        Worker.stop_all()
        self.results.close()
        log.info("station closed (workers stopped and results log closed in %.1f s)", time.perf_counter() - started)
