"""Continuous store-and-forward for the station and `serve`: a thread that pushes new results to the central store.

    forwarder = Forwarder("postgresql://station@plant-db/visinspect", log.path, station="line3-cam1")
    forwarder.start()     # returns at once; the station runs the same whether the server is there or not
    forwarder.poke()      # optional, after a result: push now instead of at the next interval
    forwarder.status()    # ForwarderStatus: connected, sent, pending, last_error (one line, no password)
    forwarder.stop()      # sets the stop flag, waits for the thread (one batch; a dead network: the 10 s / 30 s timeouts)
"""
from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from engine.central.errors import CentralError, FrameShareError
from engine.central.share import FrameShare
from engine.central.sync import BATCH_SIZE, CentralSession
from engine.central.target import CentralTarget

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ForwarderStatus:
    """Where forwarding stands, for a status bar: is the server there, what went, what waits, why not."""

    running: bool = False
    connected: bool = False  # the last attempt reached the server
    sent: int = 0  # rows sent since start()
    already: int = 0  # rows the server already had (sent before a crash or outage)
    pending: int | None = None  # rows of the local log not yet on the server (None: not known yet)
    last_error: str | None = None  # one line, password masked; None while the server is reachable
    share_failed: bool = False  # the last error was the frames share refusing a copy (the server may be fine)
    last_sync: float | None = None  # time.time() of the last push that completed


class Forwarder:
    """Forwards a station's results log to the central store in a thread of its own until stopped.

    It pushes every `interval_s` (or at once after poke()); while the server is away it retries with exponential
    backoff (from `backoff_s` up to `max_backoff_s`, with jitter so a plant's stations do not return in step),
    logging one warning per outage and one info line on recovery. Results stay in the local log meanwhile, so
    nothing is lost however long the outage, and memory stays at one batch. A bad URL raises at construction.
    """

    def __init__(
        self, url: str | CentralTarget, log_path: str | Path, *, station: str | None = None,
        password: str | None = None, interval_s: float = 2.0, backoff_s: float = 1.0, max_backoff_s: float = 60.0,
        batch_size: int = BATCH_SIZE, frames_url: str | None = None, share: str | Path | None = None,
    ):  # fmt: skip
        self.target = url if isinstance(url, CentralTarget) else CentralTarget.parse(url, password=password)
        if batch_size < 1:
            raise ValueError(f"batch size must be 1 or more, not {batch_size}")
        if interval_s <= 0 or backoff_s <= 0 or max_backoff_s < backoff_s:
            raise ValueError(
                f"interval and backoff must be positive, with max_backoff_s >= backoff_s; got {interval_s}, {backoff_s}, {max_backoff_s}"
            )
        self.log_path = Path(log_path)
        self._station = station
        if share is not None:
            FrameShare(share, "-")  # a share that is not there is refused now, in one line, not retried for ever
        self._options = dict(batch_size=batch_size, frames_url=frames_url, share=share)
        self._interval_s = interval_s
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._status = ForwarderStatus()
        self._thread: threading.Thread | None = None
        self._session: CentralSession | None = None  # the thread's, exposed only so stop() can cancel a statement

    def start(self) -> None:
        """Start the forwarding thread (once); returns at once."""
        if self._thread is not None:
            raise RuntimeError("this forwarder was already started; make a new one to start again")
        self._set(running=True)
        self._thread = threading.Thread(target=self._run, name=f"central-forwarder {self.target.display}", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Push now rather than at the next interval (ignored during an outage's backoff)."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the thread and close its connections; True when it has ended within `timeout` seconds.

        A statement the server is holding is cancelled (its batch is sent again next time), so this is prompt.
        """
        self._stop.set()
        self._wake.set()
        if self._thread is None:
            return True
        deadline = time.monotonic() + timeout
        self._thread.join(min(0.2, timeout))  # usually enough: the thread was waiting, or between batches
        while self._thread.is_alive() and time.monotonic() < deadline:
            session = self._session
            if session is not None:
                session.cancel()  # again each round: a statement may have started just after the last cancel
            self._thread.join(min(0.5, max(0.0, deadline - time.monotonic())))
        return not self._thread.is_alive()

    def status(self) -> ForwarderStatus:
        with self._lock:
            return self._status

    def _set(self, **changes) -> None:
        with self._lock:
            self._status = replace(self._status, **changes)

    def _run(self) -> None:
        session: CentralSession | None = None
        failures = 0
        outage_since: float | None = None
        try:
            while not self._stop.is_set():
                try:
                    session = session or CentralSession(self.target, self.log_path, station=self._station, **self._options)
                    self._session = session
                    report = session.push(stop=self._stop)
                except Exception as exc:  # noqa: BLE001 - the thread boundary: report, back off, try again
                    if self._stop.is_set():
                        break  # cancelled by stop(): not an outage
                    failures += 1
                    message = self.target.mask(exc) if isinstance(exc, CentralError) else self.target.mask(f"{type(exc).__name__}: {exc}")
                    if outage_since is None:
                        outage_since = time.monotonic()
                        log.warning("central store %s: %s; results stay in the local log and are sent when it is back",
                                    self.target.display, message, exc_info=not isinstance(exc, CentralError))  # fmt: skip
                    self._set(connected=False, last_error=message, share_failed=isinstance(exc, FrameShareError),
                              pending=_pending(session))  # fmt: skip
                    self._stop.wait(self._delay(failures))
                    continue
                if outage_since is not None:
                    log.info("central store %s reachable again after %.0f s; sending the results kept meanwhile",
                             self.target.display, time.monotonic() - outage_since)  # fmt: skip
                    outage_since = None
                failures = 0
                with self._lock:
                    s = self._status
                    self._status = replace(s, connected=True, last_error=None, share_failed=False, sent=s.sent + report.sent,
                                           already=s.already + report.already, last_sync=time.time())  # fmt: skip
                pending = _pending(session)
                self._set(pending=pending)
                if pending and report.mark_saved:
                    continue  # rows arrived while pushing: go on at once
                self._wake.wait(self._interval_s)
                self._wake.clear()
        finally:
            self._session = None
            if session is not None:
                session.close()
            self._set(running=False)

    def _delay(self, failures: int) -> float:
        """Exponential backoff with jitter: the n-th failure in a row waits about backoff_s * 2**(n-1), capped."""
        ceiling = min(self._max_backoff_s, self._backoff_s * 2 ** min(failures - 1, 30))
        return ceiling * random.uniform(0.5, 1.0)


def _pending(session: CentralSession | None) -> int | None:
    if session is None:
        return None
    try:
        return session.pending()
    except CentralError:
        return None
