"""Pick the compute device (CUDA on GPU stations, else Apple MPS, else CPU) and describe it."""
from __future__ import annotations

import os
import platform

import cv2
import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> cuda, then mps, then cpu; an explicit device that is not present is a ValueError."""
    if isinstance(device, torch.device):
        return device
    name = str(device).lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":")[0]
    if kind not in DEVICE_CHOICES:
        raise ValueError(f"device must be one of {', '.join(DEVICE_CHOICES)}; got {device!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use auto or cpu")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' was asked for but is not available; use auto or cpu")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    """Human name for the status bar: 'CUDA: NVIDIA H100', 'CPU: x86_64, 2 threads'."""
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU: {platform.machine()}, {torch.get_num_threads()} threads"


def decode_workers(device: torch.device) -> int:
    """Decode threads for batch runs: on a CPU only the cores torch leaves free (at least 1), else up to 4.

    On a 2-core CPU torch's two threads already fill the machine; more decode threads only preempt
    them (measured with int8: end to end 89.9% of model-only with 2 decode threads and OpenCV's own
    pool, 91.3% with 1 thread and OpenCV single-threaded; docs/benchmark.md).
    """
    cores = os.cpu_count() or 1
    if device.type == "cpu":
        return max(1, min(4, cores - torch.get_num_threads()))
    return max(1, min(4, cores))


def share_cpu_with_torch(device: torch.device) -> None:
    """Keep OpenCV single-threaded when torch computes on the CPU: its thread pool would fight torch's for the cores.

    Process-wide (OpenCV has one setting); called when an Inspector is made for the CPU.
    Decoding still runs in parallel with the model, in the Inspector's own decode threads.
    """
    if device.type == "cpu":
        cv2.setNumThreads(1)
