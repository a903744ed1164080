"""MQTT publisher for MES and dashboards: every hub result as JSON at QoS 1, plus a retained station status.

Results go through an on-disk queue (`ResultBuffer`) and leave it only when the broker's PUBACK arrives, so a
broker outage, or a station restart during one, loses nothing: they are sent in order once the broker is back.
Broker credentials come from VISINSPECT_MQTT_USER / VISINSPECT_MQTT_PASSWORD, never from a settings file.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import socket
import sqlite3
import threading
from pathlib import Path

from engine.errors import LineIOError
from engine.lineio.hub import LineHub, LineResult, LineState
from engine.lineio.mqtt_buffer import DEFAULT_MAX_BUFFERED, ResultBuffer

log = logging.getLogger(__name__)

USER_ENV = "VISINSPECT_MQTT_USER"
PASSWORD_ENV = "VISINSPECT_MQTT_PASSWORD"
IN_FLIGHT = 64  # results handed to the MQTT client and not yet acknowledged, at most
CONNECT_WAIT_S = 2.0  # start() waits this long for the broker, then returns with results buffering


def default_topic(station: str) -> str:
    return f"visinspect/{station}/results"


def status_topic(station: str) -> str:
    return f"visinspect/{station}/status"


class MqttPublisher:
    """Publishes `hub` results and status to an MQTT broker from its own threads (see the module docstring)."""

    triggers = False  # it only publishes: nothing can trigger a part through it

    def __init__(
        self,
        hub: LineHub,
        *,
        host: str,
        port: int,
        topic: str | None = None,
        station: str | None = None,
        buffer_path: Path | str | None = None,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        tcp_nodelay: bool = True,
        reconnect_max_s: float = 10.0,
        connect_wait_s: float = CONNECT_WAIT_S,
    ) -> None:
        if not 0 < int(port) <= 65535:
            raise LineIOError(f"MQTT port {port} is not a TCP port (1-65535)")
        self._hub = hub
        self._host = host
        self._port = int(port)
        self.station = station or hub.state().station
        self.topic = topic or default_topic(self.station)
        self.status_topic = status_topic(self.station)
        if any(c in self.topic for c in "+#") or not self.topic:
            raise LineIOError(f"MQTT topic {self.topic!r} must be a plain topic name (no + or # wildcards)")
        if buffer_path is None:
            from engine.paths import data_dir

            buffer_path = data_dir() / f"mqtt-outbox-{_safe(self.station)}.sqlite3"
        self._buffer_path = Path(buffer_path)
        self._max_buffered = int(max_buffered)
        self._window = max(1, min(IN_FLIGHT, self._max_buffered // 2))
        self._tcp_nodelay = tcp_nodelay
        self._reconnect_max_s = reconnect_max_s
        self._connect_wait_s = connect_wait_s
        self._events: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._client = None
        self._buffer: ResultBuffer | None = None
        self._unsubscribe = None
        self._connected = threading.Event()
        self._first_answer = threading.Event()
        self._refused = ""
        self._in_flight: dict[int, int] = {}  # MQTT message id -> buffer row id
        self._handed_up_to = 0  # buffer row id of the last result handed to the client
        self._resending = False  # after a reconnect the client resends its unacknowledged results first
        self._published_status: tuple | None = None
        self._full = False
        self.dropped = 0  # results dropped because the buffer was full

    # -- what the station sees ----------------------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"{self._host}:{self._port}"

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def pending(self) -> int:
        """Results not yet acknowledged by the broker (waiting on disk)."""
        return len(self._buffer) if self._buffer is not None else 0

    @property
    def description(self) -> str:
        if self._worker is None:
            return f"MQTT to {self.address} (stopped)"
        state = "connected" if self.connected else "broker away, buffering"
        dropped = f", {self.dropped} dropped (buffer full)" if self.dropped else ""
        return f"MQTT to {self.address}, {self.topic} ({state}, {self.pending} waiting{dropped})"

    # -- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Open the buffer and connect; returns once connected, or after a short wait with results buffering.

        LineIOError (one line) when the buffer cannot be opened or the broker refuses the credentials.
        """
        with self._lock:
            if self._worker is not None:
                return
            try:
                import paho.mqtt.client as mqtt
            except ImportError as exc:
                raise LineIOError("MQTT needs the paho-mqtt package: pip install 'visinspect[line]'") from exc
            self._buffer = ResultBuffer(self._buffer_path, max_rows=self._max_buffered)
            self._client = client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2, client_id=f"visinspect-{_safe(self.station)}",
                protocol=mqtt.MQTTv311, clean_session=True,
            )  # fmt: skip
            user = os.environ.get(USER_ENV)
            if user:
                client.username_pw_set(user, os.environ.get(PASSWORD_ENV))
            client.will_set(self.status_topic, self._status_payload(None), qos=1, retain=True)
            client.reconnect_delay_set(min_delay=0.5, max_delay=self._reconnect_max_s)
            client.max_inflight_messages_set(self._window)
            client.on_connect = self._on_connect
            client.on_disconnect = self._on_disconnect
            client.on_publish = self._on_publish
            if self._tcp_nodelay:
                client.on_socket_open = _no_delay
            self._worker = threading.Thread(target=self._work, name=f"mqtt-{self.station}", daemon=True)
            self._worker.start()
            self._unsubscribe = self._hub.subscribe(self._on_change)
            self._events.put(("change", self._hub.state(), None))
            try:
                client.connect_async(self._host, self._port, keepalive=30)
            except (OSError, ValueError) as exc:
                self._teardown()
                raise LineIOError(f"MQTT broker address {self.address} cannot be used: {exc}") from exc
            client.loop_start()
            self._first_answer.wait(self._connect_wait_s)
            if self._refused:
                refused = self._refused
                self._teardown()
                raise LineIOError(
                    f"MQTT broker at {self.address} refused the connection: {refused} (user from {USER_ENV})"
                )
            if not self.connected:
                log.info("MQTT broker at %s not reachable yet: results are buffered in %s", self.address,
                         self._buffer_path)  # fmt: skip

    def stop(self, *, drain_s: float = 1.0) -> None:
        """Say "offline", give in-flight results drain_s to be acknowledged, disconnect, join (idempotent).

        Results still waiting stay on disk and go out on the next start.
        """
        with self._lock:
            if self._worker is None:
                return
            done = threading.Event()
            self._events.put(("stop", drain_s, done))
            done.wait(drain_s + 2.0)
            self._teardown()

    def _teardown(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        client = self._client
        if client is not None:
            client.disconnect()
            client.loop_stop()
        if self._worker is not None:
            self._events.put(("quit",))
            self._worker.join()
            self._worker = None
        if self._buffer is not None:
            self._buffer.close()
            self._buffer = None
        self._client = None
        self._connected.clear()
        self._in_flight.clear()
        self._handed_up_to = 0

    def __enter__(self) -> MqttPublisher:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    # -- callbacks: the hub's publishing thread and the MQTT client's thread only hand events on ---------------
    def _on_change(self, state: LineState, result: LineResult | None) -> None:
        self._events.put(("change", state, result))

    def _on_connect(self, _client, _userdata, _flags, reason, _properties) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            log.warning("MQTT broker at %s refused the connection: %s", self.address, reason)
        else:
            self._refused = ""
            self._connected.set()
            self._events.put(("connected",))
        self._first_answer.set()

    def _on_disconnect(self, _client, _userdata, _flags, _reason, _properties) -> None:
        if self._connected.is_set():
            log.info("MQTT broker at %s went away: results are buffered", self.address)
        self._connected.clear()

    def _on_publish(self, _client, _userdata, mid, _reason, _properties) -> None:
        self._events.put(("acked", mid))

    # -- the worker: owns the buffer, hands results to the client in order ------------------------------------
    def _work(self) -> None:
        state: LineState | None = None
        while True:
            event = self._events.get()
            try:
                kind = event[0]
                if kind == "quit":
                    return
                if kind == "change":
                    state = event[1]
                    if event[2] is not None:
                        self._store(event[2])
                elif kind == "acked":
                    self._acked(event[1])
                elif kind == "connected":
                    self._resending = bool(self._in_flight)
                    self._published_status = None
                elif kind == "stop":
                    self._finish(state, event[1], event[2])
                    continue
                self._pump()
                if state is not None:
                    self._publish_status(state)
            except sqlite3.Error as exc:  # e.g. a full disk: the result stays in the results log, not on MQTT
                message = f"MQTT buffer {self._buffer_path} failed: {exc}"
                log.error(message)
                self._hub.set_error(message)
            except Exception:  # noqa: BLE001 - thread boundary: log it and keep the worker alive
                log.exception("MQTT publisher to %s: unexpected failure", self.address)

    def _store(self, result: LineResult) -> None:
        payload = json.dumps(result.as_json_dict(), separators=(",", ":")).encode()
        dropped = self._buffer.append(self.topic, payload, handed_up_to=self._handed_up_to)
        if dropped:
            self.dropped += dropped
            if not self._full:
                self._full = True
                message = (f"MQTT buffer full ({self._max_buffered} results): oldest results dropped while the broker "
                           f"at {self.address} is away")  # fmt: skip
                log.warning(message)
                self._hub.set_error(message)
        elif self._full and len(self._buffer) < self._max_buffered // 2:
            self._full = False

    def _acked(self, mid: int) -> None:
        row_id = self._in_flight.pop(mid, None)
        if row_id is not None:
            self._buffer.delete(row_id)
        if not self._in_flight:
            self._resending = False

    def _pump(self) -> None:
        """Hand waiting results to the client while connected, at most `_window` unacknowledged, in row order."""
        if not self.connected or self._resending:
            return
        room = self._window - len(self._in_flight)
        if room <= 0:
            return
        for message in self._buffer.after(self._handed_up_to, room):
            info = self._client.publish(message.topic, message.payload, qos=1)
            self._in_flight[info.mid] = message.row_id
            self._handed_up_to = message.row_id

    def _publish_status(self, state: LineState) -> None:
        key = (state.ready, state.recipe, state.heartbeat, state.last_error)
        if self.connected and key != self._published_status:
            self._client.publish(self.status_topic, self._status_payload(state), qos=1, retain=True)
            self._published_status = key

    def _status_payload(self, state: LineState | None) -> bytes:
        if state is None:
            return json.dumps({"station": self.station, "state": "offline"}).encode()
        body = {"station": self.station, "state": "online", "ready": state.ready, "recipe": state.recipe,
                "heartbeat": state.heartbeat, "last_error": state.last_error}  # fmt: skip
        return json.dumps(body).encode()

    def _finish(self, state: LineState | None, drain_s: float, done: threading.Event) -> None:
        """Stop: give in-flight results up to drain_s to be acknowledged, then publish the offline status."""
        left = drain_s
        while self._in_flight and self.connected and left > 0:
            try:
                event = self._events.get(timeout=0.05)
            except queue.Empty:
                left -= 0.05
                continue
            if event[0] == "acked":
                self._acked(event[1])
            elif event[0] == "change" and event[2] is not None:
                self._store(event[2])  # stays on disk for the next start
        if self.connected:
            info = self._client.publish(self.status_topic, self._status_payload(None), qos=1, retain=True)
            try:
                info.wait_for_publish(0.5)
            except (RuntimeError, ValueError):
                pass  # the broker went away meanwhile: the last will says offline instead
        done.set()


def _no_delay(_client, _userdata, sock) -> None:
    """Send each MQTT packet at once (Nagle's algorithm otherwise holds small QoS-1 publishes for tens of ms)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass  # not a TCP socket (e.g. a websocket or unix socket): nothing to tune


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "station"


__all__ = ["PASSWORD_ENV", "USER_ENV", "MqttPublisher", "default_topic", "status_topic"]
