"""The Review tab's progress line: a bar and one sentence on how far the review is, its speed, ETA and end."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget

from engine.jobs.review import ReviewChunk, ReviewDone, ReviewStarted
from engine.types import JobOutcome


class ReviewProgress(QWidget):
    """How far a review (or an annotated export) is, in a bar and a label."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(8)
        self.label = QLabel("")
        self.label.setObjectName("ProgressLabel")
        self.label.setMinimumWidth(300)
        self.label.setWordWrap(True)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.label, 1)
        self._t0 = self._t_listed = 0.0
        self._resumed = 0

    def say(self, text: str) -> None:
        self.label.setText(text)

    def listing(self) -> None:
        """A review starts: its files are being listed."""
        self.bar.setRange(0, 0)
        self.label.setText("Listing images…")
        self._t0 = self._t_listed = time.monotonic()
        self._resumed = 0

    def started(self, event: ReviewStarted) -> None:
        self.bar.setRange(0, max(1, event.total))
        self.bar.setValue(event.resumed)
        self._resumed = event.resumed
        self._t_listed = time.monotonic()
        if event.resumed:
            again = f"; {event.rejudged:,} judged again at threshold {event.thresholds.decision:.4f}" if event.rejudged else ""
            self.label.setText(f"Resuming: {event.resumed:,} of {event.total:,} files were already reviewed{again}")
        else:
            self.label.setText(f"0 / {event.total:,}")

    def chunk(self, event: ReviewChunk) -> None:
        """Rows arrived: the count, the speed of the files inspected now (not those reused) and the ETA."""
        self.bar.setValue(event.done)
        inspected = event.done - self._resumed
        elapsed = time.monotonic() - self._t_listed
        if inspected > 0 and elapsed > 0:
            rate = inspected / elapsed
            left = (event.total - event.done) / rate if rate > 0 else 0.0
            eta = f" · ETA {int(left // 60)}:{int(left % 60):02d}" if event.done < event.total else ""
            self.label.setText(f"{event.done:,} / {event.total:,} · {rate:.1f} images/s{eta}")

    def done(self, event: ReviewDone, rows: int) -> None:
        earlier = f" ({event.reused:,} from the earlier run)" if event.reused else ""
        self.label.setText(f"Done: {rows:,} files in {time.monotonic() - self._t0:.1f} s{earlier}")

    def finished(self, outcome: JobOutcome, rows: int) -> None:
        """The review's worker ended: a full bar when done, the count when cancelled."""
        if self.bar.maximum() == 0:
            self.bar.setRange(0, 1)
        if outcome is JobOutcome.DONE:
            self.bar.setValue(self.bar.maximum())
        elif outcome is JobOutcome.CANCELLED:
            self.label.setText(f"Cancelled after {rows:,} files")

    def counting(self, done: int, total: int, text: str) -> None:
        """Progress of another job (e.g. annotated copies): done of total and a sentence."""
        self.bar.setRange(0, max(1, total))
        self.bar.setValue(done)
        self.label.setText(text)
