#!/bin/sh
# Qt needs a few system libraries (EGL, xkbcommon, fontconfig); install them on Debian/Ubuntu when missing.
PY=${1:-python3}
if QT_QPA_PLATFORM=offscreen "$PY" -c "import PySide6.QtGui, PySide6.QtWidgets" 2>/dev/null; then
    exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "Installing the system libraries Qt needs (libegl1, libxkbcommon0, libfontconfig1, libdbus-1-3, libgl1)..."
    apt-get update -qq && apt-get install -y -qq libegl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libgl1 libglib2.0-0 >/dev/null
else
    echo "Qt cannot load: install libegl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libgl1 with your package manager." >&2
    exit 1
fi
