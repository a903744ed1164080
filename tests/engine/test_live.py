"""Live inspection loop: the latest-frame mailbox, drops, pacing, pause/step, thresholds per frame, clean stop."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from engine.errors import SourceError
from engine.inference.live import LiveResult, live_inspect
from engine.inference.mailbox import FrameGate, LatestFrameMailbox
from engine.sources import FrameReadError, SourceEvent
from engine.thresholds import Thresholds
from engine.types import Frame, Inspection, Verdict


def _frame(i: int) -> Frame:
    return Frame(image=np.full((8, 8, 3), i % 256, np.uint8), index=i, timestamp=time.time(), source_id="test")


class FakeInspector:
    """Judges p(anomaly) = the frame's first pixel / 255 against its threshold, optionally slowly."""

    def __init__(self, delay_s: float = 0.0, threshold: float = 0.5) -> None:
        self.delay_s = delay_s
        self.thresholds = Thresholds(threshold)
        self.seen: list[int] = []

    def inspect(self, images):
        if self.delay_s:
            time.sleep(self.delay_s)
        out = []
        for image in images:
            self.seen.append(int(image[0, 0, 0]))
            p = float(image[0, 0, 0]) / 255.0
            out.append(Inspection(p, self.thresholds, np.zeros(image.shape[:2], np.float32), ()))
        return out


class ListSource:
    """A FrameSource over a fixed list of frames and failures (exceptions are raised in turn)."""

    def __init__(self, items, *, is_live: bool = False, delay_s: float = 0.0) -> None:
        self.items = list(items)
        self.is_live = is_live
        self.delay_s = delay_s
        self.description = "list source"
        self.closed = threading.Event()
        self.pos = 0

    def open(self) -> None:
        self.pos = 0
        self.closed.clear()

    def read(self):
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.pos >= len(self.items):
            if self.is_live:
                raise SourceError("list source ran dry")
            return None
        item = self.items[self.pos]
        self.pos += 1
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        self.closed.set()


class EndlessCamera(ListSource):
    """A live source that never runs out of frames."""

    def __init__(self) -> None:
        super().__init__([], is_live=True)

    def read(self):
        self.pos += 1
        return _frame(self.pos)


def _readers():
    return [t for t in threading.enumerate() if t.name.startswith("live-reader") and t.is_alive()]


# -- the mailbox ---------------------------------------------------------------------------------


def test_mailbox_keeps_only_the_newest_frame_and_counts_what_it_overwrites():
    box = LatestFrameMailbox()
    assert box.put_frame(_frame(1)) is False
    assert box.put_frame(_frame(2)) is True
    assert box.put_frame(_frame(3)) is True
    assert box.dropped == 2
    assert box.get(0).index == 3
    assert box.get(0) is None
    assert box.put_frame(_frame(4)) is False  # the slot was emptied: nothing dropped
    assert box.dropped == 2


def test_mailbox_never_drops_events_and_keeps_their_order():
    box = LatestFrameMailbox()
    box.put_frame(_frame(1))
    lost = SourceEvent("lost", "gone")
    box.put(lost)
    box.put_frame(_frame(2))
    ended = SourceEvent("ended", "end")
    box.put(ended)
    got = [box.get(0) for _ in range(3)]
    assert got[0] is lost and isinstance(got[1], Frame) and got[1].index == 2 and got[2] is ended
    assert box.dropped == 1


def test_mailbox_without_dropping_waits_for_the_consumer():
    box = LatestFrameMailbox()
    stop = threading.Event()
    box.put_frame(_frame(1), drop=False)
    done = threading.Event()

    def produce():
        box.put_frame(_frame(2), drop=False, stop=stop)
        done.set()

    t = threading.Thread(target=produce)
    t.start()
    assert not done.wait(0.2)  # blocked while frame 1 waits
    assert box.get(0).index == 1
    assert done.wait(2)
    assert box.get(0).index == 2 and box.dropped == 0
    t.join()


def test_mailbox_close_releases_a_waiting_producer():
    box = LatestFrameMailbox()
    box.put_frame(_frame(1))
    t = threading.Thread(target=lambda: box.put_frame(_frame(2), drop=False))
    t.start()
    box.close()
    t.join(2)
    assert not t.is_alive()
    assert box.put_frame(_frame(3)) is False and box.get(0) is None


