"""Start the line endpoints a recipe or `serve` asks for (OPC UA, Modbus TCP, MQTT), each on the one LineHub.

Each endpoint's package is imported only when that endpoint is asked for, so a station without the line
extra runs and says how to add it.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

from engine.errors import LineIOError
from engine.lineio.hub import LineHub
from engine.recipes import parse_host_port

if TYPE_CHECKING:
    from engine.recipes import LineIOSettings

EXTRA_HINT = "pip install 'visinspect[line]'"
# (settings key, module, class, the module it needs, that package's name, what it is called in messages)
ENDPOINTS = (
    ("opcua", "engine.lineio.opcua", "OpcUaEndpoint", "asyncua", "asyncua", "OPC UA"),
    ("modbus", "engine.lineio.modbus", "ModbusEndpoint", "pymodbus", "pymodbus", "Modbus TCP"),
    ("mqtt", "engine.lineio.mqtt", "MqttPublisher", "paho.mqtt.client", "paho-mqtt", "MQTT"),
)


def endpoint_class(key: str):
    """The endpoint class for "opcua", "modbus" or "mqtt"; LineIOError saying how to add a missing package."""
    for k, module, cls, needed, package, label in ENDPOINTS:
        if k == key:
            try:
                importlib.import_module(needed)
            except ImportError:
                raise LineIOError(f"{label} needs {package}: {EXTRA_HINT}") from None
            try:
                return getattr(importlib.import_module(module), cls)
            except (ImportError, AttributeError) as exc:
                raise LineIOError(f"{label} is not available in this VisInspect ({exc})") from None
    raise LineIOError(f"unknown line endpoint {key!r}; known: {', '.join(e[0] for e in ENDPOINTS)}")


def start_endpoints(
    hub: LineHub, io: LineIOSettings, *, users_file: str | os.PathLike | None = None, station: str | None = None
) -> list:
    """Start every endpoint io names, in order OPC UA, Modbus, MQTT; if one cannot start, those started are stopped."""
    started: list = []
    try:
        for key, *_ in ENDPOINTS:
            address = getattr(io, key)
            if address is None:
                continue
            host, port = parse_host_port(address, what=f"{key} address")
            cls = endpoint_class(key)
            if key == "opcua":
                endpoint = cls(hub, host=host, port=port, users_file=users_file or _users_file_if_any())
            elif key == "mqtt":
                endpoint = cls(hub, host=host, port=port, topic=io.mqtt_topic, station=station or hub.state().station)
            else:
                endpoint = cls(hub, host=host, port=port)
            endpoint.start()
            started.append(endpoint)
    except BaseException:
        stop_endpoints(started)
        raise
    return started


def _users_file_if_any():
    """The station's line users file (`visinspect users add` writes it), when there is one."""
    from engine.lineio.users import default_users_file

    path = default_users_file()
    return path if path.is_file() else None


def stop_endpoints(endpoints: list) -> list[str]:
    """Stop each endpoint (newest first); the one-line problems of those that did not stop cleanly."""
    problems = []
    for endpoint in reversed(endpoints):
        try:
            endpoint.stop()
        except Exception as exc:  # noqa: BLE001 - shutting down: report every endpoint's trouble, stop the rest
            problems.append(f"{getattr(endpoint, 'description', type(endpoint).__name__)}: {exc}")
    return problems


__all__ = ["endpoint_class", "start_endpoints", "stop_endpoints"]
