"""The one CSV writer every export uses (predict, Review, History): UTF-8, and no cell a spreadsheet runs as a formula."""
from __future__ import annotations

import contextlib
import csv
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

# A cell starting with one of these is run as a formula by Excel, LibreOffice and Google Sheets
# (OWASP "CSV injection"); such text cells are written with a leading apostrophe, which spreadsheets
# show as text and do not display.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def storable_text(value: object) -> str:
    """str(value) as text SQLite and UTF-8 files accept: a file name that is not valid UTF-8 (which
    Python holds with lone surrogates) keeps its odd bytes visibly escaped, e.g. 'caf\\xe9.png'."""
    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join(_escape_surrogate(ch) for ch in text)
    return text


def _escape_surrogate(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of a file name (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF:
        return f"\\u{code:04x}"
    return ch


def safe_cell(value: object) -> object:
    """A text cell neutralised against formula injection (numbers and None pass unchanged)."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = storable_text(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class CsvWriter:
    """csv.writer whose every text cell goes through safe_cell."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out)
        self.out = out

    def writerow(self, cells: Iterable[object]) -> None:
        self._writer.writerow([safe_cell(c) for c in cells])


@contextlib.contextmanager
def open_csv(path: str | os.PathLike | None, header: Iterable[str]) -> Iterator[CsvWriter]:
    """A CsvWriter on stdout (path None) or on a file written atomically (temp file, renamed when complete)."""
    if path is None:
        writer = CsvWriter(sys.stdout)
        writer.writerow(header)
        yield writer
        sys.stdout.flush()
        return
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as out:
            writer = CsvWriter(out)
            writer.writerow(header)
            yield writer
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
