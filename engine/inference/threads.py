"""How many frames the live loop inspects at once, and torch's intra-op threads per inspecting thread.

On a CPU, one frame at a time on every core loses time at each operator's barrier whenever anything
else (the reader's decode, the results log, the window) takes a core for a moment; two frames in
flight on half the cores each keep both busy and are not stalled by that.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass

_PIN_LOCK = threading.Lock()
INSPECTING_NICENESS = 5  # the inspecting threads yield a core to the window, the reader and the log when they need one


@dataclass(frozen=True)
class Parallelism:
    """Frames inspected at once and torch intra-op threads for each (None: leave torch's setting alone)."""

    in_flight: int
    threads_each: int | None


def live_parallelism(device) -> Parallelism:
    """Two frames in flight on a CPU with two or more threads (half the threads each) or on CUDA; else one."""
    import torch  # here, not at import: the window imports this module before any model is loaded

    kind = torch.device(device).type if device is not None else None
    if kind == "cuda":
        return Parallelism(2, None)  # the second frame's preprocessing and heatmap overlap the first one's model run
    if kind == "cpu":
        threads = torch.get_num_threads()
        if threads >= 2:
            return Parallelism(2, threads // 2)
    return Parallelism(1, None)


def use_intra_op_threads(n: int) -> None:
    """Make torch ops called from this thread use n threads; every other thread keeps its own setting.

    torch keeps one process-wide default that each thread copies once, at its first parallel operator:
    set it, make this thread copy it, and put the default back from a short-lived thread.
    """
    import torch

    if n < 1:
        raise ValueError(f"intra-op threads must be 1 or more, not {n}")
    with _PIN_LOCK:
        default = torch.get_num_threads()  # this thread's first call copies the process default
        if default == n:
            return
        torch.set_num_threads(n)
        torch.get_num_threads()
        restore = threading.Thread(target=torch.set_num_threads, args=(default,), name="restore torch threads")
        restore.start()
        restore.join()


def lower_this_threads_priority(niceness: int = INSPECTING_NICENESS) -> bool:
    """Give this thread a lower CPU priority than the rest of the process (Linux; elsewhere nothing): True when done.

    The window, the frame reader and the results log are short bursts of work; the inspecting threads take
    whatever is left, so a burst never waits behind a whole inference.
    """
    if not sys.platform.startswith("linux"):
        return False
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + niceness)
    except OSError:
        return False
    return True


def start_inspecting_thread(threads_each: int | None) -> None:
    """Initialiser of each live inspecting thread: its torch threads, then its lower priority."""
    if threads_each is not None:
        use_intra_op_threads(threads_each)
    lower_this_threads_priority()
