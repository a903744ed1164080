"""Training speed: seconds per epoch of the founding recipe, plain loop against the frozen-stem feature cache."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.modelfile import LoadedModel


@dataclass(frozen=True)
class TrainingBench:
    """Epoch seconds of both loops (the first epoch fills the cache, later ones use it) and whether they agree."""

    data: str
    backbone: str
    image_size: int
    epochs: int
    batch_size: int
    plain_epoch_s: tuple[float, ...]
    cached_epoch_s: tuple[float, ...]
    plain_later_epoch_s: float | None
    cached_later_epoch_s: float | None
    speedup: float | None
    max_train_loss_diff: float
    test_accuracy_plain: float | None
    test_accuracy_cached: float | None

    def to_dict(self) -> dict:
        return {**asdict(self), "plain_epoch_s": list(self.plain_epoch_s), "cached_epoch_s": list(self.cached_epoch_s)}


def _later_mean(seconds: list[float]) -> float | None:
    """Mean seconds of the epochs after the first (None with a single epoch)."""
    return float(np.mean(seconds[1:])) if len(seconds) > 1 else None


def bench_training(
    data: Path, *, image_size: int, epochs: int, batch_size: int, device: str, backbone: str = "vgg16"
) -> tuple[TrainingBench, LoadedModel | None]:
    """Epoch seconds of the founding recipe (frozen stem, random init), plain loop vs feature cache.

    Also returns the model the cached run trained (used for a second precision check).
    """
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
        history: list[EpochReport] = []
        for event in train(index, config, product="bench"):
            if isinstance(event, EpochReport):
                history.append(event)
            elif isinstance(event, TrainResult):
                trained = event.loaded(Path("<trained in the benchmark>"))
        runs[mode] = history
    plain, cached = runs["plain"], runs["cached"]
    plain_s = _later_mean([e.seconds for e in plain])
    cached_s = _later_mean([e.seconds for e in cached])
    loss_diff = max((abs(p.train_loss - c.train_loss) for p, c in zip(plain, cached)), default=0.0)
    result = TrainingBench(
        data=str(data),
        backbone=backbone,
        image_size=image_size,
        epochs=epochs,
        batch_size=batch_size,
        plain_epoch_s=tuple(round(e.seconds, 3) for e in plain),
        cached_epoch_s=tuple(round(e.seconds, 3) for e in cached),
        plain_later_epoch_s=round(plain_s, 3) if plain_s is not None else None,
        cached_later_epoch_s=round(cached_s, 3) if cached_s is not None else None,
        speedup=round(plain_s / cached_s, 3) if plain_s and cached_s else None,
        max_train_loss_diff=round(loss_diff, 6),
        test_accuracy_plain=plain[-1].test_accuracy if plain else None,
        test_accuracy_cached=cached[-1].test_accuracy if cached else None,
    )
    return result, trained
