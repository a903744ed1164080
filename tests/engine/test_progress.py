"""CLI progress in a log file or pipe: plain periodic lines, never a bar's carriage-return updates."""
from __future__ import annotations

import io

import engine.progress as progress
from engine.progress import PlainProgress, progress_bar


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_log_file_gets_a_few_plain_lines_not_carriage_returns(monkeypatch) -> None:
    clock = Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    out = io.StringIO()  # not a terminal
    bar = progress_bar(500, "inspecting", out=out)
    assert isinstance(bar, PlainProgress)
    for _ in range(500):
        clock.now += 0.05  # 25 s in all: a line every 5 s
        bar.update()
    bar.close()
    bar.close()  # closing twice writes nothing more
    text = out.getvalue()
    lines = text.splitlines()
    assert "\r" not in text
    assert 5 <= len(lines) <= 6 and lines[-1] == "inspecting: 500/500 img"
    assert all(line.startswith("inspecting: ") for line in lines)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_live_bar() -> None:
    bar = progress_bar(3, "reading images", out=Tty())
    assert not isinstance(bar, PlainProgress)
    bar.update(3)
    bar.close()
