"""The timed parts: model only, end to end from files, live latency, and the plain reference pipeline."""
from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from engine.inference.inspector import Inspector
from engine.modelfile import LoadedModel
from engine.thresholds import Thresholds
from engine.types import Verdict

REFERENCE_BATCH = 10
REFERENCE_PIPELINE = (
    "PIL + torchvision Resize/ToTensor/Normalize, DataLoader batch 10 (num_workers=0), "
    "fp32 contiguous NCHW, torch.no_grad, naive CAM, F.interpolate"
)


@dataclass(frozen=True)
class ModelOnly:
    """Forward passes on a preprocessed batch: the network's own speed, the ceiling for end to end."""

    batch_size: int
    images_per_s: float
    batch_ms_p50: float
    iterations: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EndToEnd:
    """Encoded files on disk to verdicts, heatmaps and boxes: what `visinspect predict` and folder runs do."""

    batch_size: int
    workers: int
    images: int
    errors: int
    anomalies: int
    boxes: int
    seconds: float
    images_per_s: float
    source: str = ""
    first_image_shape: tuple[int, ...] = ()

    def to_dict(self) -> dict:
        return {**asdict(self), "first_image_shape": list(self.first_image_shape)}


@dataclass(frozen=True)
class Live:
    """Latency of one in-memory frame to an Inspection at batch 1: what the live view waits for per frame."""

    frame_shape: tuple[int, ...]
    iterations: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    min_ms: float

    def to_dict(self) -> dict:
        return {**asdict(self), "frame_shape": list(self.frame_shape)}


@dataclass(frozen=True)
class Reference:
    """The same files through the simplest pipeline, so the speed-up is measured, not claimed."""

    pipeline: str
    batch_size: int
    images: int
    anomalies: int
    seconds: float
    images_per_s: float

    def to_dict(self) -> dict:
        return asdict(self)


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


def _rate(n: int, seconds: float) -> float:
    return round(n / seconds, 3) if seconds > 0 else 0.0


def bench_model_only(inspector: Inspector, batch_size: int, seconds: float, *, min_iters: int = 3) -> ModelOnly:
    """Forward passes (network + softmax + CAM, results back on the host) on a preprocessed batch."""
    size = inspector.preprocess.size
    rng = np.random.default_rng(1)
    batch_u8 = torch.from_numpy(rng.integers(0, 256, (batch_size, size, size, 3), dtype=np.uint8))
    x = inspector.preprocess.normalize(batch_u8.to(inspector.device))
    inspector.forward(x)  # warm-up: oneDNN / cuDNN pick and cache their kernels here
    _sync(inspector.device)
    times = _timed_loop(lambda: inspector.forward(x), seconds, min_iters=min_iters)
    return ModelOnly(
        batch_size=batch_size,
        images_per_s=round(batch_size * len(times) / sum(times), 3),
        batch_ms_p50=round(_pct(times, 50) * 1000, 2),
        iterations=len(times),
    )


def bench_end_to_end(
    inspector: Inspector,
    paths: Sequence[Path],
    batch_size: int,
    *,
    workers: int,
    source: str = "",
    first_image_shape: Sequence[int] = (),
) -> EndToEnd:
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
    return EndToEnd(
        batch_size=batch_size,
        workers=workers,
        images=n_ok,
        errors=n_err,
        anomalies=n_anomaly,
        boxes=n_boxes,
        seconds=round(elapsed, 3),
        images_per_s=_rate(n_ok, elapsed),
        source=source,
        first_image_shape=tuple(int(d) for d in first_image_shape),
    )


def bench_live(inspector: Inspector, image: np.ndarray, seconds: float, *, min_iters: int = 10) -> Live:
    """One in-memory RGB frame -> Inspection at batch 1, as the live view does, repeatedly."""
    for _ in range(2):
        inspector.inspect([image])
    ms = [t * 1000 for t in _timed_loop(lambda: inspector.inspect([image]), seconds, min_iters=min_iters)]
    return Live(
        frame_shape=tuple(int(d) for d in image.shape),
        iterations=len(ms),
        p50_ms=round(_pct(ms, 50), 2),
        p95_ms=round(_pct(ms, 95), 2),
        mean_ms=round(float(np.mean(ms)), 2),
        min_ms=round(min(ms), 2),
    )


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
) -> Reference:
    """The simplest pipeline: DataLoader(batch 10, no workers), fp32 NCHW, naive CAM, F.interpolate.

    Runs batches until `seconds` have passed (at least min_batches) after one untimed warm-up batch.
    Verdicts and boxes follow the model's Thresholds, the same rule as the Inspector's.
    """
    import torch.nn.functional as F
    from torch.utils.data import DataLoader

    rule = Thresholds.of(loaded.meta)
    pre = loaded.meta.preprocessing()
    model = copy.deepcopy(loaded.model).to(device=device, dtype=torch.float32, memory_format=torch.contiguous_format)
    model.eval()

    def loader(files: Sequence[Path]) -> DataLoader:
        return DataLoader(_ReferenceFiles(files, pre.size, pre.mean, pre.std), batch_size=REFERENCE_BATCH, shuffle=False, num_workers=0)

    def run_batch(batch) -> list[tuple[Verdict, tuple]]:
        x, heights, widths = batch
        with torch.no_grad():
            feats = model.forward_features(x.to(device))
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
                out.append((rule.verdict(p), rule.boxes(heatmap, p)))
            return out

    for batch in loader(paths[:REFERENCE_BATCH]):
        run_batch(batch)  # warm-up, not timed
    n = batches = n_anomaly = 0
    t0 = time.perf_counter()
    for batch in loader(paths):
        out = run_batch(batch)
        n += len(out)
        n_anomaly += sum(verdict is Verdict.ANOMALY for verdict, _ in out)
        batches += 1
        if batches >= min_batches and time.perf_counter() - t0 >= seconds:
            break
    elapsed = time.perf_counter() - t0
    return Reference(
        pipeline=REFERENCE_PIPELINE,
        batch_size=REFERENCE_BATCH,
        images=n,
        anomalies=n_anomaly,
        seconds=round(elapsed, 3),
        images_per_s=_rate(n, elapsed),
    )
