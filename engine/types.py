"""Typed results that cross every boundary: boxes, inspections, frames."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Numeric precisions an Inspector runs in (engine.inference.inspector says how auto picks one).
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
PRECISION_HELP = (
    "numeric precision (default auto: fp16 on CUDA; on CPUs with VNNI, int8 where the model file's held-out "
    "check and calibration images show it agrees with fp32; else bf16 on CPUs with native bf16, else fp32)"
)

GOOD = "GOOD"
ANOMALY = "ANOMALY"
ERROR = "ERROR"
CLASS_NAMES = ("Good", "Anomaly")


@dataclass(frozen=True)
class Box:
    """One hot heatmap region, in original-image pixels (x0, y0 inclusive; x1, y1 exclusive)."""

    x0: int
    y0: int
    x1: int
    y1: int
    score: float  # peak normalised heatmap value inside the region, 0..1

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def as_list(self) -> list:
        return [self.x0, self.y0, self.x1, self.y1, round(self.score, 4)]


@dataclass(frozen=True)
class Timings:
    """Milliseconds spent per stage for one inspection (batch stages shared evenly)."""

    preprocess_ms: float = 0.0
    model_ms: float = 0.0
    postprocess_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.model_ms + self.postprocess_ms


@dataclass(frozen=True, eq=False)
class Inspection:
    """The verdict on one image: GOOD or ANOMALY, its probability, heatmap and defect boxes."""

    verdict: str  # GOOD or ANOMALY
    p_anomaly: float
    threshold: float
    heatmap: np.ndarray  # float32 HxW in [0, 1], original image size, min-max normalised
    boxes: tuple[Box, ...]
    timings: Timings = field(default_factory=Timings)
    model_id: str = ""  # sha256 of the model file (first 16 hex digits)

    @property
    def is_anomaly(self) -> bool:
        return self.verdict == ANOMALY


@dataclass(frozen=True, eq=False)
class Frame:
    """One image from a source: RGB uint8 HxWx3, its position in the stream and where it came from."""

    image: np.ndarray
    index: int
    timestamp: float  # time.time() when read
    source_id: str  # camera index / URL, video path, or the image file path
    path: str | None = None  # set for file-backed frames
