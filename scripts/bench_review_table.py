"""Time the Review table on 10,000 rows: streaming the rows in, sorting by a column, changing the filters (no test).

Run: QT_QPA_PLATFORM=offscreen python scripts/bench_review_table.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from engine.jobs.review import ReviewRow  # noqa: E402
from engine.thresholds import Thresholds  # noqa: E402
from engine.types import ModelRef, Verdict  # noqa: E402
from visinspect_gui.widgets.review_tab import ReviewTab  # noqa: E402


def ms(fn) -> float:
    t0 = time.perf_counter()
    fn()
    QApplication.processEvents()
    return (time.perf_counter() - t0) * 1000


def main(n: int = 10_000) -> None:
    app = QApplication.instance() or QApplication([])
    tab = ReviewTab()
    tab.resize(1200, 700)
    tab.show()
    model = ModelRef("/models/demo.safetensors", "ab" * 32)
    rows = [ReviewRow(f"/line/sub{i % 7}/{i:05d}.png", (i * 7919 % n) / n, (), Thresholds(0.5), model=model) for i in range(n)]
    tab.model.clear(root="/line/")
    add = ms(lambda: [tab.model.add_rows(rows[s : s + 256]) for s in range(0, n, 256)])
    results = {"stream 10k rows in 256-row chunks": add}
    results["sort by p(anomaly) desc"] = ms(lambda: tab.table.sortByColumn(2, Qt.SortOrder.DescendingOrder))
    results["sort by file asc"] = ms(lambda: tab.table.sortByColumn(0, Qt.SortOrder.AscendingOrder))
    results["filter verdict ANOMALY"] = ms(lambda: tab.verdict_combo.setCurrentIndex(tab.verdict_combo.findData(Verdict.ANOMALY)))
    results["filter text 'sub3'"] = ms(lambda: tab.filter_edit.setText("sub3"))
    results["widen: clear text"] = ms(lambda: tab.filter_edit.setText(""))
    results["widen: all verdicts"] = ms(lambda: tab.verdict_combo.setCurrentIndex(0))
    results["threshold moved (rejudge)"] = ms(lambda: tab.rejudge(0.3))
    tab.model.clear(root="/line/")
    tab.table.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    chunks = [ms(lambda s=s: tab.model.add_rows(rows[s : s + 256])) for s in range(0, n, 256)]
    results["stream 10k rows while sorted (total)"] = sum(chunks)
    results["  the slowest 256-row chunk"] = max(chunks)
    for name, value in results.items():
        print(f"{name:40s} {value:8.1f} ms")
    del app


if __name__ == "__main__":
    main()
