#!/bin/sh
# Qt needs a few system libraries (EGL, xkbcommon, fontconfig; xcb-cursor for a window on X11).
# Install them on Debian/Ubuntu when missing and we are root; otherwise say which to install.
PY=${1:-python3}
LIBS="libegl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libgl1 libglib2.0-0 libxcb-cursor0"
qt_ok() { QT_QPA_PLATFORM=offscreen "$PY" -c "import PySide6.QtGui, PySide6.QtWidgets" 2>/dev/null; }
xcb_ok() { ! command -v ldconfig >/dev/null 2>&1 || ldconfig -p | grep -q libxcb-cursor.so.0; }
if qt_ok && xcb_ok; then
    exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "Installing the system libraries Qt needs ($LIBS)..."
    (apt-get update -qq && apt-get install -y -qq $LIBS >/dev/null) || echo "warning: could not install $LIBS" >&2
fi
if ! qt_ok; then
    echo "Qt cannot load: install $LIBS with your package manager." >&2
    exit 1
fi
xcb_ok || echo "note: a window on X11 needs libxcb-cursor0; install it to run the station on a desktop." >&2
exit 0
