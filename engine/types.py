"""Typed values that cross every boundary: verdicts, boxes, inspections, frames, model identities, runtime options."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine.inference.localize import CamScale
    from engine.thresholds import Thresholds

# Numeric precisions an Inspector runs in (engine.inference.runtime says how auto picks one).
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
PRECISION_HELP = (
    "numeric precision (default auto: fp16 on CUDA; on CPUs with VNNI, int8 where the model file's held-out "
    "check and calibration images show it agrees with fp32; else bf16 on CPUs with native bf16, else fp32)"
)
DEVICE_HELP = "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps"
BACKENDS = ("torch", "openvino")
BACKEND_HELP = "torch (default), or openvino on CPUs: used where it agrees with torch fp32 on the model's check images"
CLASS_NAMES = ("Good", "Anomaly")
BACKBONE_NAMES = ("vgg16", "vgg16_bn")
TRAINABLE_CHOICES = ("conv5", "head", "all")


def check_image_size(size: int) -> int:
    """A model input size: a multiple of 32, at least 32 (VGG16 halves it five times); ValueError otherwise."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 32 or size % 32:
        raise ValueError(f"image size must be a multiple of 32, at least 32; got {size}")
    return size


class Verdict(str, Enum):
    """What the station says about one part; ERROR when it could not be inspected.

    REVIEW: p(anomaly) inside the review band (accept <= p < decision), for a person to judge.
    NOT_PRODUCT: the frame is far from the training images' features (out-of-distribution guard).
    """

    GOOD = "GOOD"
    ANOMALY = "ANOMALY"
    ERROR = "ERROR"
    REVIEW = "REVIEW"
    NOT_PRODUCT = "NOT_PRODUCT"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, text: str | Verdict) -> Verdict:
        """'GOOD', 'ANOMALY', 'ERROR', 'REVIEW' or 'NOT_PRODUCT' (any case, '-' or ' ' for '_') -> Verdict;
        ValueError naming the allowed values."""
        try:
            return cls(str(text).strip().upper().replace("-", "_").replace(" ", "_"))
        except ValueError:
            raise ValueError(f"verdict must be one of {', '.join(v.value for v in cls)}; got {text!r}") from None


class JobOutcome(str, Enum):
    """How a long job ended."""

    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


class HeatScale(str, Enum):
    """How a heatmap is coloured: against the model's absolute scale (good parts cool), or stretched per image."""

    ABSOLUTE = "absolute"
    PER_IMAGE = "per_image"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, text: str | HeatScale) -> HeatScale:
        """'absolute' or 'per_image' (any case, '-' or '_') -> HeatScale; ValueError naming the allowed values."""
        try:
            return cls(str(text).lower().replace("-", "_"))
        except ValueError:
            raise ValueError(f"heat scale must be one of {', '.join(v.value for v in cls)}; got {text!r}") from None


