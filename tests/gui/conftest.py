"""GUI fixtures: a private data and weights folder per test, the small trained model, a short line of parts, the window."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from engine.errors import SourceError
from engine.types import Frame

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")


@pytest.fixture(autouse=True)
def private_folders(tmp_path, monkeypatch):
    """Every test writes results, logs and demo files under its own tmp folder, never the user's."""
    data, weights = tmp_path / "station-data", tmp_path / "station-weights"
    data.mkdir()
    weights.mkdir()
    monkeypatch.setenv("VISINSPECT_DATA", str(data))
    monkeypatch.setenv("VISINSPECT_WEIGHTS", str(weights))
    return data, weights


@pytest.fixture(scope="session")
def judged_parts(model_file, synthetic_dataset):
    """Synthetic test parts with the small model's own verdicts: (path, p_anomaly, n_boxes), confident ones only."""
    from engine.data.decode import read_image
    from engine.inference.inspector import Inspector
    from engine.sources import list_images

    inspector = Inspector.from_file(model_file, device="cpu")
    judged = []
    for path in list_images(synthetic_dataset / "test"):
        insp = inspector.inspect([read_image(path)])[0]
        judged.append((path, insp.p_anomaly, len(insp.boxes)))
    return judged


@pytest.fixture(scope="session")
def line_folder(judged_parts, tmp_path_factory) -> Path:
    """Six parts the model is sure about, named so natural order is good, bad, good, bad, good, bad."""
    good = [j for j in judged_parts if j[1] < 0.2][:3]
    bad = sorted((j for j in judged_parts if j[1] > 0.8 and j[2] > 0), key=lambda j: -j[1])[:3]
    assert len(good) == 3 and len(bad) == 3, "the small model should be confident on some parts"
    folder = tmp_path_factory.mktemp("line")
    for i, (path, _p, _n) in enumerate(x for pair in zip(good, bad) for x in pair):
        shutil.copyfile(path, folder / f"part-{i + 1:02d}.png")
    return folder


@pytest.fixture(scope="session")
def good_part(judged_parts) -> Path:
    """One part the model calls GOOD with p(anomaly) well under 0.5."""
    return min(judged_parts, key=lambda j: j[1])[0]


class FakeCamera:
    """A live FrameSource under test control: delivers frames, then fails and stays down for `down_opens` reopens."""

    is_live = True

    def __init__(self, *, frames_before_loss: int | None = None, down_opens: int = 10**9, size=(96, 128)) -> None:
        self.description = "camera fake"
        self.frames_before_loss = frames_before_loss
        self.down_opens = down_opens
        self.size = size
        self.opens = 0
        self.failed_opens = 0
        self.reads = 0
        self.is_open = False
        self.lost = False
        self.released = threading.Event()
        self._rng = np.random.default_rng(0)

    def open(self) -> None:
        self.opens += 1
        if self.lost:
            if self.failed_opens < self.down_opens:
                self.failed_opens += 1
                raise SourceError("camera fake could not be opened")
            self.lost = False
            self.frames_before_loss = None
        self.is_open = True
        self.released.clear()

    def read(self) -> Frame:
        if not self.is_open:
            raise SourceError("camera fake is not open")
        if self.frames_before_loss is not None and self.reads >= self.frames_before_loss:
            self.lost = True
            raise SourceError("camera fake stopped delivering frames")
        self.reads += 1
        image = self._rng.integers(90, 160, (*self.size, 3), dtype=np.uint8)
        return Frame(image=image, index=self.reads - 1, timestamp=time.time(), source_id="fake")

    def close(self) -> None:
        self.is_open = False
        self.released.set()

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.fixture
def fake_camera_class():
    return FakeCamera


def live_reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("live-reader") and t.is_alive()]


@pytest.fixture
def make_window(qtbot, private_folders):
    """Factory for station windows on the test's folders; every window is closed and checked at teardown."""
    from visinspect_gui.app import setup_application
    from visinspect_gui.main_window import MainWindow

    setup_application()
    data, weights = private_folders
    windows = []

    def make(**options):
        options.setdefault("data_dir", data)
        options.setdefault("weights_dir", weights)
        window = MainWindow(**options)
        qtbot.addWidget(window)
        window.resize(1400, 900)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
        assert not window.station.active_workers()
    qtbot.waitUntil(lambda: not live_reader_threads(), timeout=5000)


@pytest.fixture
def window(make_window):
    return make_window()


@pytest.fixture
def loaded_window(make_window, model_file, qtbot):
    """A window with the small model loaded."""
    w = make_window()
    with qtbot.waitSignal(w.station.model_loaded, timeout=30_000):
        w.open_model(model_file)
    return w


@pytest.fixture
def run_to_end(qtbot):
    """run(window): press Start and wait until the run finishes by itself; returns the reason ("ended", ...)."""

    def run(window, timeout=60_000) -> str:
        with qtbot.waitSignal(window.station.run_finished, timeout=timeout) as blocker:
            window.source_panel.start_button.click()
        window.live.flush()
        return blocker.args[0]

    return run


@pytest.fixture
def reader_threads():
    return live_reader_threads
