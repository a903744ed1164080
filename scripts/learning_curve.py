"""How many labelled defects the supervised CAM classifier needs to overtake good-only PaDiM: both scored on the same
held-out images, PaDiM fitted once on the good training images, the CAM classifier on those plus k defect images.

    python scripts/learning_curve.py DATA [--good-dir MT_Free] [--max-good 100 --max-per-type 12] [--ks 1,2,5,10,20]
        [--seeds 0,1,2] [--epochs 20] [--json OUT.json]

The k defect images are drawn from the training split's defects, round-robin across defect types in a seeded order,
so each k's draw contains the smaller k's draws (one seed = one nested series). A seed also seeds training.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np

# run as a script: its sibling and this checkout's engine (not another installed copy) are importable
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from good_only_vs_supervised import scored, subset  # noqa: E402

from engine.data.layouts import DatasetIndex, Sample, Split, load_dataset, split_dataset  # noqa: E402
from engine.modelfile import save_model  # noqa: E402
from engine.training import TrainConfig, TrainResult, fit  # noqa: E402
from engine.training.good_only import train_good_only  # noqa: E402


def defect_order(pool: Sequence[Sample], seed: int) -> list[Sample]:
    """pool's defect images in draw order: defect types in a seeded order, one image of each type per round (shuffled
    within a type), so any first k is spread as evenly as the types allow."""
    rng = np.random.default_rng(seed)
    types = sorted({s.defect_type for s in pool})
    by_type = [[s for s in pool if s.defect_type == types[t]] for t in rng.permutation(len(types))]
    queues = [[group[i] for i in rng.permutation(len(group))] for group in by_type]
    order = []
    for r in range(max((len(q) for q in queues), default=0)):
        order += [q[r] for q in queues if r < len(q)]
    return order


def draw_defects(pool: Sequence[Sample], k: int, seed: int) -> list[Sample]:
    """k defect images of pool (all of them when k exceeds it), stratified across defect types, seeded."""
    if k < 1:
        raise ValueError(f"k must be at least 1; got {k}")
    return defect_order(pool, seed)[:k]


def fit_on(index: DatasetIndex, train: Sequence[Sample], held: Sequence[Sample], config: TrainConfig, name: str) -> TrainResult:
    """The founding recipe trained on exactly train and reporting on held: its own split is replaced by this one."""
    fixed = Split(train=tuple(train), test=tuple(held), seed=config.seed, test_fraction=config.test_fraction)
    with mock.patch("engine.training.recipe.split_dataset", lambda *_a, **_k: fixed):
        return fit(replace(index, samples=tuple(train) + tuple(held)), config, product=name)


def rounded(metrics: dict) -> dict:
    return {k: (None if v is None else round(v, 3)) for k, v in metrics.items()}


def run(name: str, index: DatasetIndex, config: TrainConfig, ks: Sequence[int], seeds: Sequence[int], out: Path, log) -> dict:
    """PaDiM once, then the supervised model per k and seed; every row is written to log (JSON lines) as it comes."""
    split = split_dataset(index, test_fraction=config.test_fraction, seed=config.seed)
    held = split.test

    def rel(s: Sample) -> str:
        return str(s.path.relative_to(index.root))

    good = [s for s in split.train if s.label == 0]
    pool = [s for s in split.train if s.label == 1]

    def emit(row: dict) -> dict:
        row = {"data": name, "n_train_good": len(good), "n_held_out": len(held),
               "n_held_defective": sum(s.label for s in held), **row}  # fmt: skip
        print(json.dumps(row), flush=True)
        log.write(json.dumps(row) + "\n")
        log.flush()
        return row

    t0 = time.perf_counter()
    padim = next(e for e in train_good_only(index, config, product=name) if isinstance(e, TrainResult))
    seconds = time.perf_counter() - t0
    padim_held = set(padim.meta.dataset["held_out"])  # its split's held-out images and every defect image
    if not {rel(s) for s in held} <= padim_held or {rel(s) for s in good} & padim_held:
        raise RuntimeError("PaDiM was fitted on another split than the supervised model; the comparison would not be fair")
    path = save_model(out / f"{name}-padim.safetensors", padim.model, padim.meta, calibration=padim.calibration)
    rows = [emit({"mode": "good-only", "k": 0, "seed": config.seed, "fit_s": round(seconds, 1), **rounded(scored(path, held))})]
    for seed in seeds:  # seed-major: a run cut short still has whole curves
        for k in sorted({min(k, len(pool)) for k in ks}):
            drawn = draw_defects(pool, k, seed)
            t0 = time.perf_counter()
            result = fit_on(index, good + drawn, held, replace(config, seed=seed), name)
            seconds = time.perf_counter() - t0
            path = save_model(out / f"{name}-k{k}-s{seed}.safetensors", result.model, result.meta, calibration=result.calibration)
            rows.append(emit({"mode": "supervised", "k": k, "seed": seed, "fit_s": round(seconds, 1),
                              "epochs_run": len(result.history), "types": sorted({s.defect_type for s in drawn}),
                              **rounded(scored(path, held))}))  # fmt: skip
    return {"data": name, "pool_defects": len(pool), "rows": rows, "summary": summarize(rows)}


def _spread(values: list[float]) -> dict:
    return {"mean": round(statistics.fmean(values), 3), "min": round(min(values), 3), "max": round(max(values), 3), "n": len(values)}


def summarize(rows: Sequence[dict]) -> dict:
    """Per k: mean, min and max over seeds of image/pixel AUROC and fit seconds; and the crossover k (the smallest k whose
    mean image AUROC is at or above PaDiM's and stays so for every larger k measured), or None."""
    padim = next(r for r in rows if r["mode"] == "good-only")
    per_k = {}
    for k in sorted({r["k"] for r in rows if r["mode"] == "supervised"}):
        of_k = [r for r in rows if r["mode"] == "supervised" and r["k"] == k]
        per_k[k] = {m: _spread([r[m] for r in of_k if r[m] is not None]) for m in ("image_auroc", "pixel_auroc", "fit_s")
                    if any(r[m] is not None for r in of_k)}  # fmt: skip
    crossover = {}
    for metric in ("image_auroc", "pixel_auroc"):
        if padim.get(metric) is None:
            continue
        ahead = [k for k in per_k if metric in per_k[k] and per_k[k][metric]["mean"] >= padim[metric]]
        later = [k for k in per_k if k not in ahead]
        crossover[metric] = min((k for k in ahead if all(j < k for j in later)), default=None)
    return {"padim": {m: padim[m] for m in ("image_auroc", "pixel_auroc", "fit_s")}, "per_k": per_k, "crossover_k": crossover}


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def _cell(s: dict | None) -> str:
    if s is None:
        return "–"
    return f"{s['mean']:.3f}" if s["n"] == 1 or s["min"] == s["max"] else f"{s['mean']:.3f} ({s['min']:.3f}–{s['max']:.3f})"


def table(result: dict) -> str:
    """Markdown: PaDiM's row, then one row per k (mean over seeds, min–max in brackets)."""
    s = result["summary"]
    p = s["padim"]
    lines = ["| candidate | labelled defects | seeds | image AUROC | pixel AUROC | fit s |", "|---|---|---|---|---|---|",
             f"| PaDiM good-only | 0 | – | {_num(p['image_auroc'])} | {_num(p['pixel_auroc'])} | {p['fit_s']:.0f} |"]  # fmt: skip
    for k, m in s["per_k"].items():
        fit_s = m["fit_s"]["mean"]
        lines.append(f"| supervised CAM | {k} | {m['fit_s']['n']} | {_cell(m.get('image_auroc'))} | {_cell(m.get('pixel_auroc'))} | {fit_s:.0f} |")
    c = s["crossover_k"]
    lines.append("")
    lines.append(f"supervised mean at or above PaDiM from k = image AUROC: {c.get('image_auroc')}, pixel AUROC: "
                 f"{c.get('pixel_auroc')} (None: not within the k measured)")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="the dataset folder, or with --rows a DATA-rows.jsonl an earlier run wrote (so far)")
    ap.add_argument("--rows", action="store_true", help="only print the table of the rows written so far")
    ap.add_argument("--name")
    ap.add_argument("--good-dir", default="good")
    ap.add_argument("--max-good", type=int, default=0)
    ap.add_argument("--max-per-type", type=int, default=0)
    ap.add_argument("--ks", default="1,2,5,10,20", help="comma-separated numbers of labelled defect images")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated draw (and training) seeds")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--backbone", default="vgg16_bn")
    ap.add_argument("--out", default="/tmp/learning_curve")
    ap.add_argument("--json", help="write the rows, per-k summary and crossover here")
    args = ap.parse_args()
    if args.rows:
        rows = [json.loads(line) for line in Path(args.data).read_text(encoding="utf-8").splitlines() if line.strip()]
        print(table({"summary": summarize(rows)}))
        return
    name = args.name or Path(args.data).name
    index = subset(load_dataset(args.data, good_dir=args.good_dir), args.max_good, args.max_per_type, seed=0)
    config = TrainConfig(
        backbone=args.backbone, backbone_weights="none", image_size=args.image_size, epochs=args.epochs, lr=1e-3, device="cpu"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"{name}-rows.jsonl", "w", encoding="utf-8") as log:
        result = run(name, index, config, [int(k) for k in args.ks.split(",")], [int(s) for s in args.seeds.split(",")], out, log)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(table(result))


if __name__ == "__main__":
    main()
