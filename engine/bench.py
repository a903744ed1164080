"""`visinspect bench`: how fast this station inspects, measured beside a plain reference pipeline.

One run measures, for one model (a random-init VGG16 at 224 px unless a model file is given):

- model only: images/s at batch 1 and batch N (preprocessed tensors in, probabilities + CAMs out);
- end to end: images/s from encoded files on disk through decode -> verdict + heatmap + boxes
  (`Inspector.inspect_files`, the path `visinspect predict` and the station's folder runs use);
- live: latency p50 / p95 of one in-memory frame -> Inspection at batch 1 (the live view's path);
- reference: the same files through the simplest pipeline (PIL, torchvision transforms, a DataLoader,
  fp32 contiguous NCHW, a naive CAM), and the ratio end-to-end / reference;
- precision: where a reduced precision is available, its agreement with fp32 on real image sets;
- training (optional): seconds per epoch after the first, plain loop vs the frozen-stem feature cache;
- peak memory, device, precision, torch version, CPU model and date.

`--quick` is a smoke run (a few images, a 64 px model) that checks the machinery, not the speed.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import torch

from engine.bench_options import add_bench_arguments
from engine.data.decode import is_image_file, read_image
from engine.inference.agreement import PRECISION_GATE, correlation
from engine.inference.device import decode_workers, resolve_device
from engine.inference.inspector import INT8_CHECK_KEY, Inspector, auto_int8_wanted, cpu_has_native_bf16, int8_check
from engine.inference.localize import heatmap_to_boxes
from engine.modelfile import LoadedModel, ModelMeta, load_model
from engine.types import ANOMALY

REFERENCE_BATCH = 10
TARGETS = {
    "end_to_end_vs_reference": (">=", 3.0, "end-to-end >= 3x the plain reference pipeline"),
    "end_to_end_vs_model_only": (">=", 0.9, "end-to-end >= 90% of model-only throughput"),
    "live_p95_ms": ("<=", 60.0, "live latency p95 at batch 1 <= 60 ms"),
    "training_cached_speedup": (">=", 3.0, "training epochs after the first >= 3x faster than plain"),
}
# Real sets for the precision check, looked for in ../shared/data: name -> load_dataset keyword arguments.
KNOWN_SETS = {"hazelnut_toy": {}, "magnetic_tile": {"layout": "folders", "good_dir": "MT_Free"}}
MASK_DIRS = {"ground_truth", "masks", "mask", "gt"}


# ----------------------------------------------------------------------------------------------- machine


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")) and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def peak_rss_mib() -> float | None:
    """Peak resident memory of this process so far, in MiB (None where the platform cannot tell)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20) if sys.platform == "darwin" else peak / 1024, 1)


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def environment(inspector: Inspector) -> dict:
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cores": usable_cores(),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "opencv_version": cv2.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": inspector.device_name,
        "device_type": inspector.device.type,
        "precision": inspector.precision_name,
        "cpu_native_bf16": cpu_has_native_bf16(),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "load_average_1min": load_average(),
    }


# ------------------------------------------------------------------------------------------------ inputs


def make_image_set(folder: Path, n: int, *, size: int = 512, distinct: int = 24, seed: int = 0) -> list[Path]:
    """Write n JPEG files (quality 95) of synthetic surfaces, a third of them with a drawn defect."""
    from engine.data.synthetic import DEFECT_TYPES, draw_defect, make_style, make_surface

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    style = make_style(rng, size)
    encoded = []
    for i in range(min(n, distinct)):
        image = make_surface(rng, size, style=style)
        if i % 3 == 2:
            image = draw_defect(image, DEFECT_TYPES[i % len(DEFECT_TYPES)], rng).image
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise RuntimeError("OpenCV could not encode a JPEG")
        encoded.append(buf.tobytes())
    paths = []
    for i in range(n):
        path = folder / f"bench_{i:04d}.jpg"
        path.write_bytes(encoded[i % len(encoded)])
        paths.append(path)
    return paths


