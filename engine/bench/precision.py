"""The precision check: a reduced precision against fp32 on the same files, judged by the one agreement gate."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.inference.agreement import PRECISION_GATE, Agreement, agreement_from_scores, correlation
from engine.inference.inspector import Inspector
from engine.inference.runtime import cpu_has_native_bf16
from engine.modelfile import LoadedModel


def _agreement_dict(a: Agreement) -> dict:
    """An Agreement as the JSON has always had it (None where no image was compared)."""
    seen = a.images > 0
    return {
        "images": a.images,
        "verdict_agreement": round(a.verdict_agreement, 4) if seen else None,
        "heatmap_correlation_mean": round(a.heatmap_correlation_mean, 5) if seen else None,
        "heatmap_correlation_min": round(a.heatmap_correlation_min, 5) if seen else None,
        "max_abs_p_diff": round(a.max_abs_p_diff, 5),
    }


@dataclass(frozen=True)
class PrecisionCheck:
    """How a reduced precision agrees with fp32, over all images and per real set."""

    reduced: str
    overall: Agreement
    sets: tuple[tuple[str, Agreement], ...]

    @property
    def agrees(self) -> bool:
        return self.overall.agrees

    def to_dict(self) -> dict:
        return {
            "reduced": self.reduced,
            **_agreement_dict(self.overall),
            "sets": {name: _agreement_dict(a) for name, a in self.sets},
            "gate": dict(PRECISION_GATE),
            "agrees": self.agrees,
        }


def check_precision(
    loaded: LoadedModel,
    device: torch.device,
    reduced: str,
    sets: Sequence[tuple[str, Sequence[Path]]],
    *,
    batch_size: int,
    workers: int,
    calibration: Sequence[np.ndarray] | None = None,
) -> PrecisionCheck:
    """Verdicts, probabilities and heatmaps of `reduced` precision vs fp32 on the same files."""
    ref = Inspector(loaded, device=device, precision="fp32")
    low = Inspector(loaded, device=device, precision=reduced, calibration=calibration)
    threshold = ref.thresholds.decision
    p_ref_all: list[float] = []
    p_low_all: list[float] = []
    corrs_all: list[float] = []
    per_set = []
    for name, paths in sets:
        p_ref: list[float] = []
        p_low: list[float] = []
        corrs: list[float] = []
        for a, b in zip(
            ref.inspect_files(paths, batch_size=batch_size, workers=workers),
            low.inspect_files(paths, batch_size=batch_size, workers=workers),
        ):
            if a.inspection is None or b.inspection is None:
                continue
            p_ref.append(a.inspection.p_anomaly)
            p_low.append(b.inspection.p_anomaly)
            corrs.append(correlation(a.inspection.heatmap, b.inspection.heatmap))
        per_set.append((name, agreement_from_scores(p_ref, p_low, corrs, threshold)))
        p_ref_all += p_ref
        p_low_all += p_low
        corrs_all += corrs
    return PrecisionCheck(
        reduced=reduced,
        overall=agreement_from_scores(p_ref_all, p_low_all, corrs_all, threshold),
        sets=tuple(per_set),
    )


def reduced_candidate(device: torch.device, *, quick: bool = False) -> str | None:
    """The reduced precision worth checking here: fp16 on CUDA, bf16 on CPUs with native bf16 (any CPU when quick)."""
    if device.type == "cuda":
        return "fp16"
    if device.type == "cpu" and (quick or cpu_has_native_bf16()):
        return "bf16"
    return None
