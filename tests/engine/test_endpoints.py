"""Starting the line endpoints: a missing package or endpoint is one line saying how to add it; nothing is left running."""

from __future__ import annotations

import sys

import pytest

from engine.errors import LineIOError
from engine.lineio.endpoints import start_endpoints
from engine.lineio.hub import LineHub
from engine.recipes import LineIOSettings


def test_a_missing_package_says_how_to_add_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "asyncua", None)  # what an install without the line extra looks like
    with pytest.raises(LineIOError, match=r"^OPC UA needs asyncua: pip install 'visinspect\[line\]'$"):
        start_endpoints(LineHub(station="s"), LineIOSettings(opcua="127.0.0.1:0"))
    monkeypatch.setitem(sys.modules, "paho.mqtt.client", None)
    with pytest.raises(LineIOError, match=r"^MQTT needs paho-mqtt: pip install"):
        start_endpoints(LineHub(station="s"), LineIOSettings(mqtt="127.0.0.1:1883"))


def test_no_endpoints_asked_for_starts_none():
    assert start_endpoints(LineHub(station="s"), LineIOSettings()) == []


def test_endpoints_that_started_are_stopped_when_a_later_one_cannot_start(monkeypatch):
    import engine.lineio.endpoints as endpoints

    started, stopped = [], []

    class Fine:
        def __init__(self, hub, *, host, port, **kw):
            self.address = f"{host}:{port}"

        def start(self):
            started.append(self.address)

        def stop(self):
            stopped.append(self.address)

    def classes(key):
        if key == "mqtt":
            raise LineIOError("MQTT needs paho-mqtt: pip install 'visinspect[line]'")
        return Fine

    monkeypatch.setattr(endpoints, "endpoint_class", classes)
    with pytest.raises(LineIOError, match="MQTT"):
        start_endpoints(LineHub(station="s"), LineIOSettings(opcua="127.0.0.1:4840", modbus="127.0.0.1:5020", mqtt="h:1883"))
    assert started == ["127.0.0.1:4840", "127.0.0.1:5020"] and stopped == ["127.0.0.1:5020", "127.0.0.1:4840"]


def test_opc_ua_off_loopback_uses_the_stations_users_file_when_there_is_one(tmp_path, monkeypatch):
    """No socket is opened: the endpoint refuses or accepts its settings when it is made."""
    pytest.importorskip("asyncua")
    from engine.lineio.endpoints import _users_file_if_any, endpoint_class
    from engine.lineio.users import add_user, default_users_file

    monkeypatch.setenv("VISINSPECT_DATA", str(tmp_path))
    opcua = endpoint_class("opcua")
    assert _users_file_if_any() is None
    with pytest.raises(LineIOError, match="users file"):
        opcua(LineHub(station="t"), host="0.0.0.0", port=0, users_file=_users_file_if_any())
    add_user(default_users_file(), "plc1", "s3cret-pass")
    assert _users_file_if_any() == default_users_file()
    opcua(LineHub(station="t"), host="0.0.0.0", port=0, users_file=_users_file_if_any())  # made, not started
