"""An OpenCV backend that raises (instead of returning a closed capture or an empty read) is a SourceError, the
expected kind a live run reconnects on and the station reports in one line; OpenCV's own logging stays quiet."""
from __future__ import annotations

import os

import cv2
import pytest

from engine.errors import SourceError
from engine.sources import CameraSource, VideoSource, capture

BACKEND_ERROR = "OpenCV(5.0.0) /io/opencv/modules/videoio/src/cap.cpp:1: error: (-2:Unspecified error) backend gone in function 'read'\n"


class _RaisingCapture:
    """A VideoCapture whose backend raises cv2.error on read."""

    def isOpened(self):  # noqa: N802 - OpenCV's name
        return True

    def read(self):
        raise cv2.error(BACKEND_ERROR)

    def set(self, *args):
        return True

    def release(self):
        pass


def test_a_backend_that_raises_on_open_is_a_source_error(monkeypatch):
    def raising(*args, **kwargs):
        raise cv2.error(BACKEND_ERROR)

    monkeypatch.setattr(capture.cv2, "VideoCapture", raising)
    with pytest.raises(SourceError, match=r"^camera 3 could not be opened \(.*backend gone in function 'read'\)$"):
        CameraSource(3).open()


def test_a_backend_that_raises_on_read_is_a_source_error(monkeypatch, tmp_path):
    monkeypatch.setattr(capture.cv2, "VideoCapture", lambda *a, **k: _RaisingCapture())
    camera = CameraSource("rtsp://user:secret@10.0.0.5/line")
    camera.open()
    with pytest.raises(SourceError, match=r"^camera rtsp://\*\*\*@10.0.0.5/line stopped delivering frames \(.*backend gone"):
        camera.read()
    video = tmp_path / "line.avi"
    video.write_bytes(b"not really a video")
    source = VideoSource(video)
    source.open()
    with pytest.raises(SourceError, match="stopped delivering frames"):
        source.read()


def test_opencv_logging_is_silenced_once_capture_is_imported():
    if "OPENCV_LOG_LEVEL" in os.environ:
        pytest.skip("OPENCV_LOG_LEVEL is set: the user asked for OpenCV's own logging")
    assert cv2.utils.logging.getLogLevel() == cv2.utils.logging.LOG_LEVEL_SILENT