def test_gate_lets_exactly_the_stepped_frames_through():
    gate = FrameGate(paused=True)
    stop = threading.Event()
    passed = []

    def reader():
        while gate.wait(stop):
            passed.append(1)

    t = threading.Thread(target=reader)
    t.start()
    gate.step(2)
    deadline = time.monotonic() + 2
    while len(passed) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert len(passed) == 2
    stop.set()
    t.join(2)
    assert not t.is_alive()


# -- the live loop -------------------------------------------------------------------------------


def test_files_are_all_inspected_in_order_without_drops():
    source = ListSource([_frame(i) for i in range(20)])
    inspector = FakeInspector(delay_s=0.005)
    out = list(live_inspect(source, inspector, stop=threading.Event()))
    results = [r for r in out if isinstance(r, LiveResult)]
    assert [r.frame.index for r in results] == list(range(20))
    assert results[-1].dropped_total == 0 and results[-1].inspected_total == 20
    assert isinstance(out[-1], SourceEvent) and out[-1].kind == "ended"
    assert source.closed.is_set() and not _readers()


def test_a_source_faster_than_the_model_drops_frames_and_every_frame_is_accounted_for():
    n = 200
    source = ListSource([_frame(i) for i in range(n)])
    inspector = FakeInspector(delay_s=0.01)
    drops = []
    out = list(live_inspect(source, inspector, stop=threading.Event(), drop_frames=True, on_dropped=drops.append))
    results = [r for r in out if isinstance(r, LiveResult)]
    dropped = results[-1].dropped_total
    assert dropped > 0 and drops and drops[-1] == dropped
    assert len(results) + dropped == n  # each frame was either inspected or overwritten
    assert results[-1].frame.index == n - 1  # the newest frame always wins
    indices = [r.frame.index for r in results]
    assert indices == sorted(indices)


def test_live_sources_drop_by_default():
    source = ListSource([_frame(i) for i in range(100)], is_live=True)
    stop = threading.Event()
    results = []
    for item in live_inspect(source, FakeInspector(delay_s=0.01), stop=stop, backoff=(0.01,)):
        if isinstance(item, LiveResult):
            results.append(item)
        elif item.kind == "lost":  # the list ran dry: a live source would now be retried
            stop.set()
    assert results and results[-1].dropped_total > 0


def test_threshold_changes_apply_from_the_next_frame():
    source = ListSource([_frame(200) for _ in range(10)])  # p = 0.78
    inspector = FakeInspector(threshold=0.5)
    verdicts = []
    for item in live_inspect(source, inspector, stop=threading.Event()):
        if isinstance(item, LiveResult):
            verdicts.append(item.inspection.verdict)
            if len(verdicts) == 3:
                inspector.thresholds = Thresholds(0.9)
    assert verdicts[:3] == [Verdict.ANOMALY] * 3
    assert verdicts[-1] == Verdict.GOOD  # later frames were judged at the new threshold


def test_file_errors_pass_through_and_the_run_goes_on():
    bad = FrameReadError("bad.png: not a readable image", path="bad.png", index=1)
    source = ListSource([_frame(0), bad, _frame(2)])
    out = list(live_inspect(source, FakeInspector(), stop=threading.Event()))
    kinds = [("result", o.frame.index) if isinstance(o, LiveResult) else (o.kind, o.path) for o in out]
    assert kinds == [("result", 0), ("file_error", "bad.png"), ("result", 2), ("ended", None)]


def test_a_source_that_fails_for_good_raises_on_the_callers_thread():
    source = ListSource([_frame(0), SourceError("video broke")])
    gen = live_inspect(source, FakeInspector(), stop=threading.Event())
    with pytest.raises(SourceError, match="video broke"):
        list(gen)
    assert source.closed.is_set() and not _readers()


def test_stop_ends_the_loop_joins_the_reader_and_closes_the_source():
    source = EndlessCamera()
    stop = threading.Event()
    gen = live_inspect(source, FakeInspector(delay_s=0.002), stop=stop)
    for i, _item in enumerate(gen):
        if i == 5:
            stop.set()
    assert source.closed.wait(2) and not _readers()


def test_closing_the_generator_early_also_cleans_up():
    source = EndlessCamera()
    gen = live_inspect(source, FakeInspector(), stop=threading.Event())
    next(gen)
    gen.close()
    assert source.closed.is_set() and not _readers()


