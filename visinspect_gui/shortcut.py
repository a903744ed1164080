"""Desktop and menu shortcuts for the station (Linux desktop + applications menu, Windows desktop + Start menu)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from visinspect_gui.app import resource

NAME = "VisInspect"
DESCRIPTION = "VisInspect visual inspection station"


def launcher() -> str:
    """The command a shortcut runs: `visinspect gui` from this environment (the GUI entry point on Windows)."""
    bindir = Path(sys.executable).parent
    if os.name == "nt":
        # The gui-script starts without a console window; fall back to the console command.
        for name, args in (("visinspect-station.exe", ""), ("visinspect.exe", " gui")):
            if (bindir / name).is_file():
                return f"{bindir / name}{args}"
    command = bindir / "visinspect"
    if not command.is_file():
        found = shutil.which("visinspect")
        command = Path(found) if found else command
    return f"{command} gui"


def install_shortcut() -> list[str]:
    """Create the shortcuts with the station's icon; returns the paths of the shortcut files written."""
    import pyshortcuts

    icon = resource("visinspect.ico" if os.name == "nt" else "visinspect.png")
    made = pyshortcuts.make_shortcut(
        launcher(),
        name=NAME,
        description=DESCRIPTION,
        icon=str(icon),
        terminal=False,
        desktop=True,
        startmenu=True,
        noexe=True,  # the command is complete; do not prefix it with python
    )
    return [str(Path(made.desktop_dir) / made.target), str(Path(made.startmenu_dir) / made.target)]
