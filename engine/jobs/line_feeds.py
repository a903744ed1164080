"""Where a triggered part's frame comes from: fire-and-grab cameras, free-running cameras, or the next file.

Each feed answers `frame_for(part)` with the frame taken for that part, raises PartFailed when this part
cannot be had (the run goes on), and raises anything else when the source has failed for good.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import replace

from engine.errors import RecipeError, SourceError
from engine.lineio.hub import PartTrigger
from engine.recipes import crop_to_roi
from engine.sources import FrameReadError, FrameSource, SourceEvent, stream_frames
from engine.types import Frame

DEFAULT_GRAB_TIMEOUT_S = 1.0  # a triggered frame not grabbed within this is an ERROR for that part
MAX_PART_WAIT_S = 2.0  # cameras: a part that waited longer than this for its frame has passed; ERROR, not a late frame
REOPEN_EVERY_S = 1.0  # a lost trigger camera is reopened this often while no part is waiting


class PartFailed(Exception):
    """This part cannot be inspected (no frame in time, unreadable file); item names it in the log."""

    def __init__(self, message: str, item: str | int = "") -> None:
        super().__init__(message)
        self.item = item


class SourceEnded(Exception):
    """A file source has no more frames: no later part can be inspected."""


def current(value):
    """value, or what it returns when it is a callable (the ROI or recipe of the moment)."""
    return value() if callable(value) else value


class RoiSource:
    """A source whose frames are cut to the ROI of the moment; a frame the ROI does not fit is one unreadable frame."""

    def __init__(self, source: FrameSource, roi) -> None:
        self.source = source
        self.roi = roi  # (x, y, w, h), None, or a callable returning one

    def __getattr__(self, name):  # description, is_live, trigger_mode, settings, fire, ... of the wrapped source
        return getattr(self.source, name)

    def open(self) -> None:
        self.source.open()

    def close(self) -> None:
        self.source.close()

    def _crop(self, frame: Frame | None) -> Frame | None:
        if frame is None:
            return None
        try:
            return replace(frame, image=crop_to_roi(frame.image, current(self.roi)), encoded=None)  # the file is not the crop
        except (ValueError, RecipeError) as exc:
            raise FrameReadError(str(exc), path=frame.path or "", index=frame.index) from None

    def read(self) -> Frame | None:
        return self._crop(self.source.read())

    def grab(self, timeout_s: float) -> Frame | None:
        return self._crop(self.source.grab(timeout_s))


def with_roi(source: FrameSource, roi) -> FrameSource:
    """source itself without an ROI, else the source cut to it."""
    return source if roi is None else RoiSource(source, roi)


def _trigger_mode(source) -> str:
    mode = getattr(source, "trigger_mode", None)
    return str(getattr(mode, "value", mode or "off"))


class TriggerCameraFeed:
    """A camera in software or hardware trigger mode: fire (software) and grab the frame for each part."""

    def __init__(self, source, grab_timeout_s: float) -> None:
        self.source = source
        self.grab_timeout_s = grab_timeout_s
        self.events: deque[SourceEvent] = deque()
        self.healthy = False
        self.last_error = ""
        self._last_attempt = 0.0

    def open(self) -> None:
        self.source.open()
        self.healthy = True

    def frame_for(self, part: PartTrigger) -> Frame:
        if not self.healthy and not self.recover():
            raise PartFailed(f"camera not ready ({self.last_error})")
        try:
            if _trigger_mode(self.source) == "software":
                self.source.fire()
            frame = self.source.grab(self.grab_timeout_s)
        except FrameReadError as exc:
            raise PartFailed(str(exc), exc.index) from None
        except SourceError as exc:
            self.healthy, self.last_error = False, str(exc)
            self.events.append(SourceEvent("lost", f"{exc}; reconnecting"))
            raise PartFailed(str(exc)) from None
        if frame is None:
            raise PartFailed(f"no frame within {self.grab_timeout_s:g} s of the trigger")
        return frame

    def idle(self) -> None:
        """Between parts: try to get a lost camera back, now and then."""
        if not self.healthy and time.monotonic() - self._last_attempt >= REOPEN_EVERY_S:
            self.recover()

    def recover(self) -> bool:
        self._last_attempt = time.monotonic()
        try:
            self.source.close()
            self.source.open()
        except SourceError as exc:
            self.last_error = str(exc)
            return False
        self.healthy = True
        self.events.append(SourceEvent("recovered", f"{self.source.description}: camera is back"))
        return True

    def close(self) -> None:
        self.source.close()


class FileFeed:
    """Files, a video: each part gets the next frame read after its trigger."""

    healthy = True

    def __init__(self, source: FrameSource, stop: threading.Event, stream_options: dict) -> None:
        self.source = source
        self.events: deque[SourceEvent] = deque()
        self._frames = stream_frames(source, stop=stop, **stream_options)
        self._first: Frame | SourceEvent | None = None

    def open(self) -> None:
        try:
            self._first = next(self._frames)  # opens the source: an unopenable one fails the run at once
        except StopIteration:
            self._first = None

    def frame_for(self, part: PartTrigger) -> Frame:
        while True:
            item, self._first = (self._first, None) if self._first is not None else (self._next(), None)
            if isinstance(item, Frame):
                return item
            self.events.append(item)
            if item.kind == "file_error":
                raise PartFailed(item.message, item.path or item.index or "")
            if item.kind == "ended":
                raise SourceEnded(item.message)

    def _next(self):
        try:
            return next(self._frames)
        except StopIteration:
            return SourceEvent("ended", f"{self.source.description}: end of stream")

    def idle(self) -> None:
        pass

    def close(self) -> None:
        self._frames.close()  # stream_frames' finally closes the source


class LiveCameraFeed:
    """A free-running camera read all the time on a thread of its own; a part gets the first frame read after its trigger."""

    def __init__(self, source: FrameSource, stop: threading.Event, stream_options: dict, grab_timeout_s: float) -> None:
        self.source = source
        self.grab_timeout_s = grab_timeout_s
        self.events: deque[SourceEvent] = deque()
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._failure: BaseException | None = None
        self._stop = threading.Event()
        self._outer_stop = stop
        self._stream_options = stream_options
        self._thread = threading.Thread(target=self._read, name=f"line-reader {source.description}", daemon=True)
        self._used: Frame | None = None  # the last part's frame: two parts never share one
        self.lost = False

    @property
    def healthy(self) -> bool:
        return not self.lost and self._failure is None

    def open(self) -> None:
        self._thread.start()
        with self._cond:  # the first frame (or failure) says the camera is open
            while self._latest is None and self._failure is None and not self._outer_stop.is_set():
                self._cond.wait(0.05)
        if self._failure is not None:
            raise self._failure

    def _read(self) -> None:
        try:
            for item in stream_frames(self.source, stop=self._stop, **self._stream_options):
                with self._cond:
                    if isinstance(item, Frame):
                        self._latest = item
                    else:
                        self.lost = item.kind == "lost" or (self.lost and item.kind != "recovered")
                        self.events.append(item)
                    self._cond.notify_all()
        except BaseException as exc:  # noqa: BLE001 - handed to the job's thread, which raises it there
            with self._cond:
                self._failure = exc
                self._cond.notify_all()

    def frame_for(self, part: PartTrigger) -> Frame:
        deadline = time.monotonic() + self.grab_timeout_s
        with self._cond:
            while self._latest is None or self._latest is self._used or self._latest.timestamp < part.time:
                if self._failure is not None:
                    raise self._failure
                left = deadline - time.monotonic()
                if left <= 0 or self._outer_stop.is_set():
                    raise PartFailed(f"no frame from the camera within {self.grab_timeout_s:g} s of the trigger")
                self._cond.wait(min(left, 0.05))
            self._used = self._latest
            return self._latest

    def idle(self) -> None:
        if self._failure is not None:
            raise self._failure

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)


def open_feed(source: FrameSource, stop: threading.Event, stream_options: dict, grab_timeout_s: float | None):
    """The feed for this source, opened (errors opening it are raised)."""
    settings = getattr(source, "settings", None)
    timeout = grab_timeout_s or getattr(settings, "grab_timeout_s", None) or DEFAULT_GRAB_TIMEOUT_S
    if hasattr(source, "grab") and _trigger_mode(source) in ("software", "line1"):
        feed = TriggerCameraFeed(source, timeout)
    elif source.is_live:
        feed = LiveCameraFeed(source, stop, stream_options, timeout)
    else:
        feed = FileFeed(source, stop, stream_options)
    feed.open()
    return feed