def list_images(folder: str | os.PathLike, n: int) -> list[Path]:
    """Up to n image files under folder (sorted, masks skipped), repeated in order when there are fewer."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"--images {root}: not a folder")
    found = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and is_image_file(p)
        and not p.stem.endswith("_mask")
        and not (MASK_DIRS & {q.lower() for q in p.relative_to(root).parts[:-1]})
    )
    if not found:
        raise ValueError(f"--images {root}: no image files found")
    return [found[i % len(found)] for i in range(n)]


def random_init_model(size: int = 224, backbone: str = "vgg16") -> LoadedModel:
    """An in-memory VGG16-CAM with random weights (nothing is downloaded), as a LoadedModel."""
    from engine.data.preprocess import Preprocess
    from engine.model import build_model

    torch.manual_seed(0)
    model, origin = build_model(backbone=backbone, backbone_weights="none")
    model.eval()
    meta = ModelMeta(
        product="bench",
        backbone=backbone,
        backbone_weights={"kind": origin.kind, "detail": origin.detail},
        preprocess=Preprocess(size).to_dict(),
    )
    return LoadedModel(model, meta, Path("<random init>"), "")


# --------------------------------------------------------------------------------------------- measuring


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_loop(fn: Callable[[], object], seconds: float, *, min_iters: int, max_iters: int = 100_000) -> list[float]:
    """Call fn until `seconds` have passed (at least min_iters times); the duration of each call."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_iters and (len(times) < min_iters or time.perf_counter() - start < seconds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def bench_model_only(inspector: Inspector, batch_size: int, seconds: float, *, min_iters: int = 3) -> dict:
    """Forward passes (network + softmax + CAM, results back on the host) on a preprocessed batch."""
    size = inspector.preprocess.size
    rng = np.random.default_rng(1)
    batch_u8 = torch.from_numpy(rng.integers(0, 256, (batch_size, size, size, 3), dtype=np.uint8))
    x = inspector.preprocess.normalize(batch_u8.to(inspector.device))
    inspector.forward(x)  # warm-up: oneDNN / cuDNN pick and cache their kernels here
    _sync(inspector.device)
    times = _timed_loop(lambda: inspector.forward(x), seconds, min_iters=min_iters)
    total = sum(times)
    return {
        "batch_size": batch_size,
        "images_per_s": round(batch_size * len(times) / total, 3),
        "batch_ms_p50": round(_pct(times, 50) * 1000, 2),
        "iterations": len(times),
    }


def bench_end_to_end(inspector: Inspector, paths: Sequence[Path], batch_size: int, *, workers: int) -> dict:
    """Encoded files on disk -> FileResult with verdict, heatmap and boxes, via Inspector.inspect_files."""
    for _ in inspector.inspect_files(paths[:batch_size], batch_size=batch_size, workers=workers):
        pass  # warm-up batch, not timed
    n_ok = n_err = n_anomaly = n_boxes = 0
    t0 = time.perf_counter()
    for r in inspector.inspect_files(paths, batch_size=batch_size, workers=workers):
        if r.inspection is None:
            n_err += 1
            continue
        n_ok += 1
        n_anomaly += r.inspection.is_anomaly
        n_boxes += len(r.inspection.boxes)
    elapsed = time.perf_counter() - t0
    return {
        "batch_size": batch_size,
        "workers": workers,
        "images": n_ok,
        "errors": n_err,
        "anomalies": n_anomaly,
        "boxes": n_boxes,
        "seconds": round(elapsed, 3),
        "images_per_s": round(n_ok / elapsed, 3) if elapsed > 0 else 0.0,
    }


def bench_live(inspector: Inspector, image: np.ndarray, seconds: float, *, min_iters: int = 10) -> dict:
    """One in-memory RGB frame -> Inspection at batch 1, as the live view does, repeatedly."""
    for _ in range(2):
        inspector.inspect([image])
    times = _timed_loop(lambda: inspector.inspect([image]), seconds, min_iters=min_iters)
    ms = [t * 1000 for t in times]
    return {
        "frame_shape": list(image.shape),
        "iterations": len(ms),
        "p50_ms": round(_pct(ms, 50), 2),
        "p95_ms": round(_pct(ms, 95), 2),
        "mean_ms": round(float(np.mean(ms)), 2),
        "min_ms": round(min(ms), 2),
    }


