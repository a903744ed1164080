"""Open the real station window on $DISPLAY (xcb), wait until the X server exposes it, grab the screen, quit.

Run by tests/gui/test_real_window.py in a subprocess: `python tests/gui/real_window_driver.py SCREENSHOT.png`.
Prints one line `exposed WINID X Y WIDTHxHEIGHT` (the window's frame on screen) and exits 0, or says why not and exits 1.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time

from PySide6.QtCore import QEventLoop
from PySide6.QtTest import QTest

from visinspect_gui.app import build_window, parse_args, setup_application


def settle(app, seconds: float) -> None:
    """Run the event loop for a while so the window paints."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)


def main(screenshot: str) -> int:
    app = setup_application()
    if app.platformName() != "xcb":
        print(f"not on X11: Qt platform is {app.platformName()}")
        return 1
    window = build_window(parse_args(["--no-demo"]))
    window.show()  # at the size it chooses for this screen
    if not QTest.qWaitForWindowExposed(window, 20_000):
        print("the window was never exposed")
        return 1
    settle(app, 1.0)
    frame = window.frameGeometry()
    print(f"exposed {int(window.winId())} {frame.x()} {frame.y()} {frame.width()}x{frame.height()}", flush=True)
    if shutil.which("xdotool"):  # the X server's own list of mapped windows with that title
        found = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "Inspection Station"], capture_output=True, text=True)
        print(f"xdotool {' '.join(found.stdout.split())}", flush=True)
    # The whole root window as the X server has it: the station appears there only if it was mapped and drawn.
    if not app.primaryScreen().grabWindow(0).save(screenshot):
        print(f"could not save {screenshot}")
        return 1
    window.close()  # stops its workers and closes the results log
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
