"""The station opens a real X11 window (Xvfb, Qt's xcb platform plugin), as `make run` does on a desktop.

Offscreen tests cannot see a missing system library of the xcb plugin; this one can. It skips without Xvfb
unless VISINSPECT_REQUIRE_X11=1 (set by CI), where a missing Xvfb fails it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("real_window_driver.py")
WIDTH, HEIGHT = 1280, 720


@pytest.fixture
def xvfb_display():
    """A fresh Xvfb on a free display number (chosen by Xvfb itself), black root window; its DISPLAY string."""
    if shutil.which("Xvfb") is None:
        if os.environ.get("VISINSPECT_REQUIRE_X11") == "1":
            pytest.fail("Xvfb is not installed but VISINSPECT_REQUIRE_X11=1: run `make test` as root or install xvfb")
        pytest.skip("Xvfb is not installed (set VISINSPECT_REQUIRE_X11=1 to make this a failure)")
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{WIDTH}x{HEIGHT}x24", "-br", "-nolisten", "tcp"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()  # written once the server accepts connections
    try:
        assert number.isdigit(), f"Xvfb did not start: {server.stderr.read().decode(errors='replace')[-2000:]}"
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stderr.close()


def test_station_opens_a_real_x11_window(xvfb_display, tmp_path):
    """The real station on Qt's xcb plugin: exits 0, its window is mapped, fits the screen and is drawn (not blank)."""
    home = tmp_path / "home"
    runtime = tmp_path / "runtime"
    for folder in (home, runtime):
        folder.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QT_", "XDG_", "VISINSPECT_"))}
    env.update(
        DISPLAY=xvfb_display, QT_QPA_PLATFORM="xcb", HOME=str(home), XDG_RUNTIME_DIR=str(runtime),
        XDG_CONFIG_HOME=str(home / ".config"), XDG_DATA_HOME=str(home / ".local/share"),
        XDG_CACHE_HOME=str(home / ".cache"), PYTHONPATH=str(ROOT),
    )  # fmt: skip
    shot = tmp_path / "screen.png"
    done = subprocess.run([sys.executable, str(DRIVER), str(shot)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)  # fmt: skip
    report = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-4000:]}"
    assert done.returncode == 0, report
    exposed = next((line.split() for line in done.stdout.splitlines() if line.startswith("exposed ")), None)
    assert exposed is not None, report
    win_id, x, y = int(exposed[1]), int(exposed[2]), int(exposed[3])
    width, height = (int(v) for v in exposed[4].split("x"))
    assert width > 200 and height > 200 and 0 <= x < WIDTH and 0 <= y < HEIGHT, report
    assert x + width <= WIDTH and y + height <= HEIGHT, f"the window does not fit the {WIDTH}x{HEIGHT} screen\n{report}"
    xdotool = next((line.split()[1:] for line in done.stdout.splitlines() if line.startswith("xdotool")), None)
    if xdotool is not None:  # the X server itself lists the window as mapped
        assert str(win_id) in xdotool, report

    import cv2

    screen = cv2.imread(str(shot))
    assert screen is not None and screen.shape[:2] == (HEIGHT, WIDTH), report
    inside = screen[y : y + height, x : x + width]
    colours = np.unique(inside.reshape(-1, 3), axis=0)
    assert len(colours) > 20, f"the window area of the screen is blank ({len(colours)} colours)\n{report}"
    outside = screen.copy()
    outside[y : y + height, x : x + width] = 0
    assert not outside.any(), "something was drawn outside the station's window on an empty screen"
