"""Inference: Inspector, heatmap localisation and device choice (imported lazily to keep imports acyclic)."""
from importlib import import_module

_EXPORTS = {
    "FileResult": "engine.inference.inspector",
    "Inspector": "engine.inference.inspector",
    "ModelOutput": "engine.inference.inspector",
    "describe_device": "engine.inference.device",
    "resolve_device": "engine.inference.device",
    "heatmap_to_boxes": "engine.inference.localize",
    "normalize_heatmap": "engine.inference.localize",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'engine.inference' has no attribute {name!r}")
