"""Where product models, offline backbone weights and user data live."""
from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir

_REPO_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


def weights_dir() -> Path:
    """Folder of product model files: $VISINSPECT_WEIGHTS, the checkout's weights/, or the user data folder."""
    env = os.environ.get("VISINSPECT_WEIGHTS")
    if env:
        return Path(env)
    if _REPO_WEIGHTS.is_dir():
        return _REPO_WEIGHTS
    return Path(user_data_dir("VisInspect")) / "weights"


def backbones_dir() -> Path:
    """Folder searched for offline ImageNet backbone files such as vgg16-397923af.pth."""
    return weights_dir() / "backbones"


def data_dir() -> Path:
    """Per-user folder for the results log, demo data and logs ($VISINSPECT_DATA overrides)."""
    env = os.environ.get("VISINSPECT_DATA")
    return Path(env) if env else Path(user_data_dir("VisInspect"))