def test_max_fps_paces_the_reader():
    source = ListSource([_frame(i) for i in range(6)])
    t0 = time.monotonic()
    out = [o for o in live_inspect(source, FakeInspector(), stop=threading.Event(), max_fps=25) if isinstance(o, LiveResult)]
    assert len(out) == 6 and time.monotonic() - t0 >= 5 / 25 - 0.02
    with pytest.raises(ValueError):
        next(live_inspect(source, FakeInspector(), stop=threading.Event(), max_fps=0))


def test_a_paused_run_inspects_only_stepped_frames():
    source = ListSource([_frame(i) for i in range(10)])
    gate = FrameGate(paused=True, steps=1)
    stop = threading.Event()
    seen = []
    for item in live_inspect(source, FakeInspector(), stop=stop, gate=gate):
        seen.append(item.frame.index)
        if len(seen) == 1:
            gate.step()
        elif len(seen) == 2:
            gate.resume()
        if len(seen) == 10:
            break
    assert seen == list(range(10))


class JitteryInspector(FakeInspector):
    """Alternately quick and slow, as a real model is beside other work: the true rate is 1 / the mean time."""

    def __init__(self, delays) -> None:
        super().__init__()
        self.delays = list(delays)
        self.n = 0

    def inspect(self, images):
        self.delay_s = self.delays[self.n % len(self.delays)]
        self.n += 1
        return super().inspect(images)


def test_the_rate_shown_is_inspections_over_time_not_an_average_of_instantaneous_rates():
    source = ListSource([_frame(i) for i in range(16)])
    t0 = time.perf_counter()
    results = [o for o in live_inspect(source, JitteryInspector([0.01, 0.19]), stop=threading.Event()) if isinstance(o, LiveResult)]
    elapsed = time.perf_counter() - t0
    true_rate = (len(results) - 1) / (elapsed - 0.01)  # about 10 per second: 16 frames, 0.1 s each on average
    # Averaging 1/gap (about 100 and 5 per second here) would show about 40 per second.
    assert 0.8 * true_rate <= results[-1].fps <= 1.25 * true_rate, (results[-1].fps, true_rate)


def test_rate_meter_counts_over_its_window():
    from engine.inference.live import RateMeter

    meter = RateMeter(window_s=2.0)
    times = [0.0, 0.01, 0.2, 0.21, 0.4, 0.41, 0.6, 0.61, 0.8, 0.81, 1.0]  # pairs: 10 per second overall
    rates = [meter.add(t) for t in times]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(10.0)
    for t in (3.0, 3.5, 4.0):  # slower later: the old events leave the window
        rate = meter.add(t)
    assert rate == pytest.approx(2.0)
    with pytest.raises(ValueError, match="positive"):
        RateMeter(window_s=0)


def test_fps_and_latency_are_reported():
    source = ListSource([_frame(i) for i in range(5)])
    results = [o for o in live_inspect(source, FakeInspector(delay_s=0.01), stop=threading.Event()) if isinstance(o, LiveResult)]
    assert results[0].fps == 0.0 and results[-1].fps > 0
    assert all(r.latency_ms >= 9 for r in results)


