"""The live loop's hand-over points: the newest-frame mailbox between reader and model, and the pause/step gate."""

from __future__ import annotations

import threading
from collections import deque

from engine.types import Frame

POLL_S = 0.05  # longest single wait, so a stop request is noticed within this time


class LatestFrameMailbox:
    """One slot for the newest frame plus an ordered queue for events; thread-safe, one producer, one consumer.

    `put_frame` with drop=True overwrites an unconsumed frame (counted in `dropped`); with drop=False it
    waits until the consumer has taken the previous one. Events and the end marker queue in order after
    any frame already waiting, so 'ended' always comes after the last frame. The producer and the consumer
    wait on conditions of their own (one lock), so waking one never wakes the other for nothing.
    """

    def __init__(self) -> None:
        lock = threading.Lock()
        self._ready = threading.Condition(lock)  # the consumer waits here: an item came, or poke()
        self._taken = threading.Condition(lock)  # the producer waits here: the waiting frame was taken
        self._items: deque = deque()  # frames and events in arrival order; at most one Frame
        self.dropped = 0
        self._closed = False

    def put_frame(self, frame: Frame, *, drop: bool = True, stop: threading.Event | None = None) -> bool:
        """Offer a frame; True when it replaced an unconsumed one (a drop). Returns False at once when closed."""
        with self._ready:
            if not drop:
                while self._has_frame() and not self._closed and not (stop is not None and stop.is_set()):
                    self._taken.wait(POLL_S)
            if self._closed:
                return False
            replaced = False
            for i, item in enumerate(self._items):
                if isinstance(item, Frame):
                    del self._items[i]
                    self.dropped += 1
                    replaced = True
                    break
            self._items.append(frame)
            self._ready.notify()
            return replaced

    def put(self, item: object) -> None:
        """Queue an event or marker; never dropped."""
        with self._ready:
            if self._closed:
                return
            self._items.append(item)
            self._ready.notify()

    def get(self, timeout: float | None = None) -> object | None:
        """The oldest waiting item (at most one frame ever waits), or None after timeout."""
        with self._ready:
            if not self._items:
                self._ready.wait(timeout)
            if not self._items:
                return None
            item = self._items.popleft()
            if isinstance(item, Frame):
                self._taken.notify()
            return item

    def take_frame(self) -> Frame | None:
        """The waiting frame when it is next in line (no event before it), else None; never waits."""
        with self._ready:
            if not self._items or not isinstance(self._items[0], Frame):
                return None
            frame = self._items.popleft()
            self._taken.notify()
            return frame

    def poke(self) -> None:
        """Wake a consumer waiting in get() (it returns None): something else it waits for is ready."""
        with self._ready:
            self._ready.notify()

    def close(self) -> None:
        """Wake and release a waiting producer; later puts are ignored."""
        with self._ready:
            self._closed = True
            self._items.clear()
            self._ready.notify_all()
            self._taken.notify_all()

    def wait_until_taken(self, stop: threading.Event) -> bool:
        """Block until no frame is waiting (so the next one is read just in time); False when stopped or closed."""
        with self._taken:
            while self._has_frame() and not self._closed and not stop.is_set():
                self._taken.wait(POLL_S)
            return not (self._closed or stop.is_set())

    def _has_frame(self) -> bool:
        """True when a frame waits in the slot (caller holds the lock)."""
        return any(isinstance(item, Frame) for item in self._items)


class FrameGate:
    """Pause, resume and single-step a live run from another thread; the reader waits here before each read."""

    def __init__(self, *, paused: bool = False, steps: int = 0) -> None:
        self._cond = threading.Condition()
        self._paused = paused
        self._steps = steps

    @property
    def paused(self) -> bool:
        """True while frames pass only by step()."""
        return self._paused

    def pause(self) -> None:
        """Hold the reader before its next frame."""
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        """Let frames flow again and forget unused steps."""
        with self._cond:
            self._paused = False
            self._steps = 0
            self._cond.notify_all()

    def step(self, n: int = 1) -> None:
        """Pause (if running) and let exactly n more frames through."""
        with self._cond:
            self._paused = True
            self._steps += n
            self._cond.notify_all()

    def wait(self, stop: threading.Event) -> bool:
        """Block while paused with no step left; False when stop was set meanwhile."""
        with self._cond:
            while self._paused and self._steps <= 0:
                if stop.is_set():
                    return False
                self._cond.wait(POLL_S)
            if self._paused:
                self._steps -= 1
        return not stop.is_set()
