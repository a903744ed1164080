"""Tiled inspection vs whole-image resizing on the same held-out images, at the same model input size: image AUROC,
pixel AUROC (both models' raw maps and the masks on one grid of the images' native pixels, at most 256 a side) and
fit / inspect times, as a markdown table.

    PYTHONPATH=. python scripts/tiled_vs_resized.py [--data DATA --good-dir MT_Free] [--size 384 --defect-width 3]
        [--image-size 64 --tile 64 --overlap 16] [--supervised [--no-good-only]]

Without --data a small-defect synthetic set is generated (engine/data/small_defects.py).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from engine.data.decode import read_image
from engine.data.layouts import load_dataset
from engine.data.small_defects import generate_small_defects
from engine.evaluation.tiled import grid_mask, metric_grid
from engine.inference import Inspector
from engine.inference.localize import upsample
from engine.inference.tiles import run_tiled
from engine.modelfile import save_model
from engine.training import TrainConfig, TrainResult, fit
from engine.training.good_only import train_good_only


def raw_map(inspector: Inspector, image: np.ndarray) -> tuple[float, np.ndarray]:
    """p(anomaly) and the raw map of one image, as the model inspects it (tiled, or resized whole)."""
    if inspector.meta.tile:
        out = run_tiled(inspector, [image])[0][0]
        return out.p_anomaly, out.cam
    out = inspector.forward(inspector.preprocess.batch([image]))
    return float(out.p_anomaly[0]), out.cams[0]


def measure(inspector: Inspector, samples) -> dict:
    """Image and pixel AUROC of the model on samples, and its inspect time per image."""
    probs, labels, heat, masks, seconds = [], [], [], [], 0.0
    raw_map(inspector, read_image(samples[0].path))  # warm-up: not timed
    for s in samples:
        image = read_image(s.path)
        t0 = time.perf_counter()
        p, cam = raw_map(inspector, image)
        seconds += time.perf_counter() - t0
        probs.append(p)
        labels.append(s.label)
        grid = metric_grid(*image.shape[:2])
        mask = grid_mask(s, image.shape[:2], grid)
        if mask is not None:
            heat.append(upsample(cam, *grid).ravel())
            masks.append(mask.ravel())
    truth = np.concatenate(masks)
    return {
        "image_auroc": roc_auc_score(labels, probs),
        "pixel_auroc": roc_auc_score(truth, np.concatenate(heat)) if truth.any() else float("nan"),
        "ms": 1000 * seconds / len(samples),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="dataset folder (default: generate a small-defect synthetic set)")
    ap.add_argument("--good-dir", default="good")
    ap.add_argument("--size", type=int, default=384, help="synthetic image side")
    ap.add_argument("--defect-width", type=int, default=3, help="synthetic defect width in pixels")
    ap.add_argument("--n-train-good", type=int, default=24)
    ap.add_argument("--n-test-good", type=int, default=10)
    ap.add_argument("--n-per-defect", type=int, default=6)
    ap.add_argument("--image-size", type=int, default=64, help="model input size (both models)")
    ap.add_argument("--tile", type=int, default=64)
    ap.add_argument("--overlap", type=int, default=16)
    ap.add_argument("--dims", type=int, default=100)
    ap.add_argument("--supervised", action="store_true", help="also the supervised CAM classifier, resized and tiled")
    ap.add_argument("--no-good-only", action="store_true", help="leave out the good-only PaDiM runs")
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args()
    torch.manual_seed(0)
    work = Path(tempfile.mkdtemp(prefix="tiled-vs-resized-"))
    data = Path(args.data) if args.data else work / "small_defects"
    if not args.data:
        generate_small_defects(data, n_train_good=args.n_train_good, n_test_good=args.n_test_good,
                               n_per_defect=args.n_per_defect, image_size=args.size, defect_width=args.defect_width)  # fmt: skip
    index = load_dataset(data, good_dir=args.good_dir)
    print(f"{data}: {index.describe()}")
    base = dict(backbone="vgg16_bn", backbone_weights="none", image_size=args.image_size, padim_dims=args.dims,
                device="cpu", tile_overlap=args.overlap)  # fmt: skip
    runs = [] if args.no_good_only else [("good-only", 0), ("good-only", args.tile)]
    if args.supervised:
        runs += [("supervised", 0), ("supervised", args.tile)]
    rows = []
    for mode, tile in runs:
        config = TrainConfig(**base, mode=mode, tile=tile, epochs=args.epochs, lr=1e-3)
        t0 = time.perf_counter()
        if mode == "good-only":
            result = next(e for e in train_good_only(index, config, product="p") if isinstance(e, TrainResult))
        else:
            result = fit(index, config, product="p")
        fit_s = time.perf_counter() - t0
        path = save_model(work / f"{mode}-{tile}.safetensors", result.model, result.meta, calibration=result.calibration)
        inspector = Inspector.from_file(path, device="cpu", precision="fp32")
        held = {s.path.relative_to(index.root).as_posix(): s for s in index.samples}
        samples = [held[r] for r in result.meta.dataset["held_out"]]
        # held_out of a supervised tiled model lists whole images (one entry per image)
        m = measure(inspector, samples)
        how = f"tiles of {tile} px" if tile else "whole image resized"
        rows.append(f"| {mode} | {how} | {len(samples)} | {m['image_auroc']:.3f} | {m['pixel_auroc']:.3f} | {fit_s:.0f} | {m['ms']:.0f} |")
        print(rows[-1], flush=True)
    print(f"\ninput {args.image_size} px, overlap {args.overlap} px\n")
    print("| training | input | held-out images | image AUROC | pixel AUROC | fit s | inspect ms/image |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