class _ReferenceFiles(torch.utils.data.Dataset):
    """PIL decode + torchvision Resize / ToTensor / Normalize, written the obvious way."""

    def __init__(self, paths: Sequence[Path], size: int, mean, std) -> None:
        from torchvision import transforms

        self.paths = list(paths)
        self.transform = transforms.Compose(
            [transforms.Resize((size, size)), transforms.ToTensor(), transforms.Normalize(mean, std)]
        )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from PIL import Image

        with Image.open(self.paths[i]) as im:
            im = im.convert("RGB")
            return self.transform(im), im.size[1], im.size[0]


def bench_reference(
    loaded: LoadedModel, paths: Sequence[Path], seconds: float, device: torch.device, *, min_batches: int = 2
) -> dict:
    """The simplest pipeline: DataLoader(batch 10, no workers), fp32 NCHW, naive CAM, F.interpolate.

    Runs batches until `seconds` have passed (at least min_batches) after one untimed warm-up batch.
    """
    import torch.nn.functional as F
    from torch.utils.data import DataLoader

    meta = loaded.meta
    pre = meta.preprocessing()
    model = copy.deepcopy(loaded.model).to(device=device, dtype=torch.float32, memory_format=torch.contiguous_format)
    model.eval()
    dataset = _ReferenceFiles(paths, pre.size, pre.mean, pre.std)
    loader = DataLoader(dataset, batch_size=REFERENCE_BATCH, shuffle=False, num_workers=0)

    def run_batch(batch) -> list[tuple[str, int]]:
        x, heights, widths = batch
        with torch.no_grad():
            x = x.to(device)
            feats = model.forward_features(x)
            probs = torch.softmax(model.forward_head(feats), dim=1)[:, 1]
            n, c, h, w = feats.shape
            weights = model.fc.weight[1].view(1, c, 1, 1).repeat(n, 1, h, w)  # the weights, once per image
            cams = (feats * weights).sum(dim=1)
            out = []
            for i in range(n):
                up = F.interpolate(
                    cams[i][None, None], size=(int(heights[i]), int(widths[i])), mode="bilinear", align_corners=False
                )[0, 0].cpu().numpy()
                lo, hi = float(up.min()), float(up.max())
                heatmap = (up - lo) / (hi - lo) if hi > lo else np.zeros_like(up)
                p = float(probs[i])
                verdict = ANOMALY if p >= meta.threshold else "GOOD"
                boxes = (
                    heatmap_to_boxes(heatmap, threshold=meta.box_threshold, min_area_fraction=meta.min_area_fraction)
                    if verdict == ANOMALY
                    else ()
                )
                out.append((verdict, len(boxes)))
            return out

    warm = DataLoader(_ReferenceFiles(paths[:REFERENCE_BATCH], pre.size, pre.mean, pre.std), batch_size=REFERENCE_BATCH)
    for batch in warm:
        run_batch(batch)  # warm-up, not timed
    n = batches = n_anomaly = 0
    t0 = time.perf_counter()
    for batch in loader:
        out = run_batch(batch)
        n += len(out)
        n_anomaly += sum(v == ANOMALY for v, _ in out)
        batches += 1
        if batches >= min_batches and time.perf_counter() - t0 >= seconds:
            break
    elapsed = time.perf_counter() - t0
    return {
        "pipeline": "PIL + torchvision Resize/ToTensor/Normalize, DataLoader batch 10 (num_workers=0), "
        "fp32 contiguous NCHW, torch.no_grad, naive CAM, F.interpolate",
        "batch_size": REFERENCE_BATCH,
        "images": n,
        "anomalies": n_anomaly,
        "seconds": round(elapsed, 3),
        "images_per_s": round(n / elapsed, 3) if elapsed > 0 else 0.0,
    }


# ------------------------------------------------------------------------------------------ precision


def shared_data_root() -> Path | None:
    """../shared/data beside the checkout (or the working folder), where the project's real sets live."""
    here = Path(__file__).resolve().parents[1]
    for root in (here.parent / "shared" / "data", Path.cwd().parent / "shared" / "data", Path.cwd() / "shared" / "data"):
        if root.is_dir():
            return root
    return None


