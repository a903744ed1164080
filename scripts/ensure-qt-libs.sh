#!/bin/sh
# Qt's xcb platform plugin links system libraries a bare Debian lacks: find every missing one (ldd) and install
# its package when root; otherwise print the exact apt-get line and fail. Usage: ensure-qt-libs.sh PYTHON [--xvfb]
PY=${1:-python3}
[ $# -gt 0 ] && shift
exec "$PY" "$(dirname "$0")/qt_libs.py" --install "$@"
