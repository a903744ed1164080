"""scripts/qt_libs.py finds every library Qt's xcb plugin lacks (ldd) and names its Debian package; the Makefile's
set-up stamp is written only when that check passes, so a failed check runs again next time."""
from __future__ import annotations

import importlib.util
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("qt_libs", ROOT / "scripts" / "qt_libs.py")
qt_libs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(qt_libs)

# `ldd libqxcb.so` on a fresh Debian 12 (the start-up crash of issue 11), abridged.
FRESH_DEBIAN_LDD = """\
\tlinux-vdso.so.1 (0x00007ffd5d9e5000)
\tlibQt6XcbQpa.so.6 => /home/op/visinspect/.venv/lib/python3.11/site-packages/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x00007f1c2d1a0000)
\tlibGL.so.1 => /lib/x86_64-linux-gnu/libGL.so.1 (0x00007f1c2c779000)
\tlibxkbcommon-x11.so.0 => /lib/x86_64-linux-gnu/libxkbcommon-x11.so.0 (0x00007f1c2d316000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f1c2d30f000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-util.so.1 => /lib/x86_64-linux-gnu/libxcb-util.so.1 (0x00007f1c2c76a000)
\tlibxcb-image.so.0 => /lib/x86_64-linux-gnu/libxcb-image.so.0 (0x00007f1c2c764000)
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-randr.so.0 => /lib/x86_64-linux-gnu/libxcb-randr.so.0 (0x00007f1c2c753000)
\tlibxcb-render-util.so.0 => /lib/x86_64-linux-gnu/libxcb-render-util.so.0 (0x00007f1c2b800000)
\tlibX11-xcb.so.1 => /lib/x86_64-linux-gnu/libX11-xcb.so.1 (0x00007f1c2bf60000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f1c2d3fc000)
"""
LIBQT6GUI_LDD = """\
\tlinux-vdso.so.1 (0x00007ffc1b7f2000)
\tlibEGL.so.1 => not found
\tlibfontconfig.so.1 => /lib/x86_64-linux-gnu/libfontconfig.so.1 (0x00007f3a1a89f000)
\tlibxkbcommon.so.0 => not found
\tlibxcb-icccm.so.4 => not found
"""


def test_fresh_debian_ldd_output_gives_the_missing_packages():
    missing = qt_libs.missing_sonames(FRESH_DEBIAN_LDD + LIBQT6GUI_LDD)
    assert missing == ["libEGL.so.1", "libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxkbcommon.so.0"]
    assert qt_libs.packages_for(missing) == ["libegl1", "libxcb-icccm4", "libxcb-keysyms1", "libxkbcommon0"]
    assert qt_libs.missing_sonames(FRESH_DEBIAN_LDD.replace(" => not found", " => /lib/x.so (0x1)")) == []


@pytest.mark.parametrize("soname, package", [
    ("libxcb-icccm.so.4", "libxcb-icccm4"), ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-cursor.so.0", "libxcb-cursor0"), ("libxcb-render-util.so.0", "libxcb-render-util0"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"), ("libX11-xcb.so.1", "libx11-xcb1"),
    ("libEGL.so.1", "libegl1"), ("libdbus-1.so.3", "libdbus-1-3"), ("libglib-2.0.so.0", "libglib2.0-0"),
    ("libSM.so.6", "libsm6"), ("libz.so.1", "zlib1g"), ("libgcc_s.so.1", "libgcc-s1"), ("libdl.so.2", "libc6"),
    # not in the table: Debian's naming rule (a hyphen before the version when the name ends in a digit)
    ("libxcb-xinput.so.0", "libxcb-xinput0"), ("libXrandr.so.2", "libxrandr2"), ("libpng16.so.16", "libpng16-16"),
    ("libwayland-cursor.so.0.22.0", "libwayland-cursor0"), ("libQt6Gui.so.6", "libqt6gui6"),
])  # fmt: skip
def test_each_soname_maps_to_its_debian_package(soname, package):
    assert qt_libs.debian_package(soname) == package


def test_the_table_holds_debian_package_names():
    """Every table entry is a real Debian package name (lower case, no underscore)."""
    for package in qt_libs.KNOWN_PACKAGES.values():
        assert package == package.lower() and "_" not in package


