"""What the Review tab says in words: the rows shown against the totals, what a run saved, which model judged what."""

from __future__ import annotations

from engine.jobs.review import ReviewDone
from engine.types import Verdict


def human_bytes(n: int) -> str:
    """A size as people read it (e.g. 12.3 MB)."""
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} bytes"


def totals_text(counts: dict[Verdict, int]) -> str:
    """Files per verdict."""
    total = sum(counts.values())
    others = "".join(f"  ·  {counts[v]:,} {w}" for v, w in ((Verdict.REVIEW, "need review"), (Verdict.NOT_PRODUCT, "not product"))
                     if counts.get(v))  # fmt: skip
    return (f"{total:,} files  ·  {counts[Verdict.GOOD]:,} good  ·  {counts[Verdict.ANOMALY]:,} anomaly  ·  "
            f"{counts[Verdict.ERROR]:,} error{others}")  # fmt: skip


def summary_text(counts: dict[Verdict, int], shown: int, filters: str, saved: str = "") -> str:
    """The totals, and when a filter hides rows, how many are shown and by which filter; then what the run saved."""
    total = sum(counts.values())
    text = totals_text(counts)
    if filters:
        text = f"Showing {shown:,} of {total:,} (filter: {filters})\nAll: {text}"
    return f"{text}\n{saved}" if saved else text


def saved_text(done: ReviewDone | None, frames_wanted: bool, logged: bool) -> str:
    """What the finished run wrote besides the table: results in the log, anomaly frames and their size."""
    if not logged:
        return "Results not logged (no results log); no anomaly frames saved"
    if done is None:
        return ""
    if not frames_wanted:
        return "Results logged; anomaly frames not saved"
    frames = "frame" if done.frames_saved == 1 else "frames"
    return f"Results logged; {done.frames_saved:,} anomaly {frames} saved ({human_bytes(done.frame_bytes)})"


def selection_text(shown: int, total: int, filters: str) -> str:
    """Which rows an export holds, written into every row of the CSV (e.g. "3 of 7 rows: verdict ANOMALY")."""
    if not filters:
        return f"all {total:,} rows"
    return f"{shown:,} of {total:,} rows shown: {filters}"


def other_models_text(left: int, total: int, names: list[str], current: str) -> str:
    """Why some rows were not re-judged: another model gave them."""
    which = ", ".join(names[:2]) + ("…" if len(names) > 2 else "")
    rows = "row" if left == 1 else "rows"
    every = "All " if left == total else ""
    return (f"{every}{left:,} {rows} judged by {which}, not by the loaded model {current}: left as they were. "
            "Re-inspect to judge them with the loaded model.")  # fmt: skip
