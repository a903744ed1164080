"""Help → About: the versions this station runs on and where the loaded model came from."""

from __future__ import annotations

import html
import platform
import sys
from importlib import metadata
from pathlib import Path

import PySide6
from PySide6.QtCore import qVersion

from engine import __version__

_PACKAGES = ("torch", "torchvision", "numpy", "opencv-python-headless", "pyqtgraph")


def _version(package: str) -> str:
    """A package's installed version without importing it (importing torch here would stall the window)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    """Name -> version of VisInspect, Python, Qt and the libraries that decide what the model computes."""
    found = {"VisInspect": __version__, "Python": platform.python_version(), "PySide6": PySide6.__version__, "Qt": qVersion()}
    found.update({name: _version(name) for name in _PACKAGES})
    found["System"] = f"{platform.system()} {platform.release()} ({platform.machine()})"
    return found


def about_html(inspector=None, *, log_folder: Path | None = None) -> str:
    """The About text: versions, the loaded model's file, hash, origin and device, and the log folder."""
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td><b>{html.escape(v)}</b></td></tr>" for k, v in versions().items())
    parts = [f"<h3>VisInspect {__version__}</h3><p>Visual inspection station (CAM defect detector).</p><table>{rows}</table>"]
    if inspector is not None:
        meta = inspector.meta
        origin = meta.dataset.get("root") or meta.dataset.get("name") or "unknown dataset"
        parts.append(
            "<h4>Loaded model</h4>"
            f"<p>{html.escape(str(inspector.path))}<br>sha256 {html.escape(inspector.ref.sha256)}<br>"
            f"{html.escape(meta.describe())}<br>trained {html.escape(meta.created)} on {html.escape(str(origin))} "
            f"with VisInspect {html.escape(meta.engine_version)}<br>"
            f"runs on {html.escape(inspector.device_name)} · {html.escape(inspector.precision_name)}</p>"
        )
    else:
        parts.append("<p>No model is loaded.</p>")
    if log_folder is not None:
        parts.append(f"<p>Station log: {html.escape(str(log_folder))}</p>")
    parts.append(f"<p style='color:#8a9099'>{html.escape(sys.executable)}</p>")
    return "".join(parts)
