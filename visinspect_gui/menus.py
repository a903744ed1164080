"""The station's menus and shortcuts; each entry calls what a panel's button or the window already does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QMessageBox

from visinspect_gui.about import about_html

DOCS = Path(__file__).resolve().parent.parent / "README.md"


@dataclass(frozen=True)
class MenuActions:
    """The actions whose availability depends on the mode."""

    engineer_only: tuple[QAction, ...]
    unlock: QAction
    lock: QAction


def _action(window: QMainWindow, menu: QMenu, text: str, slot, shortcut: str | None = None) -> QAction:
    act = QAction(text, window)
    if shortcut:
        act.setShortcut(QKeySequence(shortcut))
    act.triggered.connect(slot)
    menu.addAction(act)
    return act


def build_menus(w) -> MenuActions:
    """File, Station, Recipe and Help menus of the main window w (F5 start, Shift+F5 stop, F10 step)."""
    bar = w.menuBar()
    file_menu = bar.addMenu("&File")
    open_model = _action(w, file_menu, "Open model file…", w.model_panel._on_open_clicked, "Ctrl+M")
    open_folder = _action(w, file_menu, "Open folder…", w.source_panel._on_folder_clicked, "Ctrl+O")
    open_video = _action(w, file_menu, "Open video…", w.source_panel._on_video_clicked)
    file_menu.addSeparator()
    _action(w, file_menu, "Quit", w.close, "Ctrl+Q")

    station = bar.addMenu("&Station")
    _action(w, station, "Start", w._on_start_requested, "F5")
    _action(w, station, "Stop", w.station.stop, "Shift+F5")
    _action(w, station, "Step one frame", w._on_step_requested, "F10")
    start_over = _action(w, station, "Start over from the first frame", w._on_start_over)
    station.addSeparator()
    _action(w, station, "Reset counters", w.live.counters.reset)
    _action(w, station, "Fit image to view", w.live.viewer.fit, "Ctrl+0")
    station.addSeparator()
    unlock = _action(w, station, "Engineer mode…", lambda: w.access.ask_unlock(w))
    lock = _action(w, station, "Operator mode (lock)", w.access.lock)
    set_pin = _action(w, station, "Set engineer PIN…", lambda: w.access.ask_new_pin(w))

    recipe = bar.addMenu("&Recipe")
    save_recipe = _action(w, recipe, "Save as recipe…", w.recipes.ask_save)
    switch_recipe = _action(w, recipe, "Switch recipe…", w.recipes.ask_switch)
    recipe.addSeparator()
    draw_roi = _action(w, recipe, "Draw ROI on the live image", lambda: w.roi_tool.draw_button.setChecked(True))
    clear_roi = _action(w, recipe, "Clear ROI", w.roi_tool.clear)
    recipe.addSeparator()
    line_io = _action(w, recipe, "Line I/O (OPC UA, Modbus, MQTT)…", w.line_io.ask)

    help_menu = bar.addMenu("&Help")
    _action(w, help_menu, "Documentation", lambda: open_docs(w))
    _action(w, help_menu, "Open log folder", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(w.log_folder))))
    demo = _action(w, help_menu, "Build demo model", w.demo_panel.start)
    help_menu.addSeparator()
    _action(w, help_menu, "About VisInspect", lambda: show_about(w))
    return MenuActions(
        unlock=unlock, lock=lock,
        engineer_only=(open_model, open_folder, open_video, start_over, set_pin, demo, save_recipe, switch_recipe, draw_roi, clear_roi,
                       line_io),
    )  # fmt: skip


def open_docs(w) -> None:
    """Open the README (with its docs/ pages) in the desktop's viewer; say where it is when it cannot be opened."""
    if not (DOCS.is_file() and QDesktopServices.openUrl(QUrl.fromLocalFile(str(DOCS)))):
        w.show_message(f"The documentation is {DOCS} and the docs/ folder beside it; it could not be opened here.", "warning")


def show_about(w) -> None:
    """Versions, the loaded model's origin and the log folder."""
    box = QMessageBox(w)
    box.setWindowTitle("About VisInspect")
    box.setTextFormat(box.textFormat().RichText)
    box.setText(about_html(w.station.inspector, log_folder=w.log_folder))
    box.setIcon(QMessageBox.Icon.Information)
    box.open()
