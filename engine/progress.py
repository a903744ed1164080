"""Progress for the command line: a tqdm bar on a terminal, plain periodic lines in a log file or pipe."""
from __future__ import annotations

import sys
import time
from typing import TextIO

PLAIN_EVERY_S = 5.0  # a plain progress line at most this often (and at the end)


class PlainProgress:
    """'desc: n/total' lines now and then, instead of a bar's hundreds of carriage-return updates."""

    def __init__(self, total: int, desc: str, unit: str, out: TextIO) -> None:
        self.total, self.desc, self.unit, self.out = total, desc, unit, out
        self.n = 0
        self._last = time.monotonic()
        self._closed = False

    def update(self, k: int = 1) -> None:
        self.n += k
        now = time.monotonic()
        if now - self._last >= PLAIN_EVERY_S:
            self._last = now
            self._line()

    def _line(self) -> None:
        print(f"{self.desc}: {self.n}/{self.total} {self.unit}", file=self.out, flush=True)

    def close(self) -> None:
        if not self._closed and self.total:
            self._line()
        self._closed = True


def progress_bar(total: int, desc: str, *, unit: str = "img", out: TextIO | None = None):
    """A progress reporter with update(k), close() and n: tqdm on a terminal, PlainProgress otherwise."""
    out = out or sys.stderr
    if out.isatty():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, file=out, dynamic_ncols=True, leave=False)
    return PlainProgress(total, desc, unit, out)
