"""Desktop and menu shortcuts for the station (Linux desktop + applications menu, Windows desktop + Start menu)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import sys
from pathlib import Path

from visinspect_gui.app import resource

NAME = "VisInspect"
DESCRIPTION = "VisInspect visual inspection station"
_EXEC_RESERVED = re.compile(r"""[\s"'\\><~|&;$*?#()`]""")


def launcher_command() -> tuple[Path, tuple[str, ...]]:
    """What a shortcut runs: `visinspect gui` from this environment (the GUI entry point on Windows)."""
    bindir = Path(sys.executable).parent
    if os.name == "nt":
        # The gui-script starts without a console window; fall back to the console command.
        for name, args in (("visinspect-station.exe", ()), ("visinspect.exe", ("gui",))):
            if (bindir / name).is_file():
                return bindir / name, args
    command = bindir / "visinspect"
    if not command.is_file():
        found = shutil.which("visinspect")
        command = Path(found) if found else command
    return command, ("gui",)


def launcher() -> str:
    """The shortcut's command as one line, for showing to the user."""
    command, args = launcher_command()
    return " ".join([_exec_arg(str(command)), *args])


def _exec_arg(arg: str) -> str:
    """One argument of a Desktop Entry Exec line, quoted by the spec's rules when it needs it (e.g. spaces)."""
    if _EXEC_RESERVED.search(arg):
        arg = '"' + re.sub(r'(["`$\\])', r"\\\1", arg) + '"'
    return arg.replace("\\", "\\\\").replace("%", "%%")  # the string-level escape comes on top of the quoting


def desktop_entry(command: Path, args: tuple[str, ...], icon: Path) -> str:
    """The filled-in Desktop Entry from resources/visinspect.desktop."""
    template = resource("visinspect.desktop").read_text(encoding="utf-8")
    lines = [line for line in template.splitlines() if not line.startswith("#")]
    exec_line = " ".join([_exec_arg(str(command)), *(_exec_arg(a) for a in args)])
    text = "\n".join(lines).replace("Exec={exec} gui", f"Exec={exec_line}").replace("{icon}", str(icon))
    return text + "\n"


def _linux_folders() -> tuple[Path, Path]:
    """The desktop folder and the applications-menu folder of this user (XDG)."""
    from platformdirs import user_desktop_dir

    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return Path(user_desktop_dir()), data_home / "applications"


def _short_path(path: Path) -> str:
    """Windows: the 8.3 form of a path with spaces (pyshortcuts splits its command at the first space)."""
    import ctypes

    buffer = ctypes.create_unicode_buffer(32768)
    n = ctypes.windll.kernel32.GetShortPathNameW(str(path), buffer, len(buffer))
    return buffer.value if 0 < n < len(buffer) else str(path)


def install_shortcut() -> list[str]:
    """Create the shortcuts with the station's icon; returns the paths of the shortcut files written."""
    command, args = launcher_command()
    if os.name == "nt":
        import pyshortcuts

        made = pyshortcuts.make_shortcut(
            " ".join([_short_path(command) if " " in str(command) else str(command), *args]),
            name=NAME,
            description=DESCRIPTION,
            icon=str(resource("visinspect.ico")),
            terminal=False,
            desktop=True,
            startmenu=True,
            noexe=True,  # the command is complete; do not prefix it with python
        )
        return [str(Path(made.desktop_dir) / made.target), str(Path(made.startmenu_dir) / made.target)]
    text = desktop_entry(command, args, resource("visinspect.png"))
    written = []
    for folder in _linux_folders():
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "visinspect.desktop"
        target.write_text(text, encoding="utf-8")
        target.chmod(target.stat().st_mode | stat.S_IXUSR)  # desktops only start entries their owner may run
        written.append(str(target))
    return written
