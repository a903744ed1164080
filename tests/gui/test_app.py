"""Start-up and the edges: command line, crash handler, bad model files, drag and drop, first-run demo, shortcut."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication

from engine.demo import DemoProgress, DemoReady
from visinspect_gui import app as station_app
from visinspect_gui.main_window import MainWindow


def test_command_line_loads_the_model_sets_the_source_and_starts(qtbot, model_file, line_folder, private_folders):
    args = station_app.parse_args(
        ["--model", str(model_file), "--source", str(line_folder), "--loop", "--start", "--no-demo", "--precision", "int8"]
    )
    station_app.setup_application()
    window = station_app.build_window(args)
    qtbot.addWidget(window)
    try:
        window.show()
        qtbot.waitUntil(lambda: window.live.counters.inspected >= 7, timeout=60_000)  # looped past the 6 parts
        assert window.source_panel.spec() == str(line_folder) and window.source_panel.loop
        assert window.station.inspector.path == Path(model_file)
        assert window.station.inspector.precision_name == "int8"  # calibrated on the images in the model file
        assert window.status.device.text().endswith("· int8")  # the operator can see what runs
        assert not window.demo_panel.is_running
    finally:
        window.close()
    assert not window.station.active_workers()


def test_main_runs_the_event_loop_and_returns_when_the_window_closes(qtbot, monkeypatch, model_file, private_folders):
    shutil.copyfile(model_file, private_folders[1] / "product.safetensors")
    seen = {}

    def close_when_loaded():
        window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible())
        seen["window"] = window
        window.station.model_loaded.connect(lambda _i: QTimer.singleShot(0, window.close))
        QTimer.singleShot(60_000, window.close)  # never hang the suite if loading fails

    QTimer.singleShot(0, close_when_loaded)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # main installs its own hooks; restored afterwards
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    monkeypatch.setattr(logging.getLogger(), "handlers", list(logging.getLogger().handlers))
    assert station_app.main(["--no-demo"]) == 0
    window = seen["window"]
    assert window.station.inspector is not None  # the newest model in the weights folder was loaded
    assert not window.station.active_workers()
    assert (private_folders[0] / "logs" / "station.log").is_file()


def test_unexpected_errors_are_logged_and_shown_as_one_sentence(window, private_folders, qtbot, monkeypatch):
    monkeypatch.setattr(logging.getLogger(), "handlers", list(logging.getLogger().handlers))
    log_path = station_app.setup_logging(private_folders[0])
    crash = station_app.CrashHandler(log_path)
    crash.window = window
    try:
        raise KeyError("frame_buffer")
    except KeyError:
        crash.handle(*sys.exc_info())
    qtbot.waitUntil(lambda: window.messages.isVisible(), timeout=2000)
    text = window.messages.message
    assert window.messages.level == "error"
    assert "Traceback" not in text and "\n" not in text and "keeps running" in text
    assert "KeyError" in log_path.read_text(encoding="utf-8") and "Traceback" in log_path.read_text(encoding="utf-8")


def test_an_expected_error_that_escapes_a_slot_is_one_log_line(window, private_folders, qtbot, monkeypatch):
    monkeypatch.setattr(logging.getLogger(), "handlers", list(logging.getLogger().handlers))
    log_path = station_app.setup_logging(private_folders[0])
    crash = station_app.CrashHandler(log_path)
    crash.window = window
    try:
        raise FileNotFoundError(2, "No such file or directory", "/line/part-7.png")
    except OSError:
        crash.handle(*sys.exc_info())
    qtbot.waitUntil(lambda: window.messages.isVisible(), timeout=2000)
    logged = log_path.read_text(encoding="utf-8")
    assert "/line/part-7.png" in logged and "Traceback" not in logged


def test_errors_from_other_threads_reach_the_window(window, private_folders, qtbot, monkeypatch):
    monkeypatch.setattr(logging.getLogger(), "handlers", list(logging.getLogger().handlers))
    crash = station_app.CrashHandler(station_app.setup_logging(private_folders[0]))
    crash.window = window
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    crash.install()
    t = threading.Thread(target=lambda: 1 / 0)
    t.start()
    t.join()
    qtbot.waitUntil(lambda: "ZeroDivisionError" in window.messages.message, timeout=2000)


def test_a_bad_model_file_is_one_plain_sentence_and_the_station_goes_on(loaded_window, tmp_path, qtbot):
    w = loaded_window
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"this is not a model")
    with qtbot.waitSignal(w.station.model_failed, timeout=10_000):
        w.open_model(bad)
    text = w.messages.message
    assert w.messages.level == "error" and "broken.safetensors" in text and "Traceback" not in text
    assert w.station.inspector is not None  # the previous model stays loaded


def test_dropping_files_chooses_the_source_or_loads_a_model(window, line_folder, model_file, qtbot):
    window.handle_dropped([str(line_folder)])
    assert window.source_panel.spec() == str(line_folder)
    window.handle_dropped([str(line_folder / "part-01.png"), str(line_folder / "part-02.png")])
    assert window.source_panel.spec() == [str(line_folder / "part-01.png"), str(line_folder / "part-02.png")]
    window.handle_dropped([str(line_folder / "notes.txt")])
    assert window.messages.level == "warning"
    with qtbot.waitSignal(window.station.model_loaded, timeout=30_000):
        window.handle_dropped([str(model_file)])


def test_first_launch_builds_the_demo_then_shows_it_working(make_window, model_file, line_folder, qtbot, monkeypatch, private_folders):
    """With no model the station builds the demo (training faked here), loads it and runs the looping line."""
    data, weights = private_folders
    calls = []

    def fake_prepare_demo(*, stop, out_dir=None, model_dir=None):
        calls.append((out_dir, model_dir))
        yield DemoProgress(0.0, "Generating synthetic parts...")
        yield DemoProgress(0.5, "Training demo model: epoch 3")
        target = Path(model_dir) / "demo-synthetic.safetensors"
        shutil.copyfile(model_file, target)
        yield DemoReady(model_path=target, line_folder=line_folder, dataset=line_folder, metrics={})

    monkeypatch.setattr("visinspect_gui.widgets.demo_panel.prepare_demo", fake_prepare_demo)
    w = make_window(auto_demo=True)
    qtbot.waitUntil(lambda: w.live.counters.inspected >= 7, timeout=60_000)  # looping past the 6 parts
    assert calls == [(data / "demo", weights)]
    assert w.source_panel.spec() == str(line_folder) and w.source_panel.loop
    assert w.station.inspector.path.name == "demo-synthetic.safetensors"
    assert w.model_panel.no_imagenet.isVisibleTo(w)
    assert not w.demo_panel.isVisible()
    qtbot.waitUntil(lambda: "demo-synthetic.safetensors" in w.model_panel.models()[0], timeout=10_000)
    w.station.stop()


@pytest.mark.skipif(os.name == "nt", reason="the Linux menu entry; Windows goes through pyshortcuts")
def test_install_shortcut_writes_menu_and_desktop_entries_that_survive_spaces_in_paths(monkeypatch, tmp_path):
    import configparser
    import shlex

    from visinspect_gui import shortcut

    env = tmp_path / "Line 3 station" / "venv"  # a path with spaces, as on many stations
    (env / "bin").mkdir(parents=True)
    command = env / "bin" / "visinspect"
    command.write_text("#!/bin/sh\n", encoding="utf-8")
    monkeypatch.setattr(sys, "executable", str(env / "bin" / "python"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home" / ".local" / "share"))
    monkeypatch.setenv("XDG_DESKTOP_DIR", str(tmp_path / "home" / "Desktop"))

    paths = [Path(p) for p in shortcut.install_shortcut()]
    assert paths == [tmp_path / "home" / "Desktop" / "visinspect.desktop", tmp_path / "home" / ".local" / "share" / "applications" / "visinspect.desktop"]
    for path in paths:
        entry = configparser.ConfigParser(interpolation=None)
        entry.optionxform = str
        entry.read(path, encoding="utf-8")
        desktop = entry["Desktop Entry"]
        assert desktop["Type"] == "Application" and desktop["Name"] == "VisInspect" and desktop["Terminal"] == "false"
        assert shlex.split(desktop["Exec"]) == [str(command), "gui"]  # one argument, spaces and all
        assert Path(desktop["Icon"]).is_file() and Path(desktop["Icon"]).suffix == ".png"
        assert "{" not in path.read_text(encoding="utf-8")  # every placeholder filled
        assert os.access(path, os.X_OK)


def test_exec_arguments_are_quoted_and_escaped_as_the_desktop_entry_spec_says():
    from visinspect_gui.shortcut import _exec_arg

    assert _exec_arg("/opt/visinspect/bin/visinspect") == "/opt/visinspect/bin/visinspect"
    assert _exec_arg("/home/jo/Line 3/visinspect") == '"/home/jo/Line 3/visinspect"'
    assert _exec_arg('/a "b"/$x') == '"/a \\\\"b\\\\"/\\\\$x"'
    assert _exec_arg("/100%/x") == "/100%%/x"


def test_resources_hold_the_icon_in_every_format_and_a_desktop_template():
    root = station_app.RESOURCES_DIR
    for name in ("visinspect.png", "visinspect.ico", "visinspect.svg", "visinspect.desktop"):
        assert (root / name).is_file(), name
    assert (root / "visinspect.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (root / "visinspect.ico").read_bytes()[:4] == b"\x00\x00\x01\x00"
    desktop = (root / "visinspect.desktop").read_text(encoding="utf-8")
    assert "[Desktop Entry]" in desktop and "Exec=" in desktop


def test_a_wheel_install_carries_the_icons_where_the_station_looks_for_them(tmp_path):
    import shutil
    import subprocess
    import zipfile

    root = Path(station_app.__file__).resolve().parents[1]
    src = tmp_path / "src"  # a copy, so the build leaves nothing in the checkout
    for name in ("engine", "visinspect_gui", "resources"):
        shutil.copytree(root / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, src / name)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("visinspect-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    # pip installs a wheel's .data/data/ under sys.prefix: share/visinspect is where the station looks without a checkout.
    shipped = {n.rsplit("/", 1)[-1] for n in names if "/data/share/visinspect/" in n}
    assert shipped == {"visinspect.png", "visinspect.ico", "visinspect.svg", "visinspect.desktop"}
    assert "visinspect_gui/style.qss" in names


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="True is immortal from Python 3.12, so the bug cannot bite")
def test_the_qt_binding_keeps_reference_counts(qapp):
    """PySide6 6.12.0 drops a reference to True on every Signal.emit (and to None in model data()); on
    Python 3.11 that crashes the station after a few hundred frames. Pin PySide6-Essentials != 6.12.0."""

    class Emitter(QObject):
        ping = Signal(int)

    emitter = Emitter()
    emitter.ping.connect(lambda _v: None)
    before = sys.getrefcount(True)
    for i in range(50):
        emitter.ping.emit(i)
    assert sys.getrefcount(True) >= before - 2, "this PySide6 build corrupts reference counts; use another version"


def test_visinspect_gui_passes_its_options_to_the_station():
    import os
    import subprocess

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    r = subprocess.run([sys.executable, "-m", "engine.cli", "gui", "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "--model FILE" in r.stdout and "--start" in r.stdout
