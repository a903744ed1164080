"""The founding training recipe as a generator of typed progress events that a stop flag can cancel."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.data.images import LoadedSamples, load_samples
from engine.data.layouts import DatasetIndex, split_dataset
from engine.data.preprocess import Preprocess
from engine.errors import Cancelled, DatasetError
from engine.evaluation.evaluate import evaluate_loaded
from engine.evaluation.metrics import EvalReport
from engine.evaluation.tiled import evaluate_tiled
from engine.inference.device import resolve_device
from engine.inference.inspector import RecordingInspector
from engine.inference.localize import ScaleError, measure_cam_scale
from engine.inference.ood import OodStats
from engine.inference.runtime import choose_runtime, with_int8_check
from engine.inference.trace_gate import GATE
from engine.model import VGG16CAM, build_model
from engine.modelfile import LoadedModel, ModelMeta
from engine.training.config import TrainConfig
from engine.training.ood_fit import fit_guard
from engine.training.tiled_data import balance_tiles, check_masks, load_tiles
from engine.types import RuntimeOptions

CACHE_LIMIT_BYTES = 6 << 30


CALIBRATION_PER_CLASS = 8  # stored with each model: 16 images at 224 px add 2.4 MB to the file


@dataclass(frozen=True)
class DataReady:
    """Images are decoded and split; skipped lists files that could not be read."""

    n_train: int
    n_test: int
    counts: dict
    skipped: tuple[str, ...]
    device: str
    backbone_origin: str


@dataclass(frozen=True)
class StepReport:
    """One optimisation step finished."""

    epoch: int  # 1-based
    epochs: int
    step: int  # 1-based within the epoch
    steps: int
    loss: float


@dataclass(frozen=True)
class EpochReport:
    """One epoch finished: train and held-out loss and accuracy."""

    epoch: int
    epochs: int
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    seconds: float
    early_stop: bool = False


@dataclass(frozen=True, eq=False)
class TrainResult:
    """The trained model (not yet saved), its metadata and its held-out report, scored as the line will run it."""

    model: VGG16CAM
    meta: ModelMeta
    report: EvalReport
    history: tuple[EpochReport, ...]
    skipped: tuple[str, ...] = field(default=())
    seconds: float = 0.0
    calibration: np.ndarray | None = None  # a few resized training images, good and defective, saved with the model
    precision: str = "fp32"  # the precision the held-out report was scored in: the one the line will run
    precision_note: str = ""
    ood: OodStats | None = None  # the out-of-distribution guard's statistics, saved with the model

    def loaded(self, path: Path | None = None, sha256: str = "") -> LoadedModel:
        """The trained model as a LoadedModel (path and sha256 once it is saved)."""
        return LoadedModel(self.model, self.meta, path or Path("<in memory>"), sha256, self.calibration, self.ood)


TrainEvent = DataReady | StepReport | EpochReport | TrainResult


def calibration_images(images: np.ndarray, labels: np.ndarray, per_class: int = CALIBRATION_PER_CLASS) -> np.ndarray:
    """Up to per_class good and per_class defective training images, spread over the set, for int8 calibration."""
    picked = []
    for label in (0, 1):
        idx = np.flatnonzero(labels == label)
        if len(idx):
            picked.extend(idx[np.linspace(0, len(idx) - 1, min(per_class, len(idx))).round().astype(int)].tolist())
    return np.ascontiguousarray(images[sorted(set(picked))])


def _check_stop(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise Cancelled("training was cancelled; no model was saved")


class _StemCache:
    """Outputs of the frozen layers per sample, filled on first use (valid: frozen, eval-mode, no augmentation)."""

    def __init__(self, n: int, enabled: bool) -> None:
        self.enabled = enabled
        self.store: list[torch.Tensor | None] = [None] * n

    def features(self, model: VGG16CAM, idx: np.ndarray, x_of: Callable[[np.ndarray], torch.Tensor]) -> torch.Tensor:
        if not model.frozen_stem:
            return model.stem(x_of(idx))
        missing = [i for i in idx if self.store[i] is None]
        if missing or not self.enabled:
            with torch.no_grad():
                computed = model.stem(x_of(idx))
            if not self.enabled:
                return computed
            for i, t in zip(idx, computed):
                self.store[i] = t.clone()
        return torch.stack([self.store[i] for i in idx])


def _recalibrate_batch_norm(
    model: VGG16CAM, n: int, stem_out: Callable[[np.ndarray], torch.Tensor], stop: threading.Event | None
) -> None:
    """Re-estimate trained batch-norm statistics over the training set with the epoch's final weights.

    With few steps per epoch the running averages lag the weights, and the eval-mode model then
    disagrees with what training measured; an exact average over one pass fixes that.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    if not bns:
        return
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
    with torch.no_grad():
        for start in range(0, n, 32):
            _check_stop(stop)
            with GATE.model_call():
                model.block5(stem_out(np.arange(start, min(n, start + 32))))
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum


