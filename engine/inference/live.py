"""Live inspection: a reader thread feeds the newest frame to the model, so a slow model never lags the line.

`live_inspect` is the loop the station's one live worker wraps. A reader thread runs `stream_frames`
and puts what it reads into a `LatestFrameMailbox` (mailbox.py): one slot for frames (an unconsumed frame that is
overwritten counts as dropped) plus an ordered queue for source events, which are never dropped. The
newest frame goes to a free inspecting thread (the generator hands it over, or the thread takes it itself the
moment it finishes, while the caller may still be logging and showing a result), and the generator yields
each `LiveResult` in frame order. For sources
that are not live (folders, videos) the reader waits for the slot to empty instead, so every file is
inspected. Qt-free: the GUI, CLI and tests all use it the same way.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass

from engine.display import Composite, DisplayFeed
from engine.inference.mailbox import POLL_S, FrameGate, LatestFrameMailbox
from engine.inference.threads import Parallelism, live_parallelism, start_inspecting_thread
from engine.sources.base import FrameSource
from engine.sources.stream import SourceEvent, stream_frames
from engine.types import Frame, Inspection

# On stop, wait this long for the reader to release the source; a read blocked in a camera driver that
# ignores its timeout is left to return on its own (daemon thread; it closes the source itself).
_READER_JOIN_S = 0.5


RATE_WINDOW_S = 2.0  # the inspection rate shown is measured over this much of the recent past
_RESULTS_WAITING_MAX = 4  # finished frames the caller has not taken yet, beyond which no new frame is started


@dataclass(frozen=True, eq=False)
class LiveResult:
    """One inspected frame with the loop's running figures (dropped frames, throughput, latency)."""

    frame: Frame
    inspection: Inspection
    dropped_total: int  # frames overwritten before the model could take them, since the run started
    fps: float  # frames inspected per second over the last RATE_WINDOW_S seconds (0 until there are two)
    latency_ms: float  # from the frame being read to its verdict
    inspected_total: int  # frames inspected since the run started, this one included
    display: Composite | None = None  # the frame as the window shows it, made for at most one result per draw interval


class RateMeter:
    """Events per second over a sliding window: (events - 1) / time between the first and last in it.

    Counting over an interval gives the true rate; an average of instantaneous rates (1 / gap) overstates
    it whenever the gaps vary.
    """

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        if not window_s > 0:
            raise ValueError(f"rate window must be a positive number of seconds, not {window_s!r}")
        self.window_s = window_s
        self._times: deque[float] = deque()

    def add(self, t: float) -> float:
        """Record an event at time t (seconds, increasing) and return the rate now."""
        self._times.append(t)
        while len(self._times) > 2 and t - self._times[0] > self.window_s:
            self._times.popleft()
        return self.rate()

    def rate(self) -> float:
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


