"""The machine a benchmark ran on: CPU, cores, memory, load, library versions and the runtime the inspector chose."""
from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import cv2
import torch

from engine.inference.inspector import Inspector
from engine.inference.runtime import cpu_has_native_bf16


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")) and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def peak_rss_mib() -> float | None:
    """Peak resident memory of this process so far, in MiB (None where the platform cannot tell)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20) if sys.platform == "darwin" else peak / 1024, 1)


def load_average() -> float | None:
    """The 1-minute load average (None where the platform has none): other work skews every timing."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


@dataclass(frozen=True)
class Environment:
    """Where and when the numbers were measured, so two runs can be compared."""

    date: str
    cpu_model: str
    cores: int
    torch_threads: int
    torch_version: str
    opencv_version: str
    python: str
    platform: str
    device: str
    device_type: str
    precision: str
    cpu_native_bf16: bool
    mkldnn: bool
    load_average_1min: float | None
    load_average_1min_end: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def environment(inspector: Inspector) -> Environment:
    """The machine now, and the device and precision the inspector's runtime runs in."""
    runtime = inspector.runtime
    return Environment(
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        cpu_model=cpu_model(),
        cores=usable_cores(),
        torch_threads=torch.get_num_threads(),
        torch_version=torch.__version__,
        opencv_version=cv2.__version__,
        python=platform.python_version(),
        platform=platform.platform(),
        device=runtime.device_name,
        device_type=runtime.device.type,
        precision=runtime.precision,
        cpu_native_bf16=cpu_has_native_bf16(),
        mkldnn=bool(torch.backends.mkldnn.is_available()),
        load_average_1min=load_average(),
    )


@dataclass(frozen=True)
class Memory:
    """Peak memory after the inspection parts and for the whole run (CUDA's peak allocation on a GPU)."""

    peak_rss_mib_inspection: float | None
    peak_rss_mib: float | None
    cuda_max_allocated_mib: float | None = None

    def to_dict(self) -> dict:
        d = {"peak_rss_mib_inspection": self.peak_rss_mib_inspection, "peak_rss_mib": self.peak_rss_mib}
        if self.cuda_max_allocated_mib is not None:
            d["cuda_max_allocated_mib"] = self.cuda_max_allocated_mib
        return d
