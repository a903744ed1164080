"""Where the line and the live job meet: triggers and recipe requests in, results and station state out.

Every endpoint (OPC UA server, Modbus server, MQTT publisher) talks to one thread-safe LineHub; the
line job takes triggers from it and publishes each result to it. Endpoints mirror its state through
`subscribe`: a listener is called on the publishing thread, in the order of the changes, and must only
hand the change to its own thread (e.g. `loop.call_soon_threadsafe`); it must not call back into the hub. A result's fields are set before `result_counter` moves,
so a PLC that sees the counter change reads a complete result.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from engine.types import Box

MAX_PENDING_TRIGGERS = 64  # triggered parts waiting for a frame; one more is answered with an ERROR result at once


class LineVerdict(enum.IntEnum):
    """The verdict code a PLC reads (OPC UA `Verdict`, Modbus register): 0 none yet, 1 good, 2 anomaly, 3 error,
    4 review (uncertain: a person decides), 5 not product (the frame does not look like the product)."""

    NONE = 0
    GOOD = 1
    ANOMALY = 2
    ERROR = 3
    REVIEW = 4
    NOT_PRODUCT = 5


@dataclass(frozen=True)
class PartTrigger:
    """One rising trigger edge: the part the PLC named (PartId before the edge), when, and over which endpoint."""

    part_id: str
    time: float
    via: str  # "opcua", "modbus", "camera" (hardware-triggered frame), "test"
    sequence: int  # 1, 2, ... in arrival order since the hub was made


@dataclass(frozen=True)
class LineResult:
    """One result as the line sees it; counter is the ResultCounter value it was published under."""

    counter: int
    verdict: LineVerdict
    p_anomaly: float | None  # None for an ERROR result
    part_id: str
    recipe: str
    station: str
    model_sha256: str
    boxes: tuple[Box, ...]
    time: float  # time.time() when published
    latency_ms: float | None  # trigger (or frame read) to result; None when unknown
    message: str = ""  # why, for an ERROR result

    def as_json_dict(self) -> dict:
        """The result as plain JSON values (MQTT payload, logs)."""
        return {
            "time": self.time,
            "station": self.station,
            "recipe": self.recipe,
            "part_id": self.part_id,
            "verdict": self.verdict.name.lower(),
            "verdict_code": int(self.verdict),
            "p_anomaly": self.p_anomaly,
            "boxes": [[b.x0, b.y0, b.x1, b.y1, round(float(b.score), 4)] for b in self.boxes],
            "model_hash": self.model_sha256,
            "counter": self.counter,
            "latency_ms": self.latency_ms,
            "message": self.message,
        }


@dataclass(frozen=True)
class LineState:
    """Everything an endpoint mirrors, as one snapshot."""

    station: str
    ready: bool = False  # a model is loaded and the source is open: triggers will be inspected
    busy: bool = False  # a triggered part is being grabbed or inspected
    part_id: str = ""  # as last written by the PLC
    recipe: str = ""  # the recipe in use
    verdict: LineVerdict = LineVerdict.NONE
    p_anomaly: float = 0.0
    result_counter: int = 0
    heartbeat: int = 0
    last_error: str = ""
    last_result: LineResult | None = None


Listener = Callable[[LineState, LineResult | None], None]
RecipeHandler = Callable[[str], None]  # loads the named recipe or raises an error whose message the PLC sees


class LineHub:
    """Thread-safe meeting point of the line endpoints and the line job (see the module docstring)."""

    def __init__(self, *, station: str, max_pending: int = MAX_PENDING_TRIGGERS) -> None:
        self._lock = threading.Condition()
        self._order = threading.RLock()  # held from a change to its last notification: listeners see changes in order
        self._state = LineState(station=station)
        self._pending: deque[PartTrigger] = deque()
        self._max_pending = max_pending
        self._sequence = 0
        self._listeners: list[Listener] = []
        self._recipe_handler: RecipeHandler | None = None

    # -- what endpoints call (the PLC side) -------------------------------------------------------------
    def set_part_id(self, part_id: str) -> None:
        """The PLC wrote PartId (stored with the next triggered part's result)."""
        self._update(part_id=str(part_id))

    def trigger(self, via: str, part_id: str | None = None) -> PartTrigger:
        """A rising trigger edge: queue the part for the next frame; past the limit, answer it with an ERROR result."""
        with self._lock:
            self._sequence += 1
            part = PartTrigger(
                part_id if part_id is not None else self._state.part_id, time.time(), via, self._sequence
            )
            overflow = len(self._pending) >= self._max_pending
            if not overflow:
                self._pending.append(part)
                self._lock.notify_all()
        if overflow:
            self.publish_error(f"{self._max_pending} triggered parts already waiting; part not inspected", part=part)
        return part

    def request_recipe(self, name: str) -> None:
        """The PLC wrote Recipe: load it through the handler; a failure becomes LastError and the old recipe stays."""
        handler = self._recipe_handler
        if handler is None:
            self.set_error(f"recipe {name!r} asked for, but this station was not started with recipes")
            return
        try:
            handler(str(name))
        except Exception as exc:  # noqa: BLE001 - a PLC request boundary: the PLC reads the reason in LastError
            self.set_error(f"recipe {name!r}: {exc}")

    # -- what the line job calls --------------------------------------------------------------------------
    def next_trigger(self, timeout: float | None = None) -> PartTrigger | None:
        """The oldest waiting triggered part, or None after timeout seconds."""
        with self._lock:
            if not self._pending:
                self._lock.wait(timeout)
            return self._pending.popleft() if self._pending else None

    def pending_triggers(self) -> int:
        with self._lock:
            return len(self._pending)

    def drain_triggers(self) -> list[PartTrigger]:
        """Take every waiting part (e.g. to answer them with ERROR when the source fails)."""
        with self._lock:
            parts = list(self._pending)
            self._pending.clear()
            return parts

    def publish(
        self,
        verdict: LineVerdict,
        p_anomaly: float | None,
        *,
        part: PartTrigger | None = None,
        model_sha256: str = "",
        boxes: tuple[Box, ...] = (),
        latency_ms: float | None = None,
        message: str = "",
    ) -> LineResult:
        """Publish one result: Verdict and PAnomaly first, then ResultCounter + 1, then tell every listener."""
        with self._order, self._lock:
            s = self._state
            result = LineResult(
                counter=(s.result_counter + 1) % 2**32, verdict=LineVerdict(verdict), p_anomaly=p_anomaly,
                part_id=part.part_id if part is not None else s.part_id, recipe=s.recipe, station=s.station,
                model_sha256=model_sha256, boxes=tuple(boxes), time=time.time(), latency_ms=latency_ms, message=message,
            )  # fmt: skip
            self._state = replace(
                s, verdict=result.verdict, p_anomaly=float(p_anomaly or 0.0), result_counter=result.counter,
                last_result=result, last_error=message if verdict == LineVerdict.ERROR else s.last_error,
            )  # fmt: skip
            self._notify(self._state, result)
        return result

    def publish_error(self, message: str, *, part: PartTrigger | None = None, model_sha256: str = "") -> LineResult:
        """An ERROR result for a part that could not be grabbed or inspected (never dropped silently)."""
        latency = None if part is None else (time.time() - part.time) * 1000.0
        return self.publish(
            LineVerdict.ERROR, None, part=part, model_sha256=model_sha256, latency_ms=latency, message=message
        )

    def set_ready(self, ready: bool) -> None:
        self._update(ready=bool(ready))

    def set_busy(self, busy: bool) -> None:
        self._update(busy=bool(busy))

    def set_recipe(self, name: str) -> None:
        """The recipe now in use (after it loaded)."""
        self._update(recipe=str(name))

    def set_error(self, message: str) -> None:
        self._update(last_error=str(message))

    def beat(self) -> None:
        """Advance Heartbeat (the owner calls this about once a second while it runs)."""
        with self._order, self._lock:
            self._state = replace(self._state, heartbeat=(self._state.heartbeat + 1) % 2**32)
            self._notify(self._state, None)

    def set_recipe_handler(self, handler: RecipeHandler | None) -> None:
        self._recipe_handler = handler

    # -- what endpoints read ------------------------------------------------------------------------------
    def state(self) -> LineState:
        with self._lock:
            return self._state

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call listener(state, result_or_None) after every change; returns the function that unsubscribes."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _update(self, **changes) -> None:
        with self._order, self._lock:
            if all(getattr(self._state, k) == v for k, v in changes.items()):
                return
            self._state = replace(self._state, **changes)
            self._notify(self._state, None)

    def _notify(self, state: LineState, result: LineResult | None) -> None:
        """Tell every listener (caller holds both locks; listeners only hand the change to their own thread)."""
        for listener in list(self._listeners):
            listener(state, result)


__all__ = ["LineHub", "LineResult", "LineState", "LineVerdict", "PartTrigger"]