def precision_sets(n_per_set: int) -> list[tuple[str, list[Path]]]:
    """Real image sets from ../shared/data, each sampled evenly over its classes (up to n_per_set)."""
    from engine.data.layouts import load_dataset
    from engine.errors import DatasetError

    root = shared_data_root()
    sets = []
    if root is None:
        return sets
    for name, kwargs in KNOWN_SETS.items():
        if not (root / name).is_dir():
            continue
        try:
            index = load_dataset(root / name, **kwargs)
        except DatasetError:
            continue
        by_kind: dict[str, list[Path]] = {}
        for s in index.samples:
            by_kind.setdefault(s.defect_type, []).append(Path(s.path))
        rng = np.random.default_rng(0)
        pools = {k: list(rng.permutation(sorted(v))) for k, v in sorted(by_kind.items())}
        picked: list[Path] = []
        while len(picked) < n_per_set and any(pools.values()):
            for pool in pools.values():
                if pool and len(picked) < n_per_set:
                    picked.append(Path(pool.pop()))
        sets.append((name, picked))
    return sets


def calibration_images(n: int, exclude: Sequence[Path], folder: Path) -> tuple[list[np.ndarray], str]:
    """Images to calibrate the int8 path on: real ones not used by the precision check, else synthetic."""
    from engine.data.layouts import load_dataset
    from engine.errors import DatasetError

    excluded = {Path(p) for p in exclude}
    root = shared_data_root()
    pools: list[list[Path]] = []
    for name, kwargs in KNOWN_SETS.items():
        if root is None or not (root / name).is_dir():
            continue
        try:
            index = load_dataset(root / name, **kwargs)
        except DatasetError:
            continue
        rest = sorted(Path(s.path) for s in index.samples if Path(s.path) not in excluded)
        pools.append(list(np.random.default_rng(1).permutation(rest)))
    picked = [Path(pool[i]) for i in range(n) for pool in pools if i < len(pool)][:n]
    if len(picked) >= n:
        return [read_image(p) for p in picked], f"{n} real images not in the precision check"
    paths = make_image_set(folder, n, size=256, seed=7)
    return [read_image(p) for p in paths], f"{n} synthetic images"


def with_int8_evidence(loaded: LoadedModel, calibration: Sequence[np.ndarray], held_out: Sequence[np.ndarray]) -> LoadedModel:
    """loaded with calibration images and an int8 check on held_out images, as a trained model file carries them."""
    resize = loaded.meta.preprocessing().resize
    loaded = replace(loaded, calibration=np.stack([resize(im) for im in calibration]))
    check = int8_check(loaded, held_out)
    if check is None:
        return loaded
    return replace(loaded, meta=replace(loaded.meta, training={**loaded.meta.training, INT8_CHECK_KEY: check}))


def check_precision(
    loaded: LoadedModel,
    device: torch.device,
    reduced: str,
    sets: Sequence[tuple[str, Sequence[Path]]],
    *,
    batch_size: int,
    workers: int,
    calibration: Sequence[np.ndarray] | None = None,
) -> dict:
    """Verdicts, probabilities and heatmaps of `reduced` precision vs fp32 on the same files."""
    ref = Inspector(loaded, device=device, precision="fp32")
    low = Inspector(loaded, device=device, precision=reduced, calibration=calibration)
    per_set = {}
    agree_all = n_all = 0
    corrs_all: list[float] = []
    dp_all = 0.0
    for name, paths in sets:
        agree = n = 0
        corrs: list[float] = []
        dp = 0.0
        for a, b in zip(
            ref.inspect_files(paths, batch_size=batch_size, workers=workers),
            low.inspect_files(paths, batch_size=batch_size, workers=workers),
        ):
            if a.inspection is None or b.inspection is None:
                continue
            n += 1
            agree += a.inspection.verdict == b.inspection.verdict
            corrs.append(correlation(a.inspection.heatmap, b.inspection.heatmap))
            dp = max(dp, abs(a.inspection.p_anomaly - b.inspection.p_anomaly))
        per_set[name] = {
            "images": n,
            "verdict_agreement": round(agree / n, 4) if n else None,
            "heatmap_correlation_mean": round(float(np.mean(corrs)), 5) if corrs else None,
            "heatmap_correlation_min": round(float(np.min(corrs)), 5) if corrs else None,
            "max_abs_p_diff": round(dp, 5),
        }
        agree_all += agree
        n_all += n
        corrs_all += corrs
        dp_all = max(dp_all, dp)
    agreement = agree_all / n_all if n_all else None
    corr = float(np.mean(corrs_all)) if corrs_all else None
    return {
        "reduced": reduced,
        "images": n_all,
        "verdict_agreement": round(agreement, 4) if agreement is not None else None,
        "heatmap_correlation_mean": round(corr, 5) if corr is not None else None,
        "heatmap_correlation_min": round(float(np.min(corrs_all)), 5) if corrs_all else None,
        "max_abs_p_diff": round(dp_all, 5),
        "sets": per_set,
        "gate": PRECISION_GATE,
        "agrees": bool(
            agreement is not None
            and agreement >= PRECISION_GATE["verdict_agreement"]
            and corr >= PRECISION_GATE["heatmap_correlation"]
        ),
    }


