"""Start the inspection station: command line, QApplication with icon and theme, log file, and a calm crash handler."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import signal
import sys
import threading
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication, QMessageBox

from engine import __version__, paths
from engine.errors import EXPECTED_ERRORS
from engine.types import PRECISION_HELP, PRECISIONS
from visinspect_gui.workers import plain_message

log = logging.getLogger("visinspect_gui")
APP_NAME = "VisInspect"
PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT_RESOURCES = PACKAGE_DIR.parent / "resources"  # a checkout or an editable install
_INSTALLED_RESOURCES = Path(sys.prefix) / "share" / "visinspect"  # a wheel install (pyproject data-files)
RESOURCES_DIR = _CHECKOUT_RESOURCES if _CHECKOUT_RESOURCES.is_dir() else _INSTALLED_RESOURCES


def resource(name: str) -> Path:
    """A file in resources/ (the app icon and desktop-entry template)."""
    return RESOURCES_DIR / name


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The station's command line (the CLI's `visinspect gui ...` forwards its arguments here)."""
    parser = argparse.ArgumentParser(prog="visinspect gui", description="Open the VisInspect inspection station.")
    parser.add_argument("--model", metavar="FILE", help="model file to load (default: the newest in the weights folder)")
    parser.add_argument("--source", metavar="SOURCE", help="camera index (0@1920x1080 asks for a resolution), stream URL, video file, folder or image")
    parser.add_argument("--loop", action="store_true", help="replay a folder or video from the start when it ends")
    parser.add_argument("--start", action="store_true", help="start inspecting as soon as the model is loaded")
    parser.add_argument("--review", metavar="FOLDER", help="review this folder on the Review tab once the model is loaded (resumes an interrupted review)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default: auto)")
    parser.add_argument(
        "--precision", default="auto", choices=PRECISIONS, help=PRECISION_HELP
    )
    parser.add_argument("--no-demo", action="store_true", help="do not build the demo model when no model exists")
    parser.add_argument("--version", action="version", version=f"VisInspect {__version__}")
    return parser.parse_args(argv)


def setup_logging(data_dir: Path | None = None) -> Path:
    """Log to data_dir()/logs/station.log (rotated, 5 x 2 MB) and to stderr; returns the log file path."""
    folder = (data_dir or paths.data_dir()) / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "station.log"
    root = logging.getLogger()
    if not any(isinstance(h, logging.handlers.RotatingFileHandler) and Path(h.baseFilename) == path for h in root.handlers):
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=5, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"))
        root.addHandler(handler)
    root.setLevel(min(root.level or logging.INFO, logging.INFO))
    return path


class _ErrorBridge(QObject):
    """Carries an unexpected error's sentence from any thread to the GUI thread (queued signal)."""

    error = Signal(str)


class CrashHandler:
    """sys.excepthook and threading.excepthook: log the traceback, show the operator one plain sentence."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.window = None
        self.bridge = _ErrorBridge()
        self.bridge.error.connect(self._on_error)
        self.last_sentence: str | None = None

    def install(self) -> None:
        """Route uncaught errors from the GUI thread and from plain threads through this handler."""
        sys.excepthook = self.handle
        threading.excepthook = lambda args: self.handle(args.exc_type, args.exc_value, args.exc_traceback)

    def handle(self, exc_type, exc, tb) -> None:
        """Log everything, then show a sentence (never a traceback) in the window."""
        if issubclass(exc_type, KeyboardInterrupt):
            QApplication.quit()
            return
        if issubclass(exc_type, EXPECTED_ERRORS):  # bad input or a missing file that escaped a slot: one line
            log.warning("error: %s", plain_message(exc))
        else:
            log.critical("unexpected error:\n%s", "".join(traceback.format_exception(exc_type, exc, tb)))
        sentence = f"Something went wrong ({plain_message(exc)}). The station keeps running; details are in {self.log_path}."
        self.last_sentence = sentence
        self.bridge.error.emit(sentence)

    def _on_error(self, sentence: str) -> None:
        """Show the sentence on the GUI thread: in the window, or in a dialog before it exists."""
        if self.window is not None:
            self.window.show_message(sentence, "error")
        else:
            QMessageBox.critical(None, APP_NAME, sentence)


def dark_palette() -> QPalette:
    """A neutral dark palette under the style sheet, so native bits (menus, dialogs) match."""
    p = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#1c1e22",
        QPalette.ColorRole.WindowText: "#d8dbe0",
        QPalette.ColorRole.Base: "#16181b",
        QPalette.ColorRole.AlternateBase: "#1f2226",
        QPalette.ColorRole.ToolTipBase: "#2a2d33",
        QPalette.ColorRole.ToolTipText: "#e6e8eb",
        QPalette.ColorRole.Text: "#d8dbe0",
        QPalette.ColorRole.Button: "#2a2d33",
        QPalette.ColorRole.ButtonText: "#d8dbe0",
        QPalette.ColorRole.Highlight: "#2f6fdb",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.PlaceholderText: "#70757e",
        QPalette.ColorRole.Link: "#6aa5ff",
    }
    for role, value in colours.items():
        p.setColor(role, QColor(value))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#5f646c"))
    return p


def setup_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication with name, icon, Fusion style, dark palette and the station's style sheet."""
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "visinspect", *(argv or [])])
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("visinspect")
    icon = resource("visinspect.png")
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    app.setStyleSheet((PACKAGE_DIR / "style.qss").read_text(encoding="utf-8"))
    app.setAttribute(Qt.ApplicationAttribute.AA_DontShowIconsInMenus, True)
    return app


def build_window(args: argparse.Namespace):
    """The main window, with the command line's model and source applied."""
    from visinspect_gui.main_window import MainWindow

    window = MainWindow(device=args.device, precision=args.precision, auto_demo=not args.no_demo and not args.model, auto_load=not args.model)
    if args.source:
        window.source_panel.set_source(args.source, loop=args.loop)
    if args.model:
        window.open_model(args.model)
    if args.start:
        window.start_when_loaded()
    if args.review:
        window.review_when_loaded(args.review)
    return window


def main(argv: list[str] | None = None) -> int:
    """Run the station until its window closes; returns the exit code."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    log_path = setup_logging()
    log.info("VisInspect %s station starting: %s", __version__, " ".join(sys.argv[1:] if argv is None else argv) or "no arguments")
    app = setup_application()
    crash = CrashHandler(log_path)
    crash.install()
    window = build_window(args)
    crash.window = window
    window.show()
    # Ctrl+C in the terminal closes the window cleanly; the timer lets Python see the signal during exec().
    previous = signal.signal(signal.SIGINT, lambda *_: window.close())
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(250)
    code = app.exec()
    wake.stop()
    signal.signal(signal.SIGINT, previous)
    window.shutdown()
    return int(code)


if __name__ == "__main__":
    raise SystemExit(main())
