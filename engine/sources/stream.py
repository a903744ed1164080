"""The frame loop the GUI worker and CLI wrap: frames, plus events for bad files, lost cameras, new sizes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from engine.errors import SourceError
from engine.sources.base import FrameReadError, FrameSource
from engine.types import Frame

EVENT_KINDS = ("file_error", "lost", "recovered", "resolution_changed", "empty_frame", "stalled", "ended")
_STOP_CHECK_S = 0.1  # longest single sleep, so a stop request is noticed within this time
DEFAULT_STALL_S = 2.0  # a live read slower than this is reported as a stall


@dataclass(frozen=True)
class SourceEvent:
    """Something the operator should see that is not a frame (kind is one of EVENT_KINDS)."""

    kind: str
    message: str
    path: str | None = None
    index: int | None = None


def _wait(seconds: float, stop: threading.Event, sleep: Callable[[float], object]) -> bool:
    """Sleep for seconds in short slices; False as soon as stop is set."""
    remaining = seconds
    while remaining > 0:
        if stop.is_set():
            return False
        step = min(_STOP_CHECK_S, remaining)
        sleep(step)
        remaining -= step
    return not stop.is_set()


def stream_frames(
    source: FrameSource,
    *,
    stop: threading.Event,
    max_retries: int | None = None,
    backoff: Sequence[float] = (0.5, 1, 2, 5),
    sleep: Callable[[float], object] = time.sleep,
    stall_s: float | None = DEFAULT_STALL_S,
) -> Iterator[Frame | SourceEvent]:
    """Open source and yield its frames and events until it ends or stop is set; always closes it.

    A live source that fails is closed and reopened after backoff[attempt] seconds (the last value
    repeating); after max_retries failed attempts in one outage the SourceError is raised. A live
    read that took longer than stall_s seconds (None: never) is reported as a "stalled" event before
    its frame. A stop request ends the generator without an event, also when it arrives during a slow
    read or reopen: the frame read meanwhile is not yielded. Errors opening the source the first
    time, and SourceErrors from sources that are not live, are raised to the caller.
    """
    if not backoff or any(b < 0 for b in backoff):
        raise ValueError(f"backoff must be a non-empty sequence of seconds >= 0, not {backoff!r}")
    if max_retries is not None and max_retries < 0:
        raise ValueError(f"max_retries must be None (retry forever) or 0 or more, not {max_retries}")
    if stall_s is not None and not stall_s > 0:
        raise ValueError(f"stall_s must be None or a positive number of seconds, not {stall_s!r}")
    previous_shape: tuple[int, ...] | None = None
    attempts: int | None = None  # reconnect attempts in the current outage; None while frames flow
    try:
        source.open()
        while not stop.is_set():
            started = time.monotonic()
            try:
                frame = source.read()
            except FrameReadError as exc:
                yield SourceEvent("file_error", str(exc), path=exc.path, index=exc.index)
                continue
            except SourceError as exc:
                if not source.is_live:
                    raise
                if attempts is None:
                    attempts = 0
                    yield SourceEvent("lost", f"{exc}; reconnecting")
                attempts = _reconnect(source, exc, attempts, stop, max_retries, backoff, sleep)
                if attempts is None:
                    return
                continue
            if stop.is_set():  # asked to stop while the read was blocked: drop what it returned
                return
            if frame is None:
                yield SourceEvent("ended", f"{source.description}: end of stream")
                return
            if frame.image is None or frame.image.size == 0:
                yield SourceEvent(
                    "empty_frame", f"{source.description}: empty frame skipped", index=frame.index
                )
                continue
            waited = time.monotonic() - started
            if source.is_live and stall_s is not None and waited > stall_s:
                yield SourceEvent(
                    "stalled", f"{source.description}: no frame for {waited:.1f} s (stalled)", index=frame.index
                )
            if attempts is not None:
                attempts = None
                yield SourceEvent("recovered", f"{source.description}: frames are arriving again")
            shape = tuple(frame.image.shape)
            if source.is_live and previous_shape is not None and shape != previous_shape:
                yield SourceEvent(
                    "resolution_changed",
                    f"{source.description}: resolution changed {_size(previous_shape)} -> {_size(shape)}",
                    index=frame.index,
                )
            previous_shape = shape
            yield frame
    finally:
        source.close()


def _reconnect(
    source: FrameSource,
    error: SourceError,
    attempt: int,
    stop: threading.Event,
    max_retries: int | None,
    backoff: Sequence[float],
    sleep: Callable[[float], object],
) -> int | None:
    """Close, wait out the backoff and reopen until it opens; the attempts used so far, None if stopped."""
    while True:
        if max_retries is not None and attempt >= max_retries:
            raise SourceError(f"{error} (gave up after {attempt} reconnect attempts)") from error
        source.close()
        if not _wait(backoff[min(attempt, len(backoff) - 1)], stop, sleep):
            return None
        attempt += 1
        try:
            source.open()
        except SourceError as exc:
            error = exc
            continue
        if stop.is_set():  # the reopen itself was slow and stop came meanwhile
            return None
        return attempt


def _size(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]}"
