"""The MQTT publisher against a real in-process amqtt broker on loopback, with a paho subscriber as the MES."""

import asyncio
import json
import socket
import sys
import threading
import time
import types
from dataclasses import dataclass

import pytest

pytest.importorskip("paho.mqtt")
pytest.importorskip("amqtt")

import paho.mqtt.client as mqtt  # noqa: E402
from amqtt.broker import Broker  # noqa: E402
from amqtt.plugins.base import BaseAuthPlugin  # noqa: E402

from engine.errors import LineIOError  # noqa: E402
from engine.lineio.hub import LineHub, LineVerdict  # noqa: E402
from engine.lineio.mqtt import USER_ENV, MqttPublisher  # noqa: E402
from engine.lineio.mqtt_buffer import ResultBuffer  # noqa: E402
from engine.types import Box  # noqa: E402


class StationGate(BaseAuthPlugin):
    """Broker auth plugin: while `closed` is set, the station's client (visinspect-*) is refused, others pass.

    Lets a test have its subscriber back on a restarted broker before the station reconnects, without timing.
    """

    closed = threading.Event()

    @dataclass
    class Config:
        pass

    async def authenticate(self, *, session) -> bool:
        return not (StationGate.closed.is_set() and str(session.client_id).startswith("visinspect-"))


sys.modules["_visinspect_test_mqtt_gate"] = types.SimpleNamespace(StationGate=StationGate)


