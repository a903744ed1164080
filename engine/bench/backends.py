"""The benchmark's backends side by side: the same model at the same precision option on torch and on OpenVINO.

Each backend gets the model-only measurement (batch 1 and batch N). OpenVINO runs behind its agreement gate
(engine.inference.openvino_backend); where it falls back to torch, or is not installed, its row says why
instead of timing torch twice.
"""
from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from engine.bench.measure import ModelOnly, bench_model_only
from engine.inference.inspector import Inspector
from engine.inference.runtime import choose_runtime
from engine.modelfile import LoadedModel
from engine.types import RuntimeOptions

OPENVINO_MISSING = "OpenVINO is not installed: pip install 'visinspect[export]' adds the openvino row"


@dataclass(frozen=True)
class BackendRow:
    """One backend's model-only speed at the precision it chose (None, with why_not, where it was not measured)."""

    backend: str
    precision: str | None
    note: str
    batch_1: ModelOnly | None = None
    batch_n: ModelOnly | None = None
    why_not: str = ""

    @property
    def measured(self) -> bool:
        return self.batch_1 is not None

    def to_dict(self) -> dict:
        return {
            "backend": self.backend,
            "precision": self.precision,
            "note": self.note,
            "measured": self.measured,
            "batch_1": self.batch_1.to_dict() if self.batch_1 else None,
            "batch_n": self.batch_n.to_dict() if self.batch_n else None,
            "why_not": self.why_not,
        }

    def describe(self) -> str:
        """The report's value column: both rates, or why this backend was not timed."""
        if not self.measured:
            return f"not measured: {self.why_not}"
        b1, bn = self.batch_1, self.batch_n
        why = f"   ({self.note})" if self.note and self.backend != "torch" else ""
        return f"{b1.images_per_s:.2f} img/s at batch 1, {bn.images_per_s:.2f} img/s at batch {bn.batch_size}{why}"


def openvino_installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


def _check_images(timed: LoadedModel, calibration: Sequence[np.ndarray] | None, *, quick: bool) -> Sequence[np.ndarray] | None:
    """Images for OpenVINO's gate: the run's calibration images, the model file's, or (random-init model) borrowed ones."""
    if calibration is not None:
        return calibration
    if timed.calibration is not None and len(timed.calibration):
        return None  # choose_runtime takes the model file's own
    from engine.bench.inputs import calibration_images

    with tempfile.TemporaryDirectory(prefix="visinspect-ov-check-") as tmp:
        return calibration_images(4 if quick else 16, [], Path(tmp))[0]


def bench_backends(
    timed: LoadedModel,
    options: RuntimeOptions,
    torch_row: BackendRow,
    *,
    calibration: Sequence[np.ndarray] | None,
    batch_size: int,
    seconds: float,
    min_iters: int,
    quick: bool = False,
    say: Callable[[str], None] = lambda msg: None,
) -> tuple[BackendRow, ...]:
    """torch_row (already measured) and OpenVINO's row for the same model and precision option."""
    if not openvino_installed():
        return torch_row, BackendRow("openvino", None, "", why_not=OPENVINO_MISSING)
    try:
        runtime = choose_runtime(timed, replace(options, backend="openvino"), calibration=_check_images(timed, calibration, quick=quick))
    except ValueError as exc:  # a device or precision OpenVINO does not run (CUDA, fp16)
        return torch_row, BackendRow("openvino", None, "", why_not=str(exc).splitlines()[0])
    if runtime.backend != "openvino":
        return torch_row, BackendRow("openvino", None, runtime.note, why_not=runtime.note)
    inspector = Inspector(timed, runtime)
    say(f"openvino {runtime.precision}, model only, batch 1 and {batch_size} ...")
    b1 = bench_model_only(inspector, 1, seconds, min_iters=min_iters)
    bn = bench_model_only(inspector, batch_size, seconds, min_iters=min_iters)
    return torch_row, BackendRow("openvino", runtime.precision, runtime.note, b1, bn)
