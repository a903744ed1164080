"""Which central server to use: a PostgreSQL URL without its password, shown as HOST/DB, connected through libpq.

The password comes from PGPASSWORD, a pgpass file (PGPASSFILE or ~/.pgpass, read by libpq) or the station's
settings, never from the command line; every message that leaves this package goes through `mask` first.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from engine.central.errors import CentralError, CentralUnreachable

INSTALL_HINT = "PostgreSQL support is not installed: pip install 'visinspect[central]'"
# Applied unless the URL says otherwise: a dead server or a half-open connection fails in seconds, never hangs.
CONNECT_DEFAULTS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",  # ms unacknowledged before the connection counts as dead
    "application_name": "visinspect",
}
_URL_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*@", re.IGNORECASE)
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def psycopg_module():
    """psycopg, or CentralError saying which extra adds it."""
    try:
        import psycopg
    except ImportError:
        raise CentralError(INSTALL_HINT) from None
    return psycopg


def one_line(text: str) -> str:
    """The first non-empty line of a (libpq) message, whitespace collapsed."""
    for line in str(text).splitlines():
        if line.strip():
            return " ".join(line.split())
    return "no reason given"


@dataclass(frozen=True)
class CentralTarget:
    """A central PostgreSQL: libpq connection parameters (no password unless given by settings) and a display name."""

    params: dict[str, str]
    password: str | None = field(default=None, repr=False)  # from the station's settings; None: libpq finds it

    @classmethod
    def parse(cls, url: str, *, password: str | None = None, allow_password_in_url: bool = False) -> CentralTarget:
        """A target from `postgresql://USER@HOST[:PORT]/DB[?sslmode=...]` (or libpq `key=value` text).

        A password in the URL is refused unless allowed (a command line is visible to every user of the machine).
        """
        psycopg = psycopg_module()
        text = str(url).strip()
        if not text:
            raise CentralError("the central store URL is empty; give e.g. postgresql://station@plant-db/visinspect")
        try:
            params = {k: str(v) for k, v in psycopg.conninfo.conninfo_to_dict(text).items()}
        except psycopg.ProgrammingError as exc:
            raise CentralError(
                f"not a PostgreSQL URL: {_mask_known(text, [])!r} ({one_line(exc)}); give e.g. postgresql://station@plant-db/visinspect"
            ) from None
        in_url = params.pop("password", None)
        if in_url is not None and not allow_password_in_url:
            raise CentralError(
                "the central store URL holds a password: remove it and set PGPASSWORD or a pgpass file "
                "(PGPASSFILE or ~/.pgpass) instead, so it never appears on a command line"
            )
        return cls(params, password if password is not None else in_url)

    @property
    def host(self) -> str:
        host = self.params.get("host") or self.params.get("hostaddr") or "localhost"
        port = self.params.get("port")
        return f"{host}:{port}" if port and port != "5432" else host

    @property
    def dbname(self) -> str:
        return self.params.get("dbname") or self.params.get("user") or "postgres"

    @property
    def display(self) -> str:
        """HOST/DB: how messages name the server (no user, no password)."""
        return f"{self.host}/{self.dbname}"

    @property
    def key(self) -> str:
        """The address the local log remembers which store it last found at (progress is kept per store id)."""
        return f"{self.host}/{self.dbname}"

    def mask(self, text: object) -> str:
        """text with any password (this target's, or one in a URL or key=value) replaced by ***."""
        return _mask_known(str(text), [self.password] if self.password else [])

    def connect(self):
        """An open psycopg connection (autocommit off), or CentralUnreachable in one masked line."""
        psycopg = psycopg_module()
        kwargs: dict[str, Any] = {k: v for k, v in CONNECT_DEFAULTS.items() if k not in self.params}
        if self.password is not None:
            kwargs["password"] = self.password
        try:
            return psycopg.connect(psycopg.conninfo.make_conninfo(**self.params), **kwargs)
        except psycopg.Error as exc:
            raise CentralUnreachable(f"cannot reach the central store {self.display}: {self.mask(one_line(exc))}") from None


def _mask_known(text: str, secrets: list[str]) -> str:
    from urllib.parse import quote

    for secret in secrets:
        if secret:
            text = text.replace(secret, "***").replace(quote(secret, safe=""), "***")
    text = _URL_PASSWORD.sub(r"\1***@", text)
    return _KEYWORD_PASSWORD.sub(r"\1***", text)
