"""A benchmark run's typed result and the targets it is judged against; to_dict() is the `--json` format."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from engine.bench.backends import BackendRow
from engine.bench.machine import Environment, Memory
from engine.bench.measure import EndToEnd, Live, ModelOnly, Reference
from engine.bench.precision import PrecisionCheck
from engine.bench.training import TrainingBench

TARGETS = {
    "end_to_end_vs_reference": (">=", 3.0, "end-to-end >= 3x the plain reference pipeline"),
    "end_to_end_vs_model_only": (">=", 0.9, "end-to-end >= 90% of model-only throughput"),
    "live_p95_ms": ("<=", 60.0, "live latency p95 at batch 1 <= 60 ms"),
    "training_cached_speedup": (">=", 3.0, "training epochs after the first >= 3x faster than plain"),
}


@dataclass(frozen=True)
class Target:
    """One of TARGETS judged on an unrounded value; a quick run's verdict is never meaningful."""

    name: str
    text: str
    limit: float
    value: float | None
    met: bool | None
    meaningful: bool

    @classmethod
    def judge(cls, name: str, value: float | None, *, quick: bool) -> Target:
        """The target `name` judged on value (None: not measured, so neither met nor missed)."""
        if name not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}; got {name!r}")
        op, limit, text = TARGETS[name]
        met = None if value is None else bool(value >= limit if op == ">=" else value <= limit)
        return cls(
            name=name,
            text=text,
            limit=limit,
            value=None if value is None else round(value, 4),
            met=met,
            meaningful=not quick,
        )

    def to_dict(self) -> dict:
        return {"target": self.text, "limit": self.limit, "value": self.value, "met": self.met, "meaningful": self.meaningful}


@dataclass(frozen=True)
class ModelInfo:
    """Which model was timed, at which threshold, and how its precision was chosen."""

    file: str | None
    backbone: str
    weights: str | None
    input_size: int
    compiled: bool
    threshold_timed: float
    int8_calibration: str | None
    precision_note: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Ratios:
    """End to end against the reference and against model only, to 4 decimals (0.89972 must not read as 0.9)."""

    end_to_end_vs_reference: float | None
    end_to_end_vs_model_only: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BenchResult:
    """Everything one `visinspect bench` run measured."""

    quick: bool
    environment: Environment
    model: ModelInfo
    model_only_1: ModelOnly
    model_only_n: ModelOnly
    end_to_end: EndToEnd
    live: Live
    memory: Memory
    reference: Reference
    ratios: Ratios
    targets: tuple[Target, ...]
    training: TrainingBench | None = None
    precision_check: PrecisionCheck | None = None
    precision_check_trained: PrecisionCheck | None = None
    backends: tuple[BackendRow, ...] = ()  # model only per backend (torch, openvino), same model and precision option

    def target(self, name: str) -> Target:
        """The judged target `name` (one of TARGETS)."""
        for t in self.targets:
            if t.name == name:
                return t
        raise ValueError(f"target must be one of {', '.join(t.name for t in self.targets)}; got {name!r}")

    def to_dict(self) -> dict:
        """The JSON-ready dict `--json` writes (keys and nesting as documented in docs/benchmark.md)."""
        d = {
            "quick": self.quick,
            "environment": self.environment.to_dict(),
            "model": self.model.to_dict(),
            "model_only": {"batch_1": self.model_only_1.to_dict(), "batch_n": self.model_only_n.to_dict()},
        }
        if self.backends:
            d["backends"] = [row.to_dict() for row in self.backends]
        d |= {
            "end_to_end": self.end_to_end.to_dict(),
            "live": self.live.to_dict(),
            "memory": self.memory.to_dict(),
            "reference": self.reference.to_dict(),
            "ratios": self.ratios.to_dict(),
            "training": self.training.to_dict() if self.training else None,
            "precision_check": self.precision_check.to_dict() if self.precision_check else None,
        }
        if self.precision_check_trained is not None:
            d["precision_check_trained"] = self.precision_check_trained.to_dict()
        d["targets"] = {t.name: t.to_dict() for t in self.targets}
        return d