class _Failure:
    """The reader's exception, handed to the consumer to re-raise on its own thread."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()  # the reader has finished (source ended, failed or was stopped)


def _wait_done(job: Future, timeout: float) -> None:
    """Wait up to timeout for job to finish, without raising its error (finish() does, in frame order).

    One wait on the job's own condition: concurrent.futures.wait installs and removes a waiter on each call.
    """
    try:
        job.exception(timeout)
    except (TimeoutError, CancelledError):
        pass


def _reader(
    source: FrameSource,
    mailbox: LatestFrameMailbox,
    stop: threading.Event,
    drop: bool,
    gate: FrameGate | None,
    min_interval_s: float,
    on_dropped: Callable[[int], None] | None,
    stream_options: dict,
    on_frame: Callable[[], None] | None = None,
) -> None:
    """Reader thread body: stream the source into the mailbox until it ends, fails or stop is set.

    on_frame is called after each frame is put in the mailbox (a free inspecting thread can start on it at once).
    """
    try:
        frames = stream_frames(source, stop=stop, **stream_options)
        try:
            next_due = 0.0
            gated = True  # pass the gate before each frame; events in between do not use up a step
            while not stop.is_set():
                if gated and not drop and not mailbox.wait_until_taken(stop):
                    break  # files: read a frame only once the model has taken the last, so none waits long
                if gated and gate is not None and not gate.wait(stop):
                    break
                if gated and min_interval_s > 0:
                    delay = next_due - time.monotonic()
                    if delay > 0 and stop.wait(delay):
                        break
                    next_due = max(next_due + min_interval_s, time.monotonic())
                try:
                    item = next(frames)
                except StopIteration:
                    break
                gated = isinstance(item, Frame)
                if gated:
                    if mailbox.put_frame(item, drop=drop, stop=stop) and on_dropped is not None:
                        on_dropped(mailbox.dropped)
                    if on_frame is not None:
                        on_frame()
                else:
                    mailbox.put(item)
        finally:
            frames.close()  # runs stream_frames' finally: the camera or file is released here
    except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread, which re-raises it
        mailbox.put(_Failure(exc))
    finally:
        mailbox.put(_END)


def live_inspect(
    source: FrameSource,
    inspector,
    *,
    stop: threading.Event,
    on_dropped: Callable[[int], None] | None = None,
    drop_frames: bool | None = None,
    gate: FrameGate | None = None,
    max_fps: float | None = None,
    in_flight: int | None = None,
    display: DisplayFeed | None = None,
    **stream_options,
) -> Iterator[LiveResult | SourceEvent]:
    """Inspect the newest frame of source again and again; yields LiveResult and SourceEvent until it ends.

    drop_frames: overwrite frames the model has not taken (default: only for live sources such as
    cameras); on_dropped(total) is called from the reader thread at each drop. inspector.thresholds
    is read for every frame, so a change applies from the next frame. gate pauses and
    steps the reader; max_fps caps how often it reads (e.g. to replay a folder at line speed).
    in_flight frames are inspected at once (default: live_parallelism of the inspector's device);
    results come out in frame order whatever order they finish in. With display, the results it picks
    carry the picture the window shows, made on the inspecting thread.
    stream_options go to stream_frames (max_retries, backoff, sleep). A source that fails for good
    raises here, on the caller's thread. Setting stop ends the loop at once; the reader closes the source
    when its current read returns.
    """
    if max_fps is not None and max_fps <= 0:
        raise ValueError(f"max_fps must be positive or None, not {max_fps}")
    if in_flight is None:
        parallelism = live_parallelism(getattr(inspector, "device", None))
    else:
        parallelism = Parallelism(int(in_flight), None)
    if parallelism.in_flight < 1:
        raise ValueError(f"in_flight must be 1 or more, not {in_flight}")
    drop = source.is_live if drop_frames is None else bool(drop_frames)
    mailbox = LatestFrameMailbox()
    reader_stop = threading.Event()
    threads_each = parallelism.threads_each
    pool = ThreadPoolExecutor(
        max_workers=parallelism.in_flight, thread_name_prefix="live-inspect",
        initializer=start_inspecting_thread, initargs=(threads_each,),
    )  # fmt: skip
    inspected = 0
    meter = RateMeter()
    in_flight: deque[tuple[Frame, Future]] = deque()  # frames being inspected, oldest first: results go out in frame order

    def inspect(image):
        inspection = inspector.inspect([image])[0]
        return inspection, (display.offer(image, inspection) if display is not None else None)

    def finish(frame: Frame, job: Future) -> LiveResult:
        nonlocal inspected
        inspection, composite = job.result()
        now = time.time()
        inspected += 1
        return LiveResult(
            frame=frame,
            inspection=inspection,
            dropped_total=mailbox.dropped,
            fps=meter.add(time.perf_counter()),
            latency_ms=max(0.0, (now - frame.timestamp) * 1000.0),
            inspected_total=inspected,
            display=composite,
        )

    # Files: one frame more than threads, so a thread that finishes starts the next at once. Live sources: none
    # queued (the newest frame wins; a queued one would only grow stale).
    queued_max = parallelism.in_flight + (0 if drop else 1)
    # in_flight is filled by this thread and by inspecting threads as they finish (re-entrant: a job that is done
    # before its callback is added runs the callback here, inside submit)
    lock = threading.RLock()
    held = None  # an event, the end or a failure, waiting until every frame read before it is out

    def has_room() -> bool:  # caller holds lock
        busy = sum(1 for _, job in in_flight if not job.done())
        return busy < queued_max and len(in_flight) < queued_max + _RESULTS_WAITING_MAX

    def submit(frame: Frame) -> None:  # caller holds lock
        job = pool.submit(inspect, frame.image)
        in_flight.append((frame, job))
        job.add_done_callback(on_done)

    def start_newest() -> None:
        """Start a free inspecting thread on the waiting frame now, not when the caller next asks (it may be logging
        and showing the last result): called as a thread finishes and as the reader puts a frame in."""
        with lock:
            if held is None and not stop.is_set() and has_room():  # an event read before later frames goes out first
                frame = mailbox.take_frame()
                if frame is not None:
                    try:
                        submit(frame)
                    except RuntimeError:  # the loop has ended and shut the pool down
                        pass

    def on_done(_job: Future) -> None:
        start_newest()
        mailbox.poke()  # wake the caller: a result is ready

    reader = threading.Thread(
        target=_reader,
        args=(source, mailbox, reader_stop, drop, gate, 1.0 / max_fps if max_fps else 0.0, on_dropped, stream_options,
              start_newest),
        name=f"live-reader {getattr(source, 'description', 'source')}",
        daemon=True,
    )
    reader.start()
    try:
        while not stop.is_set():
            # Keep the inspecting threads busy first: a frame waiting is submitted before a result is handed out.
            while held is None:
                with lock:
                    if not has_room():
                        break
                    ready = bool(in_flight) and in_flight[0][1].done()
                item = mailbox.get(0 if ready else POLL_S)  # a finished frame pokes the mailbox awake
                if item is None:
                    break
                with lock:
                    if isinstance(item, Frame):
                        submit(item)
                    else:
                        held = item
            while not stop.is_set():
                with lock:
                    if not (in_flight and in_flight[0][1].done()):
                        break
                    frame, job = in_flight.popleft()
                yield finish(frame, job)
            if stop.is_set():
                return
            if held is not None and not in_flight:
                with lock:
                    item, held = held, None
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.exc
                yield item
                if item.kind == "ended":
                    return
            elif in_flight and (held is not None or len(in_flight) >= queued_max):
                _wait_done(in_flight[0][1], POLL_S)
    finally:
        reader_stop.set()
        mailbox.close()
        for _, job in in_flight:
            job.cancel()
        pool.shutdown(wait=False)
        reader.join(_READER_JOIN_S)
