"""Engineer PINs stored only as salted scrypt hashes, so the station's settings file never holds the PIN itself."""

from __future__ import annotations

import hashlib
import hmac
import os

_N, _R, _P = 2**14, 8, 1  # scrypt cost: ~50 ms per check, slow enough against guessing a short PIN offline
MIN_PIN_LENGTH = 4


class PinError(ValueError):
    """A PIN that cannot be used, with the rule it broke."""


def hash_pin(pin: str) -> str:
    """'scrypt$salt$hash' (hex) for a PIN of at least MIN_PIN_LENGTH digits or characters."""
    if len(pin) < MIN_PIN_LENGTH or pin.strip() != pin:
        raise PinError(f"a PIN needs at least {MIN_PIN_LENGTH} characters and no leading or trailing spaces")
    salt = os.urandom(16)
    digest = hashlib.scrypt(pin.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_pin(pin: str, stored: str) -> bool:
    """True when pin matches a hash made by hash_pin; False for a wrong PIN or an unreadable stored value."""
    try:
        kind, salt, digest = stored.split("$")
        expected = bytes.fromhex(digest)
        if kind != "scrypt":
            return False
        actual = hashlib.scrypt(pin.encode("utf-8"), salt=bytes.fromhex(salt), n=_N, r=_R, p=_P)
    except (ValueError, AttributeError):
        return False
    return hmac.compare_digest(actual, expected)
