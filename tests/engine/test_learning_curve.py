"""scripts/learning_curve.py draws its k labelled defects spread across defect types, seeded and nested, and names
the crossover k only where the supervised model stays at or above PaDiM from there on."""
from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import pytest

from engine.data.layouts import Sample

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("learning_curve", ROOT / "scripts" / "learning_curve.py")
learning_curve = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(learning_curve)

POOL = [Sample(Path(f"{kind}/{i}.png"), 1, kind) for kind, n in (("crack", 9), ("spot", 3), ("scratch", 6)) for i in range(n)]


def test_k_defects_are_spread_across_types_as_evenly_as_the_pool_allows():
    assert Counter(s.defect_type for s in learning_curve.draw_defects(POOL, 3, seed=0)) == {"crack": 1, "spot": 1, "scratch": 1}
    assert Counter(s.defect_type for s in learning_curve.draw_defects(POOL, 12, seed=1)) == {"crack": 5, "spot": 3, "scratch": 4}
    assert len(learning_curve.draw_defects(POOL, 1, seed=2)) == 1


def test_draws_are_seeded_nested_and_capped_at_the_pool():
    five, ten = learning_curve.draw_defects(POOL, 5, seed=3), learning_curve.draw_defects(POOL, 10, seed=3)
    assert ten[:5] == five and five == learning_curve.draw_defects(POOL, 5, seed=3)
    assert {tuple(learning_curve.draw_defects(POOL, 5, seed=s)) for s in range(6)} != {tuple(five)}  # seeds differ
    everything = learning_curve.draw_defects(POOL, 100, seed=0)
    assert sorted(everything, key=str) == sorted(POOL, key=str)
    with pytest.raises(ValueError, match="at least 1"):
        learning_curve.draw_defects(POOL, 0, seed=0)


def _rows(padim: float, supervised: dict[int, list[float]]) -> list[dict]:
    rows = [{"mode": "good-only", "k": 0, "image_auroc": padim, "pixel_auroc": None, "fit_s": 1.0}]
    for k, values in supervised.items():
        rows += [{"mode": "supervised", "k": k, "seed": i, "image_auroc": v, "pixel_auroc": None, "fit_s": 2.0} for i, v in enumerate(values)]
    return rows


def test_the_crossover_is_where_the_mean_overtakes_padim_for_good():
    summary = learning_curve.summarize(_rows(0.80, {1: [0.6, 0.7], 2: [0.9, 0.8], 5: [0.7, 0.8], 10: [0.9, 0.95]}))
    assert summary["crossover_k"]["image_auroc"] == 10  # 2's mean 0.85 is ahead, but 5's 0.75 falls behind again
    assert summary["per_k"][1]["image_auroc"] == {"mean": 0.65, "min": 0.6, "max": 0.7, "n": 2}
    assert "pixel_auroc" not in summary["crossover_k"]  # PaDiM had no pixel AUROC: nothing to compare with
    assert learning_curve.summarize(_rows(0.99, {1: [0.5], 20: [0.98]}))["crossover_k"]["image_auroc"] is None
    assert "| supervised CAM | 1 | 2 | 0.650 (0.600–0.700) |" in learning_curve.table({"summary": summary})
