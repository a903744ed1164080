"""A real, throwaway PostgreSQL for tests: initdb in a temp folder, one free loopback port, password logins only.

initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` user (runuser). `PgServer.find()`
is None where no PostgreSQL can start here (tests skip). stop() and restart keep the data and the port.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

ADMIN = "plant_admin"


def _bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """One PostgreSQL cluster on 127.0.0.1:port; the admin role logs in with `password` (scram-sha-256)."""

    def __init__(self, bindir: Path, password: str, *, fsync: bool = False):
        self.bindir = bindir
        self.fsync = fsync  # off for tests (faster; a clean stop still keeps every commit), on for measurements
        self.password = password
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="visinspect-pg-"))
        self.data = self.root / "data"
        self._as = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres")
        pwfile = self.root / "pw"
        try:
            pwfile.write_text(password + "\n")
            if self._as:
                shutil.chown(pwfile, "postgres")
            self._run("initdb", "-D", str(self.data), "-U", ADMIN, f"--pwfile={pwfile}", "-A", "scram-sha-256",
                      "--no-sync", "-E", "UTF8", "--locale=C")  # fmt: skip
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        pwfile.unlink()
        self.running = False

    @classmethod
    def find(cls, password: str, *, fsync: bool = False) -> tuple[PgServer | None, str]:
        """(a started server, "") or (None, why not)."""
        bindir = _bindir()
        if bindir is None:
            return None, "PostgreSQL (initdb, pg_ctl) is not installed"
        if os.geteuid() == 0 and (shutil.which("runuser") is None or _no_user("postgres")):
            return None, "running as root without runuser or a postgres user, and initdb refuses root"
        server = None
        try:
            server = cls(bindir, password, fsync=fsync)
            server.start()
        except (OSError, subprocess.SubprocessError) as exc:
            if server is not None:
                server.close()
            return None, f"PostgreSQL cannot start here: {exc}"
        return server, ""

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([*self._as, str(self.bindir / tool), *args], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            raise OSError(f"{tool} failed: {lines[-1] if lines else f'exit status {done.returncode}'}")

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' -c fsync={'on' if self.fsync else 'off'}"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"), "-w", "-t", "30", "start")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; mode "immediate" is a crash (recovery on the next start)."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")
            self.running = False

    def url(self, dbname: str = "postgres", user: str = ADMIN) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"

    def close(self) -> None:
        try:
            self.stop("immediate")
        except (OSError, subprocess.SubprocessError):
            pass
        shutil.rmtree(self.root, ignore_errors=True)


def _no_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return True
    return False
