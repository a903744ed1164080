"""Expected trouble (offline ImageNet weights, a camera that is not there) reaches the log as one warning line with
the reason: no traceback, and none of OpenCV's own "[ WARN ... cap_v4l.cpp ]" lines on stderr."""
from __future__ import annotations

import http.client
import logging
import os

import pytest

from engine.jobs.live import InspectorSlot, live_job
from engine.model.builder import build_model
from visinspect_gui.workers import Worker

ABSENT_CAMERA = 7


def run_job(qtbot, fn, *args) -> list[str]:
    """Run fn in a Worker until it finishes; the failure sentences it emitted."""
    failures: list[str] = []
    worker = Worker(fn, *args)
    worker.failed.connect(failures.append)
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        worker.start()
    return failures


def warnings_of(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_offline_imagenet_weights_are_one_warning_line_without_traceback(qtbot, caplog, tmp_path, monkeypatch):
    def cut_download(*args, **kwargs):
        raise http.client.IncompleteRead(b"partial")  # the connection dropped mid-download

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", cut_download)

    def train_setup(*, stop):
        yield build_model(backbone="vgg16_bn", backbone_weights="imagenet")

    caplog.set_level(logging.WARNING)
    failures = run_job(qtbot, train_setup)
    assert len(failures) == 1 and failures[0].startswith("ImageNet weights for vgg16_bn could not be downloaded")
    records = warnings_of(caplog)
    assert [r.levelno for r in records] == [logging.WARNING]
    assert "ImageNet weights for vgg16_bn could not be downloaded" in records[0].getMessage()
    assert records[0].exc_info is None and "Traceback" not in caplog.text


def test_a_camera_that_is_not_there_is_one_line_and_opencv_stays_quiet(qtbot, caplog, capfd):
    if os.path.exists(f"/dev/video{ABSENT_CAMERA}"):
        pytest.skip(f"this machine has a camera {ABSENT_CAMERA}")
    caplog.set_level(logging.WARNING)
    capfd.readouterr()
    failures = run_job(qtbot, live_job, str(ABSENT_CAMERA), InspectorSlot(None, "run-1"), None)
    err = capfd.readouterr().err
    assert failures == [f"camera {ABSENT_CAMERA} could not be opened"]
    records = warnings_of(caplog)
    assert len(records) == 1 and records[0].getMessage().endswith(f"camera {ABSENT_CAMERA} could not be opened")
    assert records[0].exc_info is None and "Traceback" not in caplog.text
    assert "[ WARN" not in err and "[ERROR" not in err and "VIDEOIO" not in err, err


def test_a_job_that_ends_after_its_panel_closed_raises_nothing(qtbot):
    """A probe still running when its panel is deleted (window closed) must not touch the deleted widgets."""
    import threading

    from PySide6.QtWidgets import QLabel, QWidget

    from visinspect_gui.workers import Latest

    release = threading.Event()

    def slow(stop):
        release.wait(5)
        yield "late answer"

    class Panel(QWidget):
        def __init__(self):
            super().__init__()
            self.label = QLabel(self)
            self.probe = Latest()

        def on_answer(self, text):
            self.label.setText(text)

    panel = Panel()
    worker = panel.probe.start(slow, on_event=panel.on_answer)
    panel.deleteLater()
    qtbot.waitUntil(lambda: not __import__("shiboken6").isValid(panel), timeout=2000)
    release.set()
    assert worker.wait(5000)
    qtbot.wait(50)  # the late event is delivered here; pytest-qt fails the test if it raises