@dataclass(frozen=True)
class HeatView:
    """How an inspection's heatmap is shown: colour = clip(heatmap * gain + offset, 0, 1), on `scale`, said in `caption`."""

    scale: HeatScale
    gain: float
    offset: float
    caption: str

    def apply(self, heatmap: np.ndarray) -> np.ndarray:
        """The heatmap on this view's scale, float32 0..1."""
        if self.gain == 1.0 and self.offset == 0.0:
            return heatmap
        return np.clip(heatmap * np.float32(self.gain) + np.float32(self.offset), 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class Box:
    """One hot heatmap region, in original-image pixels (x0, y0 inclusive; x1, y1 exclusive)."""

    x0: int
    y0: int
    x1: int
    y1: int
    score: float  # peak normalised heatmap value inside the region, 0..1 (the image's own peak is 1)
    level: float | None = None  # the same peak on the model's absolute heat scale (may pass 1); None without one

    def label(self, scale: HeatScale = HeatScale.ABSOLUTE) -> str:
        """The number drawn beside the box: its own peak on the absolute scale, or on the per-image stretch."""
        value = self.level if HeatScale.parse(scale) is HeatScale.ABSOLUTE and self.level is not None else self.score
        return f"{value:.2f}"

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def as_list(self) -> list:
        """[x0, y0, x1, y1, score] and, when the box has one, its absolute level."""
        head = [self.x0, self.y0, self.x1, self.y1, round(self.score, 4)]
        return head if self.level is None else [*head, round(self.level, 4)]

    @classmethod
    def from_list(cls, values) -> Box:
        """The inverse of as_list (as stored in CSV files and the results log; the 5-number form of older logs too)."""
        level = float(values[5]) if len(values) > 5 and values[5] is not None else None
        return cls(int(values[0]), int(values[1]), int(values[2]), int(values[3]), float(values[4]), level)


@dataclass(frozen=True)
class ModelRef:
    """Which model file produced a result: its absolute path and the sha256 of its bytes (one format everywhere)."""

    path: str
    sha256: str = ""  # empty for a model that exists only in memory (during training, in the benchmark)

    @property
    def id(self) -> str:
        """The short form shown to people: the first 16 hex digits of the sha256."""
        return self.sha256[:16]

    def same_model(self, other: ModelRef | None) -> bool:
        """True when both name the same model file: the same sha256 (older logs hold 16 hex digits of it), else path."""
        if other is None:
            return False
        if self.sha256 and other.sha256:
            return self.sha256.startswith(other.sha256) or other.sha256.startswith(self.sha256)
        return not self.sha256 and not other.sha256 and self.path == other.path


IN_MEMORY = ModelRef("<in memory>")


@dataclass(frozen=True)
class RuntimeOptions:
    """Where and in which numeric precision models run; chosen once per station or command, used by every job."""

    device: str = "auto"
    precision: str = "auto"
    backend: str = "torch"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {self.backend!r}")


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
    With the model's absolute heat scale and the raw CAM range, every region carries its own level on
    that scale (filled in here for regions found without one, so every copy of an inspection agrees).
    """

    p_anomaly: float
    thresholds: Thresholds
    heatmap: np.ndarray  # float32 HxW in [0, 1], original image size, min-max normalised (the founding map)
    regions: tuple[Box, ...]  # hot regions at thresholds.box, biggest peak first, whatever the verdict
    model: ModelRef = IN_MEMORY
    timings: Timings = field(default_factory=Timings)
    cam_range: tuple[float, float] | None = None  # the raw CAM values the heatmap's 0 and 1 stand for
    scale: CamScale | None = None  # the model's absolute heat scale; None for a model file without one
    ood_score: float | None = None  # how far from the training images (larger = less alike; 1.0 = the usual limit); None: unknown

    def __post_init__(self) -> None:
        """Give every region without one its own level on the absolute scale (a logged box keeps the level it had)."""
        if self.scale is not None and self._raw_span() is not None and any(b.level is None for b in self.regions):
            lo, span = self._raw_span()
            levelled = tuple(b if b.level is not None else replace(b, level=self.scale.level(lo + b.score * span)) for b in self.regions)
            object.__setattr__(self, "regions", levelled)

    def _raw_span(self) -> tuple[float, float] | None:
        """(raw value of heatmap 0, raw span of heatmap 0..1), or None when the map's raw range is unknown."""
        if self.cam_range is None:
            return None
        lo, hi = self.cam_range
        return (lo, hi - lo) if np.isfinite(lo) and np.isfinite(hi) else None

    def heat_view(self, wanted: HeatScale = HeatScale.ABSOLUTE) -> HeatView:
        """How to colour this heatmap on the scale wanted; per image, saying so, when the model has no absolute scale."""
        if HeatScale.parse(wanted) is HeatScale.ABSOLUTE:
            raw = self._raw_span()
            if self.scale is not None and raw is not None:
                lo, span = raw
                width = self.scale.high - self.scale.low
                caption = f"heat: absolute (good parts ≤ {self.scale.good_level:.2f}, typical defect 1.00)"
                return HeatView(HeatScale.ABSOLUTE, span / width, (lo - self.scale.low) / width, caption)
            why = "this image's heat is not a number"
            if self.scale is None:
                why = "this model has no absolute scale; calibrating it adds one"
            return HeatView(HeatScale.PER_IMAGE, 1.0, 0.0, f"heat: stretched per image ({why})")
        return HeatView(HeatScale.PER_IMAGE, 1.0, 0.0, "heat: stretched per image (its hottest point is 1.00)")

    @property
    def verdict(self) -> Verdict:
        """NOT_PRODUCT beyond the guard's limit, else ANOMALY / REVIEW / GOOD by p(anomaly) (Thresholds.verdict)."""
        return self.thresholds.verdict(self.p_anomaly, ood_score=self.ood_score)

    @property
    def boxes(self) -> tuple[Box, ...]:
        """The defect boxes shown: the regions of an ANOMALY, none for any other verdict."""
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
    encoded: bytes | None = None  # the file's own JPEG bytes when image is exactly their pixels: saved as they are
