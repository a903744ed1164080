"""Line mode of the one live job: every result published to the PLC, or one inspection per PLC trigger.

`live_job(..., hub=...)` publishes each free-run result to the LineHub; `live_job(..., triggered=True)` runs
`triggered_job` here: each trigger the hub hands over gets one frame (see engine.jobs.line_feeds), one
inspection, one log row with its part id and recipe, and one published result. A part that cannot be
grabbed or inspected gets an ERROR result, published and logged: no triggered part is dropped silently.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from engine.errors import EXPECTED_ERRORS
from engine.inference.live import LiveResult, RateMeter
from engine.jobs.line_feeds import MAX_PART_WAIT_S, PartFailed, SourceEnded, current, open_feed, with_roi
from engine.lineio.hub import LineHub, LineVerdict, PartTrigger
from engine.results.log import ResultsLog
from engine.sources import SourceEvent
from engine.types import Frame, Verdict

_POLL_S = 0.05  # longest wait for a trigger, so a stop request is noticed within this time
HEARTBEAT_S = 1.0


@dataclass(frozen=True)
class PartError:
    """A triggered part answered with ERROR (published and logged), and why."""

    part: PartTrigger
    message: str


class LinePresence:
    """The run's presence on the line: Ready while it can inspect, Heartbeat about once a second from its own thread."""

    def __init__(self, hub: LineHub | None, interval_s: float = HEARTBEAT_S) -> None:
        self.hub = hub
        self._stop = threading.Event()
        self._thread = None if hub is None else threading.Thread(target=self._beat, args=(interval_s,), name="line-heartbeat", daemon=True)

    def _beat(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.hub.beat()

    def __enter__(self) -> LinePresence:
        if self._thread is not None:
            self.hub.beat()
            self._thread.start()
        return self

    def ready(self, ready: bool) -> None:
        if self.hub is not None:
            self.hub.set_ready(ready)

    def __exit__(self, *exc_info: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(HEARTBEAT_S + 1.0)
            self.hub.set_ready(False)
            self.hub.set_busy(False)


_LINE_VERDICT = {Verdict.GOOD: LineVerdict.GOOD, Verdict.ANOMALY: LineVerdict.ANOMALY, Verdict.ERROR: LineVerdict.ERROR,
                 Verdict.REVIEW: LineVerdict.REVIEW, Verdict.NOT_PRODUCT: LineVerdict.NOT_PRODUCT}  # fmt: skip


def publish_live(hub: LineHub, result: LiveResult, *, part: PartTrigger | None = None, latency_ms: float | None = None):
    """Publish one inspected frame (verdict, p, boxes, model hash, latency) to the line."""
    inspection = result.inspection
    return hub.publish(
        _LINE_VERDICT[inspection.verdict], float(inspection.p_anomaly), part=part, model_sha256=inspection.model.sha256,
        boxes=tuple(inspection.boxes), latency_ms=result.latency_ms if latency_ms is None else latency_ms,
    )  # fmt: skip


def triggered_job(
    spec,
    slot,
    results: ResultsLog | None,
    *,
    hub: LineHub,
    roi=None,
    recipe=None,
    loop: bool = False,
    start_at: int = 0,
    grab_timeout_s: float | None = None,
    max_part_wait_s: float = MAX_PART_WAIT_S,
    stream_options: dict | None = None,
    stop: threading.Event,
) -> Iterator:
    """One inspection per hub trigger; yields RunOpened, then LiveResult, PartError and SourceEvent items.

    roi and recipe may be values or callables giving the current one (a recipe switch applies to the next part).
    A camera part that waited longer than max_part_wait_s for its turn has passed the camera: ERROR. When the
    source fails for good, the part in hand and every waiting part get ERROR before the error is raised.
    """
    from engine.jobs.live import RunOpened, make_source

    if hub is None:
        raise ValueError("triggered inspection needs a LineHub: the PLC's triggers come through it")
    source = with_roi(make_source(spec, loop=loop, start_at=start_at), roi)
    run = _TriggeredRun(slot, results, hub, source, recipe)
    with LinePresence(hub) as presence:
        feed = None
        why_stopped = "inspection stopped"
        try:
            feed = open_feed(source, stop, stream_options or {}, grab_timeout_s)
            yield RunOpened(source.description, source.is_live)
            while not stop.is_set():
                presence.ready(feed.healthy)
                yield from _drain(feed.events)
                part = hub.next_trigger(_POLL_S)
                if part is None:
                    feed.idle()
                    continue
                hub.set_busy(True)
                yield from run.one_part(part, feed, max_part_wait_s if source.is_live else None)
                yield from _drain(feed.events)
        except SourceEnded as exc:
            why_stopped = str(exc)
        except GeneratorExit:
            raise
        except BaseException as exc:
            why_stopped = f"source failed: {exc}"
            raise
        finally:
            presence.ready(False)
            for part in [*run.in_hand, *hub.drain_triggers()]:
                run.error(part, f"not inspected: {why_stopped}", "")
            if feed is not None:
                feed.close()


def _drain(events) -> Iterator[SourceEvent]:
    while events:
        event = events.popleft()
        yield event


class _TriggeredRun:
    """What one triggered run needs per part: the model slot, the log, the hub, its rate meter."""

    def __init__(self, slot, results: ResultsLog | None, hub: LineHub, source, recipe) -> None:
        self.slot, self.results, self.hub, self.source, self.recipe = slot, results, hub, source, recipe
        self.meter = RateMeter()
        self.inspected = 0
        self.in_hand: list[PartTrigger] = []  # the part being handled, answered with ERROR if the run dies meanwhile

    def one_part(self, part: PartTrigger, feed, max_wait_s: float | None) -> Iterator:
        self.in_hand = [part]
        try:
            waited = time.time() - part.time
            if max_wait_s is not None and waited > max_wait_s:
                raise PartFailed(f"waited {waited:.1f} s for the camera; the part has passed it")
            frame: Frame = feed.frame_for(part)  # any other error: the source failed; the run answers the part
        except PartFailed as exc:
            self.in_hand = []
            yield self.error(part, str(exc), exc.item)
            return
        item = frame.path or frame.index
        try:
            inspection = self.slot.inspect([frame.image])[0]
        except EXPECTED_ERRORS as exc:  # the model refused this image (bad size, ...): this part only
            self.in_hand = []
            yield self.error(part, f"cannot inspect: {exc}", item)
            return
        now = time.time()
        self.inspected += 1
        result = LiveResult(
            frame=frame, inspection=inspection, dropped_total=0, fps=self.meter.add(time.perf_counter()),
            latency_ms=(now - part.time) * 1000.0, inspected_total=self.inspected,
        )  # fmt: skip
        publish_live(self.hub, result, part=part)
        self.in_hand = []
        self._idle_if_done()
        if self.results is not None:
            self.results.log_inspection(
                run_id=self.slot.run_of(inspection), source=self.source.description, item=item, inspection=inspection,
                image=frame.image, part_id=part.part_id, recipe=current(self.recipe),
            )  # fmt: skip
        yield result

    def _idle_if_done(self) -> None:
        """Busy falls as soon as the last waiting part's result is out (before it is logged)."""
        if self.hub.pending_triggers() == 0:
            self.hub.set_busy(False)

    def error(self, part: PartTrigger, message: str, item: str | int) -> PartError:
        """Answer part with ERROR: published to the line and logged; the PartError to yield."""
        model = getattr(self.slot.current, "ref", None)
        self.hub.publish_error(message, part=part, model_sha256=getattr(model, "sha256", ""))
        self._idle_if_done()
        if self.results is not None:
            self.results.log_error(
                run_id=self.slot.run_id, source=self.source.description, item=item or f"part {part.sequence}", model=model,
                message=message, part_id=part.part_id, recipe=current(self.recipe),
            )  # fmt: skip
        return PartError(part, message)