class BrokerThread:
    """An amqtt broker on 127.0.0.1:port in its own thread and event loop."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.thread = None

    def start(self) -> None:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {"_visinspect_test_mqtt_gate.StationGate": {}},
        }

        def run():
            asyncio.set_event_loop(self.loop)

            async def boot():
                self.broker = Broker(config)
                await self.broker.start()

            self.loop.run_until_complete(boot())
            ready.set()
            self.loop.run_forever()
            self.loop.close()

        self.thread = threading.Thread(target=run, name="test-broker", daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def stop(self) -> None:
        if self.thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.broker.shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.thread = None


class Subscriber:
    """The MES side: subscribes (again after every reconnect) and keeps every payload it receives."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[dict] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="mes")
        self.client.reconnect_delay_set(0.2, 1)
        self.client.on_connect = lambda c, _u, _f, _r, _p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.on_disconnect = lambda *_a: self.subscribed.clear()
        self.client.on_message = lambda _c, _u, m: self.messages.append(json.loads(m.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def counters(self) -> list[int]:
        return [m["counter"] for m in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout: float = 15.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.fixture
def broker():
    StationGate.closed.clear()
    b = BrokerThread(free_port())
    b.start()
    yield b
    b.stop()
    StationGate.closed.clear()


@pytest.fixture
def hub():
    return LineHub(station="press-3")


@pytest.fixture
def subscribers():
    made = []

    def make(port, topic="visinspect/+/results"):
        made.append(Subscriber(port, topic))
        return made[-1]

    yield make
    for s in made:
        s.close()


def publish(hub, n):
    for i in range(n):
        hub.publish(LineVerdict.GOOD, 0.01 * i, part=hub.trigger("test", part_id=f"P{i}"))


def test_every_result_reaches_the_subscriber_as_json(hub, broker, subscribers, tmp_path):
    mes = subscribers(broker.port)
    hub.set_ready(True)
    hub.set_recipe("bolt-m8")
    with MqttPublisher(hub, host="127.0.0.1", port=broker.port, buffer_path=tmp_path / "out.sqlite3") as pub:
        assert pub.connected and "connected" in pub.description
        hub.publish(LineVerdict.GOOD, 0.125, part=hub.trigger("test", part_id="SN-1"), model_sha256="abc")
        hub.publish(LineVerdict.ANOMALY, 0.9, part=hub.trigger("test", part_id="SN-2"), boxes=(Box(1, 2, 30, 40, 0.8),))
        hub.publish_error("camera lost", part=hub.trigger("test", part_id="SN-3"))
        assert wait_for(lambda: len(mes.messages) == 3)
        first, second, third = mes.messages
        assert first["station"] == "press-3" and first["recipe"] == "bolt-m8" and first["part_id"] == "SN-1"
        assert first["verdict"] == "good" and first["p_anomaly"] == 0.125 and first["model_hash"] == "abc"
        assert second["verdict"] == "anomaly" and second["boxes"] == [[1, 2, 30, 40, 0.8]]
        assert third["verdict"] == "error" and third["p_anomaly"] is None and third["message"] == "camera lost"
        assert wait_for(lambda: pub.pending == 0)

        status = subscribers(broker.port, "visinspect/press-3/status")  # retained: a late dashboard sees it at once
        assert wait_for(lambda: status.messages and status.messages[-1]["state"] == "online")
        assert status.messages[-1]["ready"] is True and status.messages[-1]["recipe"] == "bolt-m8"
    assert wait_for(lambda: status.messages[-1]["state"] == "offline")
    assert not [t for t in threading.enumerate() if t.name.startswith(("mqtt-", "paho-mqtt-client-visinspect"))]


def test_nothing_lost_across_a_broker_restart(hub, broker, subscribers, tmp_path):
    mes = subscribers(broker.port)
    pub = MqttPublisher(hub, host="127.0.0.1", port=broker.port, buffer_path=tmp_path / "out.sqlite3",
                        reconnect_max_s=1.0)  # fmt: skip
    pub.start()
    try:
        publish(hub, 3)
        assert wait_for(lambda: mes.counters() == [1, 2, 3] and pub.pending == 0)

        broker.stop()
        assert wait_for(lambda: not pub.connected)
        publish(hub, 5)  # the broker is away: these wait on disk
        assert wait_for(lambda: pub.pending == 5)
        assert "buffering" in pub.description

        StationGate.closed.set()  # the MES gets back on the broker first, then the station may reconnect
        broker.start()
        assert mes.subscribed.wait(15)
        StationGate.closed.clear()
        assert wait_for(lambda: len(mes.messages) >= 8 and pub.pending == 0)
        assert mes.counters() == [1, 2, 3, 4, 5, 6, 7, 8]  # all of them, once each, in order
    finally:
        pub.stop()


def test_full_buffer_keeps_the_newest_and_says_so(hub, tmp_path, subscribers):
    port = free_port()  # no broker there yet
    path = tmp_path / "out.sqlite3"
    pub = MqttPublisher(hub, host="127.0.0.1", port=port, buffer_path=path, max_buffered=3, connect_wait_s=0.1)
    pub.start()
    try:
        assert not pub.connected
        publish(hub, 5)
        assert wait_for(lambda: pub.dropped == 2)
        assert pub.pending == 3 and "2 dropped (buffer full)" in pub.description
        assert "MQTT buffer full" in hub.state().last_error
    finally:
        pub.stop()
    waiting = ResultBuffer(path)
    assert [json.loads(m.payload)["counter"] for m in waiting.after(0, 10)] == [3, 4, 5]
    waiting.close()

    StationGate.closed.clear()
    broker = BrokerThread(port)  # the broker comes up; a restarted station sends what waited on disk
    broker.start()
    try:
        mes = subscribers(port)
        with MqttPublisher(hub, host="127.0.0.1", port=port, buffer_path=path) as again:
            assert wait_for(lambda: mes.counters() == [3, 4, 5] and again.pending == 0)
    finally:
        broker.stop()


def test_refused_credentials_are_one_line(hub, broker, tmp_path, monkeypatch):
    monkeypatch.setenv(USER_ENV, "line3")
    StationGate.closed.set()
    pub = MqttPublisher(hub, host="127.0.0.1", port=broker.port, buffer_path=tmp_path / "out.sqlite3")
    with pytest.raises(LineIOError, match="refused") as err:
        pub.start()
    assert USER_ENV in str(err.value) and "\n" not in str(err.value)
    pub.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith(("mqtt-", "paho-mqtt-client-visinspect"))]
