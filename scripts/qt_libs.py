#!/usr/bin/env python3
"""Find the system libraries Qt's xcb platform plugin links but this machine lacks (ldd), and install their Debian packages.

Run it with the Python that has PySide6 (the Makefile passes the venv's):
  PY scripts/qt_libs.py --check      list what is missing; exit 1 if anything is
  PY scripts/qt_libs.py --install    as root with apt-get: install it; otherwise print the sudo apt-get line and exit 1
  add --xvfb to also install Xvfb for the real-window test (a note, not a failure, when it cannot be installed)
Standard library only: it runs before anything else is known to work.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# What a window on X11 loads: the platform plugin, the Qt libraries it pulls in (ldd follows them all) and its
# OpenGL integrations (without them Qt warns and draws without GL).
QT_FILES = (
    "Qt/plugins/platforms/libqxcb.so",
    "Qt/lib/libQt6XcbQpa.so.6",
    "Qt/lib/libQt6Gui.so.6",
    "Qt/lib/libQt6Widgets.so.6",
    "Qt/plugins/xcbglintegrations/libqxcb-glx-integration.so",
    "Qt/plugins/xcbglintegrations/libqxcb-egl-integration.so",
)

# Debian 12 package of each soname Qt is known to need; any other follows Debian's naming rule (debian_package).
KNOWN_PACKAGES = {
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libOpenGL.so.0": "libopengl0",
    "libGLdispatch.so.0": "libglvnd0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libgobject-2.0.so.0": "libglib2.0-0",
    "libgio-2.0.so.0": "libglib2.0-0",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libz.so.1": "zlib1g",
    "libc.so.6": "libc6",
    "libm.so.6": "libc6",
    "libdl.so.2": "libc6",
    "libpthread.so.0": "libc6",
    "librt.so.1": "libc6",
    "libgcc_s.so.1": "libgcc-s1",
    "libbrotlidec.so.1": "libbrotli1",
    "libbrotlicommon.so.1": "libbrotli1",
}

XVFB_PACKAGES = ("xvfb", "xauth")

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$", re.MULTILINE)
_SONAME = re.compile(r"(lib[A-Za-z0-9_.+-]*?)\.so\.(\d+)(?:\.\d+)*")


def missing_sonames(ldd_output: str) -> list[str]:
    """The sonames ldd reports as "=> not found", sorted, each once."""
    return sorted(set(_NOT_FOUND.findall(ldd_output)))


def debian_package(soname: str) -> str:
    """The Debian package that ships soname: the table, else Debian's rule (libfoo.so.1 -> libfoo1, libfoo2.so.0 -> libfoo2-0)."""
    if soname in KNOWN_PACKAGES:
        return KNOWN_PACKAGES[soname]
    match = _SONAME.fullmatch(soname)
    if match is None:
        return soname.lower().replace("_", "-")
    name, version = match.group(1).lower().replace("_", "-"), match.group(2)
    return f"{name}-{version}" if name[-1].isdigit() else f"{name}{version}"


def packages_for(sonames: list[str]) -> list[str]:
    """The Debian packages for these sonames, sorted, each once."""
    return sorted({debian_package(s) for s in sonames})


def pyside_dir() -> Path | None:
    """PySide6's package folder in this Python, found without importing it (importing may be what fails)."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def find_missing(root: Path) -> list[str]:
    """Every soname the xcb platform plugin and its Qt libraries link that the dynamic loader cannot find."""
    output = []
    for name in QT_FILES:
        path = root / name
        if path.is_file():
            output.append(subprocess.run(["ldd", str(path)], capture_output=True, text=True).stdout)
    return missing_sonames("\n".join(output))


def can_apt_install() -> bool:
    return shutil.which("apt-get") is not None and os.geteuid() == 0


def apt_install(packages: list[str]) -> bool:
    """apt-get install the packages (after an update); True when apt-get succeeded."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"Installing system packages: {' '.join(packages)}", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], env=env, stdout=subprocess.DEVNULL)
    done = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], env=env,
                          stdout=subprocess.DEVNULL)  # fmt: skip
    return done.returncode == 0


def how_to_install(packages: list[str]) -> str:
    """The exact command a user runs to get the packages."""
    if shutil.which("apt-get"):
        return f"sudo apt-get install -y {' '.join(packages)}"
    return f"install the packages that provide them with your package manager (on Debian/Ubuntu: {' '.join(packages)})"


def ensure_qt_libs(install: bool) -> int:
    """0 when Qt's xcb plugin finds every library (installing the missing ones when allowed), else 1 with the fix."""
    if not sys.platform.startswith("linux") or shutil.which("ldd") is None:
        return 0  # PySide6 wheels bundle what they need elsewhere
    root = pyside_dir()
    if root is None:
        print(f"PySide6 is not installed in {sys.executable}; run `make setup` first.", file=sys.stderr)
        return 1
    missing = find_missing(root)
    tried: set[str] = set()
    # An installed library can reveal a further missing one behind it, so check again after each install.
    while missing and install and can_apt_install() and not set(packages_for(missing)) <= tried:
        packages = packages_for(missing)
        tried.update(packages)
        if not apt_install(packages):
            break
        missing = find_missing(root)
    if not missing:
        return 0
    packages = packages_for(missing)
    lacks = f"Qt cannot open a window: this machine lacks {', '.join(missing)} (needed by PySide6's xcb platform plugin)."
    if tried:
        print(f"{lacks}\napt-get install {' '.join(sorted(tried))} did not provide them: install the packages that ship "
              f"these files (apt-file search NAME finds them).", file=sys.stderr)  # fmt: skip
    else:
        print(f"{lacks}\nInstall them with:\n  {how_to_install(packages)}", file=sys.stderr)
    return 1


def ensure_xvfb(install: bool) -> int:
    """Install Xvfb for the real-window test when missing and allowed; otherwise a note (the test then skips)."""
    if shutil.which("Xvfb") is None and install and can_apt_install():
        apt_install(list(XVFB_PACKAGES))
    if shutil.which("Xvfb") is None and sys.platform.startswith("linux"):
        print(f"note: Xvfb is missing, so the real-window test will be skipped; {how_to_install(list(XVFB_PACKAGES))}",
              file=sys.stderr)  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="report missing libraries; exit 1 if any")
    mode.add_argument("--install", action="store_true", help="install missing libraries as root, else print the apt line")
    parser.add_argument("--xvfb", action="store_true", help="also make sure Xvfb is there for the real-window test")
    args = parser.parse_args(argv)
    code = ensure_qt_libs(args.install)
    if args.xvfb:
        ensure_xvfb(args.install)
    return code


if __name__ == "__main__":
    sys.exit(main())
