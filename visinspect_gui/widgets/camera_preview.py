"""The camera dialog's preview: a Qt-free reader job that keeps only the newest frame, and the label that shows it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from engine.sources import FrameReadError, open_source
from engine.sources.industrial import TriggerMode
from engine.types import Frame

PREVIEW_FPS = 15.0  # enough to aim a camera; the station's 2 cores are not spent on a preview
WAIT_FOR_LINE_S = 0.5


class LatestFrame:
    """A one-frame mailbox: the reader replaces what the GUI has not taken yet, so the newest frame always wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: Frame | None = None

    def put(self, frame: Frame) -> bool:
        """Leave frame for the GUI; True when the box was empty (the GUI must be told), False when it replaced one."""
        with self._lock:
            was_empty = self._frame is None
            self._frame = frame
            return was_empty

    def take(self) -> Frame | None:
        """The newest frame, emptying the box (None when there is none)."""
        with self._lock:
            frame, self._frame = self._frame, None
            return frame


@dataclass(frozen=True)
class PreviewOpened:
    """The previewed source is open; description is its one line."""

    description: str


@dataclass(frozen=True)
class PreviewNote:
    """Something to say under the preview while it runs (waiting for a line trigger, an unreadable file)."""

    text: str


FRAME_READY = "frame"  # yielded when the mailbox went from empty to full


def _next_frame(source) -> Frame | None:
    """One frame: free-run read, a fired software trigger, or the next line trigger (None when none came)."""
    mode = getattr(source, "trigger_mode", TriggerMode.FREE_RUN)
    if mode is TriggerMode.SOFTWARE:
        source.fire()
        return source.grab(source.settings.grab_timeout_s)
    if mode is TriggerMode.LINE1:
        return source.grab(WAIT_FOR_LINE_S)
    return source.read()


def preview_frames(spec: str, mailbox: LatestFrame, *, max_fps: float = PREVIEW_FPS, stop: threading.Event) -> Iterator:
    """Read frames of spec into mailbox at most max_fps times a second until stopped; files loop so the preview goes on."""
    source = open_source(spec, loop=True)
    source.open()
    try:
        yield PreviewOpened(source.description)
        waiting_said = False
        while not stop.is_set():
            started = time.monotonic()
            try:
                frame = _next_frame(source)
            except FrameReadError as exc:
                yield PreviewNote(f"Skipped an unreadable file: {exc}")
                continue
            if frame is None:
                if getattr(source, "trigger_mode", TriggerMode.FREE_RUN) is TriggerMode.FREE_RUN:
                    yield PreviewNote("The source has no more frames.")
                    return
                if not waiting_said:
                    waiting_said = True
                    yield PreviewNote("Waiting for a trigger on line 1…")
                continue
            waiting_said = False
            if mailbox.put(frame):
                yield FRAME_READY
            stop.wait(max(0.0, 1.0 / max_fps - (time.monotonic() - started)))
    finally:
        source.close()


def to_pixmap(image: np.ndarray) -> QPixmap:
    """A QPixmap of an RGB uint8 image (copied, so the array may go)."""
    rgb = np.ascontiguousarray(image)
    h, w = rgb.shape[:2]
    qimage = QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888)
    return QPixmap.fromImage(qimage.copy())


class PreviewLabel(QLabel):
    """Shows the newest preview frame scaled to fit, keeping its aspect; its own size never depends on the frame."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("CameraPreview")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(240, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setStyleSheet("background: #111316; color: #c8ccd2;")
        self.setWordWrap(True)
        self.frame: Frame | None = None
        self.frames_shown = 0
        self._pixmap = QPixmap()

    def show_frame(self, frame: Frame) -> None:
        """Show frame, scaled to the label."""
        self.frame = frame
        self._pixmap = to_pixmap(frame.image)
        self.frames_shown += 1
        self._rescale()

    def show_text(self, text: str) -> None:
        """No frame: say why (choose a camera, opening, failed)."""
        self.frame = None
        self._pixmap = QPixmap()
        self.setPixmap(QPixmap())
        self.setText(text)

    def _rescale(self) -> None:
        if not self._pixmap.isNull():
            size = self.contentsRect().size()
            self.setPixmap(self._pixmap.scaled(size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override: the frame shown never resizes the dialog
        return QSize(480, 320)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(240, 160)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._rescale()