def train(
    dataset: DatasetIndex,
    config: TrainConfig = TrainConfig(),
    *,
    product: str,
    runtime: RuntimeOptions | None = None,
    stop: threading.Event | None = None,
) -> Iterator[TrainEvent]:
    """Split, load, fine-tune and evaluate; yields progress events and finally a TrainResult.

    The held-out report is scored in the precision the line will run the saved model in under runtime
    (default: auto on the training device), so thresholds calibrated from it hold on the line.
    Raises Cancelled as soon as `stop` is set; nothing is written to disk here.
    """
    t_start = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    device = resolve_device(config.device)
    model, origin = build_model(
        backbone=config.backbone, backbone_weights=config.backbone_weights, trainable=config.trainable
    )
    preprocess = Preprocess(config.image_size)
    split = split_dataset(dataset, test_fraction=config.test_fraction, seed=config.seed)
    if config.tile:  # a tile is a defect sample where the image's mask marks a pixel in it (tiled_data.py)
        check_masks(dataset.samples, dataset.root)
        tiles = dict(preprocess=preprocess, tile=config.tile, overlap=config.tile_overlap, workers=config.workers, stop=stop)
        train_data, test_data = balance_tiles(load_tiles(split.train, **tiles)), load_tiles(split.test, **tiles)
    else:
        train_data = load_samples(split.train, preprocess, workers=config.workers, stop=stop)
        test_data = load_samples(split.test, preprocess, workers=config.workers, with_masks=True, stop=stop)
    skipped = train_data.errors + test_data.errors
    labels = np.array([s.label for s in train_data.samples])
    if len(set(labels.tolist())) < 2:
        raise DatasetError("the training split needs readable good and defective images")
    yield DataReady(
        n_train=len(train_data.samples),
        n_test=len({s.path for s in test_data.samples}),  # images (a tiled split holds several tiles of each)
        counts=dataset.counts(),
        skipped=skipped,
        device=str(device),
        backbone_origin=origin.describe(),
    )

    model.to(device)
    if device.type in ("cpu", "cuda"):
        model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr)
    criterion = nn.CrossEntropyLoss(weight=torch.tensor(config.class_weights, dtype=torch.float32, device=device))
    per_sample = 512 * (config.image_size // 16) ** 2 * 4
    use_cache = config.cache_features and per_sample * (len(labels) + len(test_data.samples)) <= CACHE_LIMIT_BYTES
    train_cache = _StemCache(len(labels), use_cache)
    test_cache = _StemCache(len(test_data.samples), use_cache)
    test_labels = torch.tensor([s.label for s in test_data.samples], device=device)

    def inputs(data: LoadedSamples) -> Callable[[np.ndarray], torch.Tensor]:
        return lambda idx: preprocess.normalize(torch.from_numpy(data.images[idx]).to(device))

    x_train, x_test = inputs(train_data), inputs(test_data)
    y_train = torch.from_numpy(labels).to(device)
    history: list[EpochReport] = []
    n = len(labels)
    steps = (n + config.batch_size - 1) // config.batch_size
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        order = rng.permutation(n)
        loss_sum = correct = 0.0
        for step in range(steps):
            _check_stop(stop)
            idx = order[step * config.batch_size : (step + 1) * config.batch_size]
            with GATE.model_call():  # another thread may be tracing a model for int8 (see trace_gate)
                logits = model.forward_head(model.block5(train_cache.features(model, idx, x_train)))
            loss = criterion(logits, y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_value = loss.item()
            loss_sum += loss_value * len(idx)
            correct += float((logits.detach().argmax(1) == y_train[idx]).sum())
            yield StepReport(epoch, config.epochs, step + 1, steps, loss_value)
        _recalibrate_batch_norm(model, n, lambda idx: train_cache.features(model, idx, x_train), stop)
        model.eval()
        test_loss = test_correct = 0.0
        with torch.no_grad():
            for start in range(0, len(test_labels), config.batch_size):
                _check_stop(stop)
                idx = np.arange(start, min(start + config.batch_size, len(test_labels)))
                with GATE.model_call():
                    logits = model.forward_head(model.block5(test_cache.features(model, idx, x_test)))
                test_loss += float(criterion(logits, test_labels[idx])) * len(idx)
                test_correct += float((logits.argmax(1) == test_labels[idx]).sum())
        train_acc = correct / n
        report = EpochReport(
            epoch=epoch,
            epochs=config.epochs,
            train_loss=loss_sum / n,
            train_accuracy=train_acc,
            test_loss=test_loss / max(1, len(test_labels)),
            test_accuracy=test_correct / max(1, len(test_labels)),
            seconds=time.perf_counter() - t0,
            early_stop=train_acc >= config.early_stop_accuracy,
        )
        history.append(report)
        yield report
        if report.early_stop:
            break

    _check_stop(stop)
    model.eval()
    root = Path(dataset.root)
    meta = ModelMeta(
        product=product,
        backbone=config.backbone,
        backbone_weights={"kind": origin.kind, "detail": origin.detail},
        preprocess=preprocess.to_dict(),
        trainable=config.trainable,
        dataset={
            **dataset.summary(),
            "split_seed": split.seed,
            "test_fraction": split.test_fraction,
            "held_out": list(dict.fromkeys(str(s.path.relative_to(root)) for s in test_data.samples)),  # tiles: once
        },
        training={
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
            "epochs_run": len(history),
            "device": str(device),
            "seconds": round(time.perf_counter() - t_start, 1),
            "history": [asdict(h) for h in history],
            "skipped_files": list(skipped),
        },
        tile=config.tile or None,
        tile_overlap=config.tile_overlap if config.tile else 0,
    )
    calibration = calibration_images(train_data.images, labels)
    guard = fit_guard(model, "cam", preprocess, train_data.images, batch_size=config.batch_size, device=device,
                      source=f"{n} training images (good and defective)", stop=stop)  # fmt: skip
    if guard is not None:
        meta = replace(meta, ood=guard.to_meta(), ood_limit=guard.limit)
    # int8 is checked against fp32 on the held-out images first and the check stored with the model; the
    # report is then scored in the precision the precision policy picks for the saved model, as the line will.
    in_memory = with_int8_check(LoadedModel(model, meta, Path("<in memory>"), "", calibration, guard), test_data.images)
    _check_stop(stop)
    chosen = choose_runtime(in_memory, runtime or RuntimeOptions(device=str(device)))
    inspector = RecordingInspector(in_memory, chosen)
    if config.tile:  # the held-out whole images, tile by tile, as the line will inspect them
        kept = {s.path for s in test_data.samples}
        held = [s for s in split.test if s.path in kept]
        report, cams, _ = evaluate_tiled(inspector, held, workers=config.workers, stop=stop)
    else:
        held, cams = test_data.samples, inspector.cams
        report = evaluate_loaded(inspector, test_data, batch_size=config.batch_size, stop=stop)
    _check_stop(stop)
    meta = replace(
        in_memory.meta,
        metrics=report.metrics(),
        training={**in_memory.meta.training, "evaluated_in": chosen.precision},
        heat_scale=_heat_scale(cams, [s.label for s in held], f"{len(held)} held-out images at training"),
    )
    model.to(memory_format=torch.contiguous_format)
    yield TrainResult(
        model, meta, report, tuple(history), skipped, time.perf_counter() - t_start, calibration, chosen.precision, chosen.note,
        guard,
    )


def _heat_scale(cams, labels, source: str) -> dict:
    """The absolute heat scale measured on the held-out maps, as stored in the model file; empty when they cannot give one."""
    try:
        return measure_cam_scale(cams, labels, source=source).to_dict()
    except ScaleError:  # e.g. a held-out split without defective images: heatmaps stay stretched per image
        return {}


def fit(
    dataset: DatasetIndex,
    config: TrainConfig = TrainConfig(),
    *,
    product: str,
    runtime: RuntimeOptions | None = None,
    stop: threading.Event | None = None,
    on_event: Callable[[TrainEvent], None] | None = None,
) -> TrainResult:
    """Run train() to the end and return its TrainResult, passing every event to on_event."""
    for event in train(dataset, config, product=product, runtime=runtime, stop=stop):
        if on_event is not None:
            on_event(event)
        if isinstance(event, TrainResult):
            return event
    raise RuntimeError("training ended without a result")
