"""Line mode of the live job against a real LineHub: one logged and published result per trigger, equal to predict's;
free run publishes every frame; a failing source answers every waiting part with ERROR; the ROI is what is inspected."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.data.preprocess import Preprocess
from engine.errors import SourceError
from engine.inference import Inspector
from engine.inference.live import LiveResult
from engine.jobs.line import PartError
from engine.jobs.live import InspectorSlot, live_job
from engine.jobs.review import ReviewChunk, review_job
from engine.lineio.hub import LineHub, LineVerdict
from engine.model import build_model
from engine.modelfile import ModelMeta, save_model
from engine.results import ResultsLog
from engine.sources import FolderSource, SourceEvent
from engine.types import Frame

WAIT_S = 60.0  # generous: only a hung job reaches it (no timing is asserted)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A random-init VGG16-BN CAM model at 32 px, saved as a model file (fast on the CPU)."""
    import torch

    torch.manual_seed(3)
    model, _ = build_model(backbone="vgg16_bn", backbone_weights="none")
    meta = ModelMeta(product="line", backbone="vgg16_bn", backbone_weights={"kind": "none", "detail": "random init"},
                     preprocess=Preprocess(32).to_dict())  # fmt: skip
    return save_model(tmp_path_factory.mktemp("line-model") / "line.safetensors", model, meta)


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> Path:
    """Four 48x64 part images, each different (stripes, a dark spot, noise)."""
    folder = tmp_path_factory.mktemp("parts")
    rng = np.random.default_rng(5)
    for i in range(4):
        image = np.full((48, 64, 3), 90 + 30 * i, np.uint8)
        image[:, i * 10 : i * 10 + 6] = 20
        cv2.circle(image, (40 - 5 * i, 20 + 4 * i), 6 + i, (250, 250, 250), -1)
        image = np.clip(image.astype(int) + rng.integers(-8, 8, image.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"part{i}.png"), image)
    return folder


@pytest.fixture(scope="module")
def inspector(tiny_model) -> Inspector:
    """One inspector on the tiny model, as the station opens it (shared: loading it is the slow part)."""
    return Inspector.from_file(tiny_model, device="cpu")


@pytest.fixture(scope="module")
def expected(tiny_model, parts) -> dict[str, tuple[str, float]]:
    """predict's verdict and p for every part file, by name."""
    return _predict(tiny_model, sorted(parts.glob("*.png")))


def _predict(model: Path, files: list[Path]) -> dict[str, tuple[str, float]]:
    """What `visinspect predict` answers (its engine path, the review job): verdict and p per file."""
    rows = {}
    for event in review_job([str(f) for f in files], Inspector.from_file(model, device="cpu"), batch_size=1, stop=threading.Event()):
        if isinstance(event, ReviewChunk):
            rows.update({Path(r.path).name: (r.verdict.value, r.p_anomaly) for r in event.rows})
    return rows


class _Job:
    """live_job on a thread of its own, as the station's worker and `serve` run it; every item kept."""

    def __init__(self, spec, inspector: Inspector, log: ResultsLog | None, **kw) -> None:
        self.items: list = []
        self.error: BaseException | None = None
        self.stop = threading.Event()
        slot = InspectorSlot(inspector, "run-line")
        self.thread = threading.Thread(target=self._run, args=(spec, slot, log, kw), daemon=True)
        self.thread.start()

    def _run(self, spec, slot, log, kw) -> None:
        try:
            for item in live_job(spec, slot, log, stop=self.stop, **kw):
                self.items.append(item)
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            self.error = exc

    def end(self) -> None:
        self.stop.set()
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive()
        left = [t.name for t in threading.enumerate() if t.name.startswith(("line-reader", "line-heartbeat")) and t.is_alive()]
        assert not left, f"threads left running: {left}"


