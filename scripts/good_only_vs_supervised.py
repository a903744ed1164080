"""Good-only PaDiM vs the supervised CAM classifier (and, with --cutpaste, the CAM classifier trained on good images plus
CutPaste synthetic defects) on the same held-out images: image/pixel AUROC and fit times, as a markdown table.

    python scripts/good_only_vs_supervised.py DATA [--good-dir MT_Free] [--max-good 150 --max-per-type 20] [--cutpaste]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from sklearn.metrics import roc_auc_score

from engine.data.decode import read_image
from engine.data.layouts import DatasetIndex, Sample, load_dataset, split_dataset
from engine.evaluation.evaluate import evaluate
from engine.inference import Inspector
from engine.modelfile import save_model
from engine.training import TrainConfig, TrainResult, fit
from engine.training.good_only import train_good_only
from engine.types import RuntimeOptions


def subset(index: DatasetIndex, max_good: int, max_per_type: int, seed: int) -> DatasetIndex:
    """At most max_good good images and max_per_type of each defect type, drawn at random (seeded)."""
    rng = np.random.default_rng(seed)
    kept = []
    for kind in index.counts():
        of_kind = [s for s in index.samples if s.defect_type == kind]
        limit = max_good if kind == "good" else max_per_type
        if limit and len(of_kind) > limit:
            of_kind = [of_kind[i] for i in sorted(rng.choice(len(of_kind), limit, replace=False))]
        kept += of_kind
    return replace(index, samples=tuple(kept))


def cutpaste(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """CutPaste (Li et al., CVPR 2021): a random patch (2-15 % of the area), colour-jittered, pasted elsewhere."""
    h, w = image.shape[:2]
    area = rng.uniform(0.02, 0.15) * h * w
    aspect = np.exp(rng.uniform(np.log(0.3), np.log(3.3)))
    ph, pw = int(min(h - 1, max(4, np.sqrt(area / aspect)))), int(min(w - 1, max(4, np.sqrt(area * aspect))))
    y0, x0 = rng.integers(0, h - ph), rng.integers(0, w - pw)
    y1, x1 = rng.integers(0, h - ph), rng.integers(0, w - pw)
    patch = image[y0 : y0 + ph, x0 : x0 + pw].astype(np.float32)
    patch = np.clip(patch * rng.uniform(0.7, 1.3) + rng.uniform(-30, 30, 3), 0, 255)
    out = image.copy()
    out[y1 : y1 + ph, x1 : x1 + pw] = patch.astype(np.uint8)
    return out


def cutpaste_dataset(train_good: list[Sample], folder: Path, size: int, seed: int) -> DatasetIndex:
    """Class folders under folder: good/ (the training good images, resized) and cutpaste/ (one synthetic defect each)."""
    rng = np.random.default_rng(seed)
    samples = []
    for kind, label in (("good", 0), ("cutpaste", 1)):
        (folder / kind).mkdir(parents=True, exist_ok=True)
        for i, s in enumerate(train_good):
            image = cv2.resize(read_image(s.path), (size, size), interpolation=cv2.INTER_AREA)
            image = cutpaste(image, rng) if label else image
            path = folder / kind / f"{i:04d}.png"
            cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            samples.append(Sample(path, label, kind))
    return DatasetIndex(folder, "folders", "good", tuple(samples))


def scored(model_path: Path, samples) -> dict:
    """Image and pixel AUROC of a saved model on samples (fp32 on the CPU, so all candidates are scored alike)."""
    inspector = Inspector.open(model_path, RuntimeOptions("cpu", "fp32"))
    report, _ = evaluate(inspector, samples)
    y = [s.label for s in report.scores]
    return {"image_auroc": roc_auc_score(y, [s.p_anomaly for s in report.scores]), "pixel_auroc": report.pixel_auroc}


def run(name: str, index: DatasetIndex, config: TrainConfig, out: Path, cut: bool) -> list[dict]:
    rows = []
    split = split_dataset(index, test_fraction=config.test_fraction, seed=config.seed)
    held = split.test  # the supervised recipe's held-out split: every candidate is scored on these images
    for mode in ("supervised", "good-only") + (("cutpaste",) if cut else ()):
        t0 = time.perf_counter()
        if mode == "supervised":
            result = fit(index, config, product=name)
        elif mode == "good-only":
            result = next(e for e in train_good_only(index, config, product=name) if isinstance(e, TrainResult))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                synthetic = cutpaste_dataset([s for s in split.train if s.label == 0], Path(tmp), config.image_size, config.seed)
                result = fit(synthetic, config, product=name)
        seconds = time.perf_counter() - t0
        path = save_model(out / f"{name}-{mode}.safetensors", result.model, result.meta, calibration=result.calibration)
        metrics = scored(path, held)
        rows.append({"data": name, "mode": mode, "n_train_good": sum(1 for s in split.train if s.label == 0),
                     "n_held_out": len(held), "fit_s": round(seconds, 1), **{k: (None if v is None else round(v, 3)) for k, v in metrics.items()}})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--name")
    ap.add_argument("--good-dir", default="good")
    ap.add_argument("--max-good", type=int, default=0)
    ap.add_argument("--max-per-type", type=int, default=0)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--backbone", default="vgg16_bn")
    ap.add_argument("--cutpaste", action="store_true")
    ap.add_argument("--out", default="/tmp/good_only_bench")
    args = ap.parse_args()
    index = subset(load_dataset(args.data, good_dir=args.good_dir), args.max_good, args.max_per_type, seed=0)
    config = TrainConfig(
        backbone=args.backbone, backbone_weights="none", image_size=args.image_size, epochs=args.epochs, lr=1e-3, device="cpu"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = run(args.name or Path(args.data).name, index, config, out, args.cutpaste)
    print("| data | candidate | good fitted | held-out | image AUROC | pixel AUROC | fit s |")
    for r in rows:
        print(f"| {r['data']} | {r['mode']} | {r['n_train_good']} | {r['n_held_out']} | {r['image_auroc']} | {r['pixel_auroc']} | {r['fit_s']} |")


if __name__ == "__main__":
    main()
