"""The line users file: who may write to the station over the network (OPC UA), with salted, slow password hashes.

One user per line, `NAME:HASH`; blank lines and lines starting with `#` are ignored. HASH is
`scrypt$N$r$p$SALT$KEY` (the default) or `pbkdf2_sha256$ITERATIONS$SALT$KEY`, SALT and KEY in base64.
Plain passwords are never stored; `add_user` writes the file atomically, readable by its owner only.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import os
import re
import secrets
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine.errors import LineIOError
from engine.paths import data_dir

SCRYPT = "scrypt"
PBKDF2 = "pbkdf2_sha256"
SCHEMES = (SCRYPT, PBKDF2)
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # ~16 MiB and tens of ms per check: slow for guessing, fine for a login
PBKDF2_ITERATIONS = 600_000
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


def default_users_file() -> Path:
    """Where the station looks for line users unless told otherwise."""
    return data_dir() / "line-users.txt"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, scheme: str = SCRYPT) -> str:
    """A salted hash of password in the users-file format (scheme: scrypt or pbkdf2_sha256)."""
    if not password:
        raise LineIOError("a line user's password cannot be empty")
    salt = secrets.token_bytes(16)
    secret = password.encode("utf-8")
    if scheme == SCRYPT:
        key = hashlib.scrypt(secret, salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
        return f"{SCRYPT}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"
    if scheme == PBKDF2:
        key = hashlib.pbkdf2_hmac("sha256", secret, salt, PBKDF2_ITERATIONS)
        return f"{PBKDF2}${PBKDF2_ITERATIONS}${_b64(salt)}${_b64(key)}"
    raise LineIOError(f"unknown password scheme {scheme!r}: use {' or '.join(SCHEMES)}")


def verify_password(password: str, encoded: str) -> bool:
    """True when password matches the stored hash; a malformed hash never matches."""
    try:
        scheme, *fields = encoded.split("$")
        secret = password.encode("utf-8")
        if scheme == SCRYPT and len(fields) == 5:
            n, r, p = (int(v) for v in fields[:3])
            salt, key = base64.b64decode(fields[3]), base64.b64decode(fields[4])
            got = hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, dklen=len(key), maxmem=256 * n * r + 2**20)
        elif scheme == PBKDF2 and len(fields) == 3:
            salt, key = base64.b64decode(fields[1]), base64.b64decode(fields[2])
            got = hashlib.pbkdf2_hmac("sha256", secret, salt, int(fields[0]), dklen=len(key))
        else:
            return False
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, key)


def _check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise LineIOError(f"line user name {name!r} is not allowed: use 1-64 letters, digits, '_', '.', '@' or '-'")
    return name


def load_users(path: Path | str) -> dict[str, str]:
    """name -> stored hash, from a users file (LineIOError naming the file and line when it is malformed)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LineIOError(f"line users file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LineIOError(f"line users file {path} cannot be read: {exc}") from None
    users: dict[str, str] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, encoded = line.partition(":")
        if not sep or not NAME_PATTERN.fullmatch(name) or encoded.split("$")[0] not in SCHEMES:
            raise LineIOError(
                f"line users file {path}, line {line_no}: expected NAME:HASH with a {' or '.join(SCHEMES)} hash"
            )
        users[name] = encoded
    return users


def _write_users(path: Path, users: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# VisInspect line users: NAME:HASH (add with `visinspect users add NAME`)"]
    lines += [f"{name}:{encoded}" for name, encoded in sorted(users.items())]
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp makes it 0600: only the owner reads the hashes
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def add_user(path: Path | str, name: str, password: str, *, scheme: str = SCRYPT) -> bool:
    """Add name (or set its new password) in the users file; True when the user was new."""
    path = Path(path)
    users = load_users(path) if path.exists() else {}
    new = _check_name(name) not in users
    users[name] = hash_password(password, scheme=scheme)
    _write_users(path, users)
    return new


def remove_user(path: Path | str, name: str) -> None:
    """Remove name from the users file (LineIOError when it is not there)."""
    path = Path(path)
    users = load_users(path)
    if name not in users:
        raise LineIOError(f"line user {name!r} is not in {path}; users there: {', '.join(sorted(users)) or 'none'}")
    del users[name]
    _write_users(path, users)


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(hash_password(secrets.token_hex(8)))
    return _DUMMY[0]


@dataclass
class UsersFile:
    """A users file that is re-read when it changes, so a user added while the station runs can log in."""

    path: Path
    _mtime: int | None = None
    _users: dict[str, str] | None = None

    def users(self) -> dict[str, str]:
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:
            mtime = None
        if self._users is None or mtime != self._mtime:
            self._users = load_users(self.path)
            self._mtime = mtime
        return self._users

    def check(self, name: str, password: str) -> bool:
        """True when name is a user and password is theirs (an unreadable file lets nobody in)."""
        try:
            encoded = self.users().get(name)
        except LineIOError:
            return False
        if encoded is None:
            verify_password(password, _dummy_hash())  # same work as for a real user: names cannot be probed by timing
            return False
        return verify_password(password, encoded)


def add_users_arguments(p) -> None:
    """The `visinspect users` sub-command's arguments (p: an argparse parser)."""
    p.add_argument(
        "action", choices=["add", "remove", "list"], help="add a user (or set a new password), remove one, list them"
    )
    p.add_argument("name", nargs="?", help="the user name (add, remove)")
    p.add_argument("--file", help="users file (default: line-users.txt in the data folder)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input, not a prompt")


def run_users_command(args) -> str:
    """`visinspect users add|remove|list`: the one line to print (LineIOError for bad input)."""
    path = Path(args.file) if args.file else default_users_file()
    if args.action == "list":
        names = sorted(load_users(path)) if path.exists() else []
        return "\n".join(names) if names else f"no line users in {path} yet"
    if not args.name:
        raise LineIOError(f"users {args.action} needs a user name, e.g. visinspect users {args.action} plc1")
    if args.action == "remove":
        remove_user(path, args.name)
        return f"removed line user {args.name} from {path}"
    _check_name(args.name)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise LineIOError("the two passwords differ; nothing changed")
    new = add_user(path, args.name, password)
    return f"{'added' if new else 'new password for'} line user {args.name} in {path}"


__all__ = [
    "PBKDF2", "SCRYPT", "UsersFile", "add_user", "add_users_arguments", "default_users_file", "hash_password",
    "load_users", "remove_user", "run_users_command", "verify_password",
]  # fmt: skip