def _wait(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _collect(hub: LineHub) -> list:
    results: list = []
    hub.subscribe(lambda state, result: results.append(result) if result is not None else None)
    return results


def test_each_trigger_gives_one_logged_row_with_its_part_id_and_one_result_equal_to_predict(inspector, parts, expected, tmp_path):
    hub = LineHub(station="st1")
    hub.set_recipe("bolt-a")
    published = _collect(hub)
    with ResultsLog(tmp_path / "r.sqlite3") as log:
        job = _Job(str(parts), inspector, log, hub=hub, triggered=True, recipe="bolt-a")
        _wait(lambda: hub.state().ready, "the station to be ready")
        for n, part_id in enumerate(["P-100", "P-101", "P-102"], start=1):
            hub.set_part_id(part_id)
            hub.trigger("test")
            _wait(lambda n=n: hub.state().result_counter == n, f"result {n}")
        _wait(lambda: not hub.state().busy, "Busy to fall once no part is waiting")
        assert hub.state().heartbeat >= 1
        job.end()
        rows = sorted(log.query(limit=None), key=lambda r: r.id)
    assert job.error is None and not hub.state().ready
    assert [(r.part_id, r.recipe, Path(r.item).name) for r in rows] == [
        ("P-100", "bolt-a", "part0.png"), ("P-101", "bolt-a", "part1.png"), ("P-102", "bolt-a", "part2.png")
    ]  # fmt: skip
    assert [r.part_id for r in published] == ["P-100", "P-101", "P-102"] and [r.counter for r in published] == [1, 2, 3]
    for result, row in zip(published, rows):
        verdict, p = expected[Path(row.item).name]
        assert result.verdict is LineVerdict[verdict] and result.p_anomaly == pytest.approx(p, abs=1e-5)
        assert row.verdict.value == verdict and row.p_anomaly == pytest.approx(p, abs=1e-5)
        assert result.model_sha256 == row.model_hash and result.latency_ms is not None and result.recipe == "bolt-a"
    assert sum(isinstance(i, LiveResult) for i in job.items) == 3


def test_free_run_publishes_every_frame(inspector, parts, tmp_path):
    hub = LineHub(station="st1")
    published = _collect(hub)
    with ResultsLog(tmp_path / "r.sqlite3") as log:
        job = _Job(str(parts), inspector, log, hub=hub, recipe="cap")
        job.thread.join(WAIT_S)  # a folder ends after its last image
        rows = sorted(log.query(limit=None), key=lambda r: r.id)
    assert job.error is None and len(rows) == 4 and {r.recipe for r in rows} == {"cap"}
    assert [r.counter for r in published] == [1, 2, 3, 4]
    assert [(r.verdict.name, r.p_anomaly) for r in published] == [(row.verdict.value, row.p_anomaly) for row in rows]
    assert not hub.state().ready


class _FailingFolder(FolderSource):
    """A real folder source whose second read waits for the test, then fails as an unplugged device does."""

    def __init__(self, folder) -> None:
        super().__init__(folder)
        self.reading = threading.Event()
        self.release = threading.Event()
        self.reads = 0

    def read(self):
        self.reads += 1
        if self.reads == 2:
            self.reading.set()
            self.release.wait(WAIT_S)
            raise SourceError("folder went away")
        return super().read()


def test_a_failing_source_answers_the_part_in_hand_and_every_waiting_part_with_error(inspector, parts, tmp_path):
    hub = LineHub(station="st1")
    published = _collect(hub)
    source = _FailingFolder(parts)
    with ResultsLog(tmp_path / "r.sqlite3") as log:
        job = _Job(source, inspector, log, hub=hub, triggered=True, recipe="r")
        _wait(lambda: hub.state().ready, "the station to be ready")
        hub.trigger("test", part_id="A")
        _wait(lambda: hub.state().result_counter == 1, "the first result")
        hub.trigger("test", part_id="B")  # its read hangs, then fails
        _wait(source.reading.is_set, "the second read")
        hub.trigger("test", part_id="C")
        hub.trigger("test", part_id="D")
        source.release.set()
        job.thread.join(WAIT_S)
        rows = sorted(log.query(limit=None), key=lambda r: r.id)
    assert isinstance(job.error, SourceError)
    assert [(r.part_id, r.verdict) for r in published] == [
        ("A", published[0].verdict), ("B", LineVerdict.ERROR), ("C", LineVerdict.ERROR), ("D", LineVerdict.ERROR)
    ]  # fmt: skip
    assert published[0].verdict is not LineVerdict.ERROR and "folder went away" in published[1].message
    assert [(r.part_id, r.verdict.value) for r in rows][1:] == [("B", "ERROR"), ("C", "ERROR"), ("D", "ERROR")]
    assert hub.pending_triggers() == 0 and not hub.state().ready


def test_the_roi_is_what_is_inspected(inspector, parts, tmp_path):
    roi = (10, 8, 40, 24)  # x, y, width, height
    hub = LineHub(station="st1")
    published = _collect(hub)
    job = _Job(str(parts), inspector, None, hub=hub, triggered=True, roi=roi)
    _wait(lambda: hub.state().ready, "the station to be ready")
    hub.trigger("test", part_id="roi-1")
    _wait(lambda: hub.state().result_counter == 1, "the result")
    job.end()
    (result,) = [i for i in job.items if isinstance(i, LiveResult)]
    assert result.frame.image.shape == (24, 40, 3) and result.inspection.heatmap.shape == (24, 40)
    assert all(0 <= b.x0 < b.x1 <= 40 and 0 <= b.y0 < b.y1 <= 24 for b in result.inspection.regions)
    image = cv2.cvtColor(cv2.imread(str(parts / "part0.png")), cv2.COLOR_BGR2RGB)
    crop = inspector.inspect([image[8:32, 10:50]])[0]
    assert published[0].p_anomaly == pytest.approx(crop.p_anomaly, abs=1e-5)


def test_an_roi_outside_the_frame_is_an_error_result_for_that_part(inspector, parts):
    hub = LineHub(station="st1")
    published = _collect(hub)
    job = _Job(str(parts), inspector, None, hub=hub, triggered=True, roi=(0, 0, 500, 10))
    _wait(lambda: hub.state().ready, "the station to be ready")
    hub.trigger("test", part_id="big")
    _wait(lambda: hub.state().result_counter == 1, "the result")
    job.end()
    assert published[0].verdict is LineVerdict.ERROR and "outside the 64x48 frame" in published[0].message
    assert [i.part.part_id for i in job.items if isinstance(i, PartError)] == ["big"]


class _Settings:
    grab_timeout_s = 0.3  # a triggered frame not grabbed within this is an ERROR for that part


class _FreeRunCamera:
    """A live source that reads a new frame every 10 ms, each stamped with when it was read, until it is told to stall."""

    is_live = True
    description = "test camera"
    settings = _Settings()

    def __init__(self, image) -> None:
        self.image, self.index, self.stalled, self.waiting = image, 0, threading.Event(), threading.Event()

    def open(self) -> None:
        pass

    def read(self):
        while self.stalled.is_set():
            self.waiting.set()  # no frame comes while stalled
            time.sleep(0.01)
        time.sleep(0.01)
        self.index += 1
        return Frame(image=self.image, index=self.index, timestamp=time.time(), source_id="cam")

    def close(self) -> None:
        pass


def test_a_free_running_camera_gives_each_part_a_frame_read_after_its_trigger_and_errors_when_it_stalls(inspector, parts):
    image = cv2.cvtColor(cv2.imread(str(parts / "part1.png")), cv2.COLOR_BGR2RGB)
    camera = _FreeRunCamera(image)
    hub = LineHub(station="st1")
    published = _collect(hub)
    job = _Job(camera, inspector, None, hub=hub, triggered=True)
    _wait(lambda: hub.state().ready, "the station to be ready")
    parts_sent = [hub.trigger("test", part_id=f"C{n}") for n in range(3)]
    _wait(lambda: hub.state().result_counter == 3, "three results")
    camera.stalled.set()
    _wait(camera.waiting.is_set, "the camera to stall")
    stalled_part = hub.trigger("test", part_id="stalled")
    _wait(lambda: hub.state().result_counter == 4, "the stalled part's result")
    camera.stalled.clear()  # let the reader's read return, so the job can close the camera
    job.end()
    frames = [i.frame for i in job.items if isinstance(i, LiveResult)]
    assert [r.part_id for r in published] == ["C0", "C1", "C2", "stalled"]
    assert all(f.timestamp >= p.time for f, p in zip(frames, parts_sent)) and len({f.index for f in frames}) == 3
    assert published[3].verdict is LineVerdict.ERROR and "within 0.3 s" in published[3].message
    assert [i.part for i in job.items if isinstance(i, PartError)] == [stalled_part]


class _TriggerCamera:
    """A software-triggered camera: fire() takes a frame, grab() returns it; unplugged, both fail until replugged."""

    is_live = True
    description = "trigger camera"
    trigger_mode = "software"
    settings = _Settings()

    def __init__(self, image) -> None:
        self.image, self.fired, self.index = image, 0, 0
        self.plugged, self.opens = threading.Event(), 0
        self.plugged.set()

    def open(self) -> None:
        if not self.plugged.is_set():
            raise SourceError("trigger camera not found")
        self.opens += 1

    def fire(self) -> None:
        if not self.plugged.is_set():
            raise SourceError("trigger camera lost")
        self.fired += 1

    def grab(self, timeout_s: float):
        if not self.plugged.is_set():
            raise SourceError("trigger camera lost")
        if not self.fired:
            return None
        self.fired -= 1
        self.index += 1
        return Frame(image=self.image, index=self.index, timestamp=time.time(), source_id="trig")

    def close(self) -> None:
        pass


def test_a_trigger_camera_that_is_unplugged_errors_its_part_drops_ready_and_comes_back(inspector, parts):
    camera = _TriggerCamera(cv2.cvtColor(cv2.imread(str(parts / "part2.png")), cv2.COLOR_BGR2RGB))
    hub = LineHub(station="st1")
    published = _collect(hub)
    job = _Job(camera, inspector, None, hub=hub, triggered=True)
    _wait(lambda: hub.state().ready, "the station to be ready")
    hub.trigger("test", part_id="T1")
    _wait(lambda: hub.state().result_counter == 1, "the first result")
    camera.plugged.clear()
    hub.trigger("test", part_id="T2")
    _wait(lambda: hub.state().result_counter == 2, "the lost part's result")
    _wait(lambda: not hub.state().ready, "Ready to fall")
    camera.plugged.set()
    _wait(lambda: hub.state().ready, "Ready again once the camera is back")
    hub.trigger("test", part_id="T3")
    _wait(lambda: hub.state().result_counter == 3, "the result after the camera came back")
    job.end()
    assert [(r.part_id, r.verdict is LineVerdict.ERROR) for r in published] == [("T1", False), ("T2", True), ("T3", False)]
    assert "trigger camera lost" in published[1].message and camera.opens >= 2
    kinds = [i.kind for i in job.items if isinstance(i, SourceEvent)]
    assert kinds == ["lost", "recovered"]