@pytest.fixture
def lacking(monkeypatch, tmp_path):
    """Pretend this machine lacks two libraries of the xcb plugin until apt installs them; returns the apt calls."""
    calls: list[list[str]] = []
    state = {"missing": ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]}

    def install(packages):
        calls.append(list(packages))
        state["missing"] = []
        return True

    monkeypatch.setattr(qt_libs.sys, "platform", "linux")
    monkeypatch.setattr(qt_libs, "pyside_dir", lambda: tmp_path)
    monkeypatch.setattr(qt_libs, "find_missing", lambda root: list(state["missing"]))
    monkeypatch.setattr(qt_libs, "apt_install", install)
    monkeypatch.setattr(qt_libs.shutil, "which", lambda name: f"/usr/bin/{name}")
    return calls


def test_without_root_it_prints_the_exact_apt_line_and_fails(lacking, monkeypatch, capsys):
    monkeypatch.setattr(qt_libs.os, "geteuid", lambda: 1000)
    assert qt_libs.main(["--install"]) == 1
    err = capsys.readouterr().err
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in err
    assert "\n  sudo apt-get install -y libxcb-icccm4 libxcb-keysyms1\n" in err
    assert lacking == []


def test_as_root_it_installs_the_missing_packages_and_checks_again(lacking, monkeypatch, capsys):
    monkeypatch.setattr(qt_libs.os, "geteuid", lambda: 0)
    assert qt_libs.main(["--install"]) == 0
    assert lacking == [["libxcb-icccm4", "libxcb-keysyms1"]]
    assert capsys.readouterr().err == ""


def test_check_never_installs(lacking, monkeypatch):
    monkeypatch.setattr(qt_libs.os, "geteuid", lambda: 0)
    assert qt_libs.main(["--check"]) == 1
    assert lacking == []


def test_an_install_that_does_not_help_is_tried_once_and_says_so(lacking, monkeypatch, capsys):
    monkeypatch.setattr(qt_libs.os, "geteuid", lambda: 0)
    monkeypatch.setattr(qt_libs, "apt_install", lambda packages: lacking.append(packages) or True)  # installs nothing
    assert qt_libs.main(["--install"]) == 1
    assert lacking == [["libxcb-icccm4", "libxcb-keysyms1"]]  # tried once, not forever
    err = capsys.readouterr().err
    assert "lacks libxcb-icccm.so.4, libxcb-keysyms.so.1" in err
    assert "apt-get install libxcb-icccm4 libxcb-keysyms1 did not provide them" in err


def test_real_ldd_on_a_plugin_whose_libraries_are_gone(tmp_path):
    """The real xcb plugin copied away from its Qt libraries: ldd's "not found" lines are all reported."""
    if not sys.platform.startswith("linux") or shutil.which("ldd") is None:
        pytest.skip("ldd is Linux only")
    pyside = qt_libs.pyside_dir()
    if pyside is None or not (pyside / qt_libs.QT_FILES[0]).is_file():
        pytest.skip("PySide6 with its xcb plugin is not installed")
    plugin = tmp_path / qt_libs.QT_FILES[0]
    plugin.parent.mkdir(parents=True)
    shutil.copyfile(pyside / qt_libs.QT_FILES[0], plugin)
    missing = qt_libs.find_missing(tmp_path)
    assert {"libQt6XcbQpa.so.6", "libQt6Gui.so.6", "libQt6Core.so.6"} <= set(missing)
    assert qt_libs.find_missing(pyside) == []  # and this machine's own PySide6 has everything it needs


def _fake_venv(tmp_path: Path) -> Path:
    """A venv whose python accepts pip and answers the Qt check with $FAKE_QT_CHECK as its exit status."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text('#!/bin/sh\ncase "$*" in *qt_libs.py*) exit "$FAKE_QT_CHECK";; esac\nexit 0\n')
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return venv


@pytest.mark.parametrize("check, stamped", [(1, False), (0, True)])
def test_make_writes_the_setup_stamp_only_when_the_qt_check_passes(tmp_path, check, stamped):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = _fake_venv(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}  # `make test` runs us
    done = subprocess.run(["make", "-C", str(ROOT), "setup", f"VENV={venv}"], capture_output=True, text=True,
                          env={**env, "FAKE_QT_CHECK": str(check)}, timeout=60)  # fmt: skip
    assert (done.returncode == 0) == stamped, done.stderr
    assert (venv / ".installed").exists() == stamped
