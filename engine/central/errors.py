"""Errors of the central results store, each one line with no password in it."""
from __future__ import annotations

from engine.errors import VisInspectError


class CentralError(VisInspectError):
    """The central store cannot be used: bad URL, schema newer than this VisInspect, refused statement."""


class CentralUnreachable(CentralError):
    """The central server cannot be reached or went away (network, server down, TLS or login refused)."""


class FrameShareError(CentralError):
    """The plant share refused an anomaly frame's copy (not mounted, full, no permission); its rows wait for it."""