def reduced_candidate(device: torch.device, *, quick: bool = False) -> str | None:
    """The reduced precision worth using here: fp16 on CUDA, bf16 on CPUs with native bf16."""
    if device.type == "cuda":
        return "fp16"
    if device.type == "cpu" and (quick or cpu_has_native_bf16()):
        return "bf16"
    return None


# ------------------------------------------------------------------------------------------- training


def bench_training(
    data: Path, *, image_size: int, epochs: int, batch_size: int, device: str, backbone: str = "vgg16"
) -> tuple[dict, LoadedModel | None]:
    """Epoch seconds of the founding recipe (frozen stem, random init), plain loop vs feature cache.

    Also returns the model the cached run trained (used for a second precision check).
    """
    from dataclasses import asdict

    from engine.data.layouts import load_dataset
    from engine.training import EpochReport, TrainConfig, TrainResult, train

    index = load_dataset(data)
    runs = {}
    trained = None
    for mode, cache in (("plain", False), ("cached", True)):
        config = TrainConfig(
            backbone=backbone,
            backbone_weights="none",
            image_size=image_size,
            epochs=epochs,
            batch_size=batch_size,
            early_stop_accuracy=1.01,  # run every epoch
            device=device,
            cache_features=cache,
        )
        history = []
        for event in train(index, config, product="bench"):
            if isinstance(event, EpochReport):
                history.append(asdict(event))
            elif isinstance(event, TrainResult):
                trained = LoadedModel(event.model, event.meta, Path("<trained in the benchmark>"), "")
        runs[mode] = history
    plain_later = [e["seconds"] for e in runs["plain"][1:]]
    cached_later = [e["seconds"] for e in runs["cached"][1:]]
    plain_s = float(np.mean(plain_later)) if plain_later else None
    cached_s = float(np.mean(cached_later)) if cached_later else None
    loss_diff = max(
        (abs(p["train_loss"] - c["train_loss"]) for p, c in zip(runs["plain"], runs["cached"])), default=0.0
    )
    return {
        "data": str(data),
        "backbone": backbone,
        "image_size": image_size,
        "epochs": epochs,
        "batch_size": batch_size,
        "plain_epoch_s": [round(e["seconds"], 3) for e in runs["plain"]],
        "cached_epoch_s": [round(e["seconds"], 3) for e in runs["cached"]],
        "plain_later_epoch_s": round(plain_s, 3) if plain_s is not None else None,
        "cached_later_epoch_s": round(cached_s, 3) if cached_s is not None else None,
        "speedup": round(plain_s / cached_s, 3) if plain_s and cached_s else None,
        "max_train_loss_diff": round(loss_diff, 6),
        "test_accuracy_plain": runs["plain"][-1]["test_accuracy"] if runs["plain"] else None,
        "test_accuracy_cached": runs["cached"][-1]["test_accuracy"] if runs["cached"] else None,
    }, trained


# ------------------------------------------------------------------------------------------------ run


def _target(name: str, value: float | None, quick: bool) -> dict:
    op, limit, text = TARGETS[name]
    met = None if value is None else (value >= limit if op == ">=" else value <= limit)
    return {"target": text, "limit": limit, "value": None if value is None else round(value, 4), "met": met, "meaningful": not quick}


