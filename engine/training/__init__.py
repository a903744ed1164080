"""Training: the founding fine-tuning recipe with progress events and cancel (imported lazily: the options are torch-free)."""
from importlib import import_module

_EXPORTS = {
    "TrainConfig": "engine.training.config",
    "DataReady": "engine.training.recipe",
    "EpochReport": "engine.training.recipe",
    "StepReport": "engine.training.recipe",
    "TrainResult": "engine.training.recipe",
    "fit": "engine.training.recipe",
    "train": "engine.training.recipe",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'engine.training' has no attribute {name!r}")
