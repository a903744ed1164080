"""Training's last step for the out-of-distribution guard: the feature statistics of images the model was made from."""
from __future__ import annotations

import threading

import numpy as np
import torch

from engine.data.preprocess import Preprocess
from engine.errors import Cancelled
from engine.inference.ood import VIEWS_OF_METHOD, OodError, OodStats, fit_ood, view_vectors
from engine.inference.trace_gate import GATE


def guard_vectors(model, method: str, preprocess: Preprocess, images: np.ndarray, *, batch_size: int,
                  device: torch.device, stop: threading.Event | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """{view: (N, d)} vectors of resized uint8 images, from the same forward_features the Inspector runs (fp32)."""
    kinds = VIEWS_OF_METHOD[method]
    out: dict[str, list] = {k: [] for k in kinds}
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            if stop is not None and stop.is_set():
                raise Cancelled("training was cancelled")
            x = preprocess.normalize(torch.from_numpy(images[start : start + batch_size]).to(device))
            features = None
            if "pooled-conv5" in kinds:
                with GATE.model_call():
                    features = model.forward_features(x)
            for k in kinds:
                out[k].append(view_vectors(k, x, features).cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items() if v}


def fit_guard(model, method: str, preprocess: Preprocess, images: np.ndarray, *, batch_size: int, device: torch.device,
              source: str, stop: threading.Event | None = None) -> OodStats | None:  # fmt: skip
    """The guard's statistics on these images, or None (guard off, said by the model description) when too few."""
    vectors = guard_vectors(model, method, preprocess, images, batch_size=batch_size, device=device, stop=stop)
    try:
        stats = fit_ood(vectors)
    except OodError:
        return None
    for view in stats.views:
        view.info["fitted_on"] = source
    return stats
