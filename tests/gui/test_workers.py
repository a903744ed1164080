"""The newest-worker holder behind every panel's probes: "still busy" ends exactly when the newest answer is in."""
from __future__ import annotations

import threading

from visinspect_gui.workers import Latest


def test_a_superseded_probe_finishing_last_does_not_leave_the_panel_busy(qtbot) -> None:
    """Typing fast starts a probe per key; an older one ending after the newest must not count as the newest's end."""
    release = threading.Event()
    answers: list[str] = []

    def slow(stop):
        release.wait(5)
        yield "old path's answer"

    def fast(stop):
        yield "new path's answer"

    probe = Latest()
    old = probe.start(slow, on_event=answers.append)
    new = probe.start(fast, on_event=answers.append)
    qtbot.waitUntil(lambda: not new.is_running(), timeout=5000)
    qtbot.waitUntil(lambda: not probe.busy(), timeout=5000)
    release.set()  # the superseded probe ends only now, after the newest
    assert old.wait(5000)
    with qtbot.waitSignal(old.finished, timeout=5000):
        pass
    assert not probe.busy() and answers == ["new path's answer"]