def run(
    model: str | os.PathLike | None = None,
    *,
    device: str = "auto",
    batch_size: int = 10,
    images: str | os.PathLike | None = None,
    n_images: int = 200,
    seconds: float = 10.0,
    precision: str = "auto",
    quick: bool = False,
    check: bool | None = None,
    check_images: int = 150,
    train: bool = False,
    train_data: str | os.PathLike | None = None,
    train_epochs: int = 3,
    workers: int | None = None,
    threads: int | None = None,
    compile: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Run the benchmark and return its results as a JSON-ready dict (see the module docstring)."""
    say = log or (lambda msg: None)
    if threads:
        torch.set_num_threads(int(threads))
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1; got {batch_size}")
    if quick:
        n_images = min(n_images, 6)
        batch_size = min(batch_size, 3)
        seconds = min(seconds, 0.2)
        check_images = min(check_images, 4)
        train_epochs = 2
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()

    loaded = load_model(model) if model else random_init_model(64 if quick else 224)
    # A random-init model judges nearly every image GOOD, which would skip the box search; with
    # threshold 0 every image takes the full verdict + heatmap + boxes path (the worst case).
    timed = loaded if model else replace(loaded, meta=replace(loaded.meta, threshold=0.0))
    calibration, calibration_source = None, None
    # A trained model file brings its calibration images and its held-out int8 check; the random-init
    # model borrows images for both, so that auto decides as it would for a trained model.
    borrow = not model and auto_int8_wanted(resolve_device(device))
    if precision == "int8" or (precision == "auto" and borrow):
        excluded = [p for _, paths in ([] if quick else precision_sets(check_images)) for p in paths]
        n = 4 if quick else 16
        with tempfile.TemporaryDirectory(prefix="visinspect-calib-") as tmp:
            images_, source = calibration_images(2 * n, excluded, Path(tmp))
        calibration, held_out = images_[:n], images_[n:]
        calibration_source = source.replace(str(2 * n), str(n), 1)
        say(f"int8 calibration images: {calibration_source}")
        if precision == "auto":
            say(f"int8 check against fp32 on {len(held_out)} other images ...")
            timed = with_int8_evidence(timed, calibration, held_out)
    inspector = Inspector(timed, device=device, precision=precision, compile=compile, calibration=calibration)
    workers = workers or decode_workers(inspector.device)
    result: dict = {
        "quick": quick,
        "environment": environment(inspector),
        "model": {
            "file": str(model) if model else None,
            "backbone": loaded.meta.backbone,
            "weights": loaded.meta.backbone_weights.get("kind"),
            "input_size": loaded.meta.input_size,
            "compiled": bool(compile),
            "threshold_timed": timed.meta.threshold,
            "int8_calibration": calibration_source,
            "precision_note": inspector.precision_note,
        },
    }
    say(f"model: {loaded.meta.backbone} {loaded.meta.input_size} px on {inspector.device_name}, {inspector.precision_name}")
    if inspector.precision_note:
        say(f"precision: {inspector.precision_note}")

    min_iters = 2 if quick else 3
    say("model only, batch 1 ...")
    model_b1 = bench_model_only(inspector, 1, seconds, min_iters=min_iters)
    say(f"model only, batch {batch_size} ...")
    model_bn = bench_model_only(inspector, batch_size, seconds, min_iters=min_iters)
    result["model_only"] = {"batch_1": model_b1, "batch_n": model_bn}

    with tempfile.TemporaryDirectory(prefix="visinspect-bench-") as tmp:
        if images:
            paths = list_images(images, n_images)
            source = str(images)
        else:
            say(f"writing {n_images} synthetic 512x512 JPEGs ...")
            paths = make_image_set(Path(tmp) / "images", n_images, size=128 if quick else 512)
            source = "synthetic JPEG q95, 128x128" if quick else "synthetic JPEG q95, 512x512"
        frame = read_image(paths[0])
        say(f"end to end over {len(paths)} files ...")
        e2e = bench_end_to_end(inspector, paths, batch_size, workers=workers)
        e2e["source"] = source
        e2e["first_image_shape"] = list(frame.shape)
        result["end_to_end"] = e2e
        say("live latency at batch 1 ...")
        result["live"] = bench_live(inspector, frame, seconds, min_iters=3 if quick else 20)
        result["memory"] = {"peak_rss_mib_inspection": peak_rss_mib()}
        say("plain reference pipeline ...")
        ref = bench_reference(timed, paths, seconds, inspector.device, min_batches=1 if quick else 2)
        result["reference"] = ref
        ratio = e2e["images_per_s"] / ref["images_per_s"] if ref["images_per_s"] else None
        share = e2e["images_per_s"] / model_bn["images_per_s"]
        result["ratios"] = {  # 4 decimals: a ratio of 0.89972 must not print as a met 0.9
            "end_to_end_vs_reference": round(ratio, 4) if ratio else None,
            "end_to_end_vs_model_only": round(share, 4),
        }

        if train:
            if train_data:
                data = Path(train_data)
            elif not quick and shared_data_root() is not None and (shared_data_root() / "hazelnut_toy").is_dir():
                data = shared_data_root() / "hazelnut_toy"
            else:
                from engine.data.synthetic import generate_dataset

                n = 4 if quick else 32
                data = generate_dataset(
                    Path(tmp) / "train-set", image_size=64 if quick else 256, n_train_good=2 * n, n_test_good=n // 2, n_per_defect=n // 2
                ).root
            say(f"training: plain vs cached over {train_epochs} epochs on {data} ...")
            result["training"], trained = bench_training(
                data,
                image_size=64 if quick else 224,
                epochs=max(2, train_epochs),
                batch_size=10,
                device=str(inspector.device),
            )
        else:
            result["training"], trained = None, None

        candidate = reduced_candidate(inspector.device, quick=quick)
        if inspector.precision_name != "fp32":
            candidate = inspector.precision_name
        do_check = (candidate is not None) if check is None else (check and candidate is not None)
        if do_check:
            sets = [] if quick else precision_sets(check_images)
            if not sets:
                sets = [("synthetic", paths[:check_images])]
            say(f"precision check: {candidate} vs fp32 on {sum(len(p) for _, p in sets)} images ...")
            result["precision_check"] = check_precision(
                loaded, inspector.device, candidate, sets, batch_size=batch_size, workers=workers, calibration=calibration
            )
            if trained is not None:
                say(f"precision check with the model trained above: {candidate} vs fp32 ...")
                result["precision_check_trained"] = check_precision(
                    trained, inspector.device, candidate, sets, batch_size=batch_size, workers=workers, calibration=calibration
                )
        else:
            result["precision_check"] = None

    memory = result["memory"]
    memory["peak_rss_mib"] = peak_rss_mib()
    if inspector.device.type == "cuda":
        memory["cuda_max_allocated_mib"] = round(torch.cuda.max_memory_allocated() / (1 << 20), 1)
    result["environment"]["load_average_1min_end"] = load_average()
    training = result["training"]
    result["targets"] = {
        "end_to_end_vs_reference": _target("end_to_end_vs_reference", ratio, quick),
        "end_to_end_vs_model_only": _target("end_to_end_vs_model_only", share, quick),
        "live_p95_ms": _target("live_p95_ms", result["live"]["p95_ms"], quick),
        "training_cached_speedup": _target("training_cached_speedup", training["speedup"] if training else None, quick),
    }
    return result


# ---------------------------------------------------------------------------------------------- report


def _met(t: dict) -> str:
    if t["met"] is None:
        return "not measured"
    word = "MET" if t["met"] else "NOT MET"
    return word if t["meaningful"] else f"{word} (quick run: not meaningful)"


def format_report(r: dict) -> str:
    env, mo, e2e, live, ref = r["environment"], r["model_only"], r["end_to_end"], r["live"], r["reference"]
    m = r["model"]
    rows = [
        ("model only, batch 1", f"{mo['batch_1']['images_per_s']:.2f} img/s   ({mo['batch_1']['batch_ms_p50']:.1f} ms per batch)"),
        (
            f"model only, batch {mo['batch_n']['batch_size']}",
            f"{mo['batch_n']['images_per_s']:.2f} img/s   ({mo['batch_n']['batch_ms_p50']:.1f} ms per batch)",
        ),
        (
            f"end to end, batch {e2e['batch_size']}",
            f"{e2e['images_per_s']:.2f} img/s   ({e2e['images']} files, {e2e['source']}, {e2e['workers']} decode thread{'s' if e2e['workers'] != 1 else ''}, "
            f"{e2e['anomalies']} boxed as anomalies)",
        ),
        ("reference pipeline", f"{ref['images_per_s']:.2f} img/s   ({ref['images']} files; PIL + torchvision, fp32 NCHW, naive CAM)"),
        ("end to end / reference", f"{r['ratios']['end_to_end_vs_reference']:.2f}x"),
        ("end to end / model only", f"{r['ratios']['end_to_end_vs_model_only']:.2%}"),
        ("live latency, batch 1", f"p50 {live['p50_ms']:.1f} ms   p95 {live['p95_ms']:.1f} ms   ({live['iterations']} frames)"),
    ]
    mem = r["memory"]
    mem_txt = f"peak RSS {mem['peak_rss_mib_inspection']} MiB (inspection), {mem['peak_rss_mib']} MiB (whole run)"
    if "cuda_max_allocated_mib" in mem:
        mem_txt += f", CUDA max allocated {mem['cuda_max_allocated_mib']} MiB"
    rows.append(("memory", mem_txt))
    for key, label in (("precision_check", "model above"), ("precision_check_trained", "trained model")):
        pc = r.get(key)
        if not pc:
            continue
        rows.append(
            (
                f"{pc['reduced']} vs fp32 ({label})",
                f"verdicts {pc['verdict_agreement']:.2%} agree, heatmap corr mean {pc['heatmap_correlation_mean']:.4f} "
                f"(min {pc['heatmap_correlation_min']:.4f}), max |dp| {pc['max_abs_p_diff']:.4f} on {pc['images']} images "
                f"-> {'agrees' if pc['agrees'] else 'DOES NOT agree'}",
            )
        )
    tr = r.get("training")
    if tr:
        rows.append(
            (
                f"training {tr['image_size']} px",
                f"plain {tr['plain_later_epoch_s']:.2f} s/epoch, cached {tr['cached_later_epoch_s']:.2f} s/epoch "
                f"(epochs after the first) -> {tr['speedup']:.2f}x; first epochs {tr['plain_epoch_s'][0]:.2f} / "
                f"{tr['cached_epoch_s'][0]:.2f} s",
            )
        )
    width = max(len(k) for k, _ in rows) + 2
    head = (
        f"VisInspect benchmark{' (quick smoke run: numbers are not meaningful)' if r['quick'] else ''}\n"
        f"{env['date']} | {env['cpu_model']}, {env['cores']} cores | torch {env['torch_version']} | "
        f"{env['device']} | precision {env['precision']} | load avg {env['load_average_1min']}\n"
        f"model: {m['backbone']} {m['input_size']} px, {m['file'] or 'random init, in memory'}"
        + (f" | int8 calibrated on {m['int8_calibration']}" if m.get("int8_calibration") else "")
        + "\n"
        + (f"precision: {m['precision_note']}\n" if m.get("precision_note") else "")
    )
    body = "\n".join(f"  {k:<{width}}{v}" for k, v in rows)
    targets = "\n".join(f"  {t['target']:<58}{_met(t):<12} ({t['value']})" for t in r["targets"].values())
    return f"{head}\n{body}\n\ntargets\n{targets}\n"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine.bench", description=__doc__.splitlines()[0])
    add_bench_arguments(p)
    return p


def run_cli(args: argparse.Namespace) -> int:
    """Entry point of `visinspect bench`: print the table, write JSON when asked."""

    def log(msg: str) -> None:
        print(f"[bench] {msg}", file=sys.stderr, flush=True)

    result = run(
        args.model,
        device=args.device,
        batch_size=args.batch_size,
        images=args.images,
        n_images=args.n_images,
        seconds=args.seconds,
        precision=args.precision,
        quick=args.quick,
        check=args.check_precision,
        check_images=args.check_images,
        train=args.train,
        train_data=args.train_data,
        train_epochs=args.train_epochs,
        workers=args.workers,
        threads=args.threads,
        compile=args.compile,
        log=log,
    )
    print(format_report(result))
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2), encoding="utf-8")
        print(f"results written to {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_parser().parse_args(argv))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
