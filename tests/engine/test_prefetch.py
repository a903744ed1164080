"""Files decoded one batch ahead: chunks come in order with every load, and a stop ends the run before the next chunk."""

from __future__ import annotations

import threading

from engine.inference.prefetch import decode_ahead


def test_chunks_come_in_order_with_each_files_load():
    paths = [f"f{i}" for i in range(7)]
    got = list(decode_ahead(paths, str.upper, batch_size=3, workers=2, stop=None))
    assert [chunk for chunk, _, _ in got] == [["f0", "f1", "f2"], ["f3", "f4", "f5"], ["f6"]]
    assert [loaded for _, loaded, _ in got] == [["F0", "F1", "F2"], ["F3", "F4", "F5"], ["F6"]]


def test_a_stop_ends_the_run_before_the_next_chunk():
    stop = threading.Event()
    seen = []
    for chunk, _, _ in decode_ahead([f"f{i}" for i in range(9)], str.upper, batch_size=3, workers=1, stop=stop):
        seen.append(chunk)
        stop.set()
    assert seen == [["f0", "f1", "f2"]]
