"""Files decoded one batch ahead: while the caller runs the model on one chunk, a thread pool loads the next."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def decode_ahead(
    paths: Sequence[str], load: Callable[[str], T], *, batch_size: int, workers: int, stop: threading.Event | None
) -> Iterator[tuple[list[str], list[T], float]]:
    """(chunk of paths, load(path) for each, ms spent waiting for them), the next chunk loading meanwhile.

    Ends before the next chunk once stop is set (its pending loads cancelled); load must not raise.
    """
    chunks = [list(paths[i : i + batch_size]) for i in range(0, len(paths), batch_size)]
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="decode") as pool:
        pending = [pool.submit(load, p) for p in chunks[0]] if chunks else []
        for ci, chunk in enumerate(chunks):
            if stop is not None and stop.is_set():
                for f in pending:
                    f.cancel()
                return
            t0 = time.perf_counter()
            loaded = [f.result() for f in pending]
            wait_ms = (time.perf_counter() - t0) * 1000
            pending = [pool.submit(load, p) for p in chunks[ci + 1]] if ci + 1 < len(chunks) else []
            yield chunk, loaded, wait_ms