def test_the_live_module_and_demo_never_import_qt():
    code = (
        "import sys, engine.inference.live, engine.demo; "
        "bad = [m for m in sys.modules if m.startswith(('PySide6', 'PyQt', 'pyqtgraph'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_two_frames_in_flight_come_out_in_frame_order_every_file_inspected():
    """A slow frame followed by a quick one: the quick one finishes first but is reported second."""
    frames = [_frame(i) for i in range(12)]
    source = ListSource(frames + [FrameReadError("bad.png: not an image", path="bad.png", index=12)] + [_frame(13)])
    out = list(live_inspect(source, JitteryInspector([0.06, 0.0, 0.03]), stop=threading.Event(), in_flight=2))
    results = [o for o in out if isinstance(o, LiveResult)]
    assert [r.frame.index for r in results] == [*range(12), 13]
    assert [r.inspected_total for r in results] == list(range(1, 14))
    assert [r.inspection.p_anomaly for r in results] == [pytest.approx(i / 255) for i in [*range(12), 13]]
    kinds = [o.kind if isinstance(o, SourceEvent) else o.frame.index for o in out]
    assert kinds.index("file_error") == 12  # the bad file is reported after every frame read before it
    assert kinds[-1] == "ended"


class OverlapInspector(FakeInspector):
    """Notes how many calls run at the same moment."""

    def __init__(self) -> None:
        super().__init__(delay_s=0.03)
        self.lock = threading.Lock()
        self.running = self.most = 0

    def inspect(self, images):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return super().inspect(images)
        finally:
            with self.lock:
                self.running -= 1


def test_two_in_flight_overlap_and_one_in_flight_does_not():
    for in_flight in (1, 2):
        inspector = OverlapInspector()
        out = list(live_inspect(ListSource([_frame(i) for i in range(8)]), inspector, stop=threading.Event(), in_flight=in_flight))
        assert len([o for o in out if isinstance(o, LiveResult)]) == 8
        assert inspector.most == in_flight


def test_stop_with_frames_in_flight_returns_and_releases_the_source():
    source = EndlessCamera()
    stop = threading.Event()
    gen = live_inspect(source, FakeInspector(delay_s=0.05), stop=stop, in_flight=2)
    next(o for o in gen if isinstance(o, LiveResult))
    stop.set()
    assert list(gen) == []  # nothing more once stopped, the frame still in the model included
    assert source.closed.wait(2.0)
    with pytest.raises(ValueError, match="in_flight"):
        next(live_inspect(ListSource([]), FakeInspector(), stop=threading.Event(), in_flight=0))


def test_a_free_inspecting_thread_takes_the_newest_frame_while_the_caller_still_handles_a_result():
    """The caller logs and shows each result before it asks for the next; the model is not idle meanwhile."""
    inspector = FakeInspector(delay_s=0.02)
    stop = threading.Event()
    gen = live_inspect(EndlessCamera(), inspector, stop=stop, in_flight=2)
    first = next(o for o in gen if isinstance(o, LiveResult))
    held_at = len(inspector.seen)
    deadline = time.monotonic() + 5.0
    while len(inspector.seen) < held_at + 4 and time.monotonic() < deadline:  # the caller still holds `first`
        time.sleep(0.01)
    assert len(inspector.seen) >= held_at + 4
    time.sleep(0.3)
    assert len(inspector.seen) <= held_at + 6  # then it waits: finished results waiting for the caller are bounded
    results = [next(o for o in gen if isinstance(o, LiveResult)) for _ in range(6)]
    stop.set()
    gen.close()
    indices = [first.frame.index] + [r.frame.index for r in results]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)  # still in frame order, each once


class SlowCamera(EndlessCamera):
    """A live source slower than the model: a frame every 30 ms."""

    def read(self):
        time.sleep(0.03)
        return super().read()


def test_a_frame_from_a_camera_slower_than_the_model_starts_at_once_while_the_caller_handles_a_result():
    inspector = FakeInspector(delay_s=0.005)
    stop = threading.Event()
    gen = live_inspect(SlowCamera(), inspector, stop=stop, in_flight=2)
    next(o for o in gen if isinstance(o, LiveResult))
    held_at = len(inspector.seen)  # both threads are idle soon after: the next frames come while the caller still holds
    deadline = time.monotonic() + 5.0
    while len(inspector.seen) < held_at + 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    gen.close()
    assert len(inspector.seen) >= held_at + 3


def test_an_inspecting_thread_can_use_fewer_torch_threads_without_changing_anyone_elses():
    torch = pytest.importorskip("torch")
    from engine.inference.threads import live_parallelism, use_intra_op_threads

    default = torch.get_num_threads()
    if default < 2:
        pytest.skip("one torch thread on this machine")
    seen = {}

    def pinned():
        use_intra_op_threads(1)
        seen["pinned"] = torch.get_num_threads()

    def later():
        seen["later"] = torch.get_num_threads()

    for target in (pinned, later):
        t = threading.Thread(target=target)
        t.start()
        t.join()
    assert seen == {"pinned": 1, "later": default}
    assert torch.get_num_threads() == default
    assert live_parallelism("cpu").in_flight == 2 and live_parallelism("cpu").threads_each == default // 2
    assert live_parallelism(None).in_flight == 1  # an object that names no device is inspected one frame at a time
