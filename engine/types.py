"""Typed values that cross every boundary: verdicts, boxes, inspections, frames, model identities, runtime options."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine.thresholds import Thresholds

# Numeric precisions an Inspector runs in (engine.inference.runtime says how auto picks one).
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
PRECISION_HELP = (
    "numeric precision (default auto: fp16 on CUDA; on CPUs with VNNI, int8 where the model file's held-out "
    "check and calibration images show it agrees with fp32; else bf16 on CPUs with native bf16, else fp32)"
)
DEVICE_HELP = "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps"
CLASS_NAMES = ("Good", "Anomaly")
BACKBONE_NAMES = ("vgg16", "vgg16_bn")
TRAINABLE_CHOICES = ("conv5", "head", "all")


def check_image_size(size: int) -> int:
    """A model input size: a multiple of 32, at least 32 (VGG16 halves it five times); ValueError otherwise."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 32 or size % 32:
        raise ValueError(f"image size must be a multiple of 32, at least 32; got {size}")
    return size


class Verdict(str, Enum):
    """What the station says about one part; ERROR when it could not be inspected."""

    GOOD = "GOOD"
    ANOMALY = "ANOMALY"
    ERROR = "ERROR"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, text: str | Verdict) -> Verdict:
        """'GOOD', 'ANOMALY' or 'ERROR' (any case) -> Verdict; ValueError naming the allowed values."""
        try:
            return cls(str(text).upper())
        except ValueError:
            raise ValueError(f"verdict must be one of {', '.join(v.value for v in cls)}; got {text!r}") from None


class JobOutcome(str, Enum):
    """How a long job ended."""

    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


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

    @classmethod
    def from_list(cls, values) -> Box:
        """The inverse of as_list (as stored in CSV files and the results log)."""
        return cls(int(values[0]), int(values[1]), int(values[2]), int(values[3]), float(values[4]))


@dataclass(frozen=True)
class ModelRef:
    """Which model file produced a result: its absolute path and the sha256 of its bytes (one format everywhere)."""

    path: str
    sha256: str = ""  # empty for a model that exists only in memory (during training, in the benchmark)

    @property
    def id(self) -> str:
        """The short form shown to people: the first 16 hex digits of the sha256."""
        return self.sha256[:16]


IN_MEMORY = ModelRef("<in memory>")


@dataclass(frozen=True)
class RuntimeOptions:
    """Where and in which numeric precision models run; chosen once per station or command, used by every job."""

    device: str = "auto"
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")


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
    """The model's answer on one image, and the verdict and boxes it gives at its thresholds.

    p_anomaly and the regions (every hot heatmap region at the box threshold) do not depend on the
    decision threshold, so `at()` re-judges an inspection at any other threshold without the model.
    """

    p_anomaly: float
    thresholds: Thresholds
    heatmap: np.ndarray  # float32 HxW in [0, 1], original image size, min-max normalised
    regions: tuple[Box, ...]  # hot regions at thresholds.box, biggest peak first, whatever the verdict
    model: ModelRef = IN_MEMORY
    timings: Timings = field(default_factory=Timings)

    @property
    def verdict(self) -> Verdict:
        return self.thresholds.verdict(self.p_anomaly)

    @property
    def boxes(self) -> tuple[Box, ...]:
        """The defect boxes shown: the regions of an ANOMALY, none for a GOOD part."""
        return self.regions if self.verdict is Verdict.ANOMALY else ()

    @property
    def threshold(self) -> float:
        """The decision threshold this verdict was given at."""
        return self.thresholds.decision

    @property
    def is_anomaly(self) -> bool:
        return self.verdict is Verdict.ANOMALY

    @property
    def model_id(self) -> str:
        return self.model.id

    def at(self, thresholds: Thresholds) -> Inspection:
        """This inspection judged at other thresholds (regions are found again only when the box rule changed)."""
        if thresholds.same_regions(self.thresholds):
            return replace(self, thresholds=thresholds)
        return replace(self, thresholds=thresholds, regions=thresholds.regions(self.heatmap))


@dataclass(frozen=True, eq=False)
class Frame:
    """One image from a source: RGB uint8 HxWx3, its position in the stream and where it came from."""

    image: np.ndarray
    index: int
    timestamp: float  # time.time() when read
    source_id: str  # camera index / URL, video path, or the image file path
    path: str | None = None  # set for file-backed frames
