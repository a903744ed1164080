"""Device choice and how the CPU is shared between torch, OpenCV and the decode threads."""

from __future__ import annotations

import cv2
import pytest
import torch

from engine.inference import device as dev
from engine.inference.device import decode_workers, resolve_device


@pytest.mark.parametrize(
    ("cores", "torch_threads", "expected"),
    [(2, 2, 1), (2, 1, 1), (8, 4, 4), (16, 8, 4), (1, 1, 1)],
)
def test_cpu_batch_runs_decode_on_the_cores_torch_leaves_free(monkeypatch, cores, torch_threads, expected):
    monkeypatch.setattr(dev.os, "cpu_count", lambda: cores)
    monkeypatch.setattr(dev.torch, "get_num_threads", lambda: torch_threads)
    assert decode_workers(torch.device("cpu")) == expected


def test_a_gpu_station_decodes_with_up_to_four_threads(monkeypatch):
    monkeypatch.setattr(dev.os, "cpu_count", lambda: 16)
    assert decode_workers(torch.device("cuda")) == 4


def test_an_inspector_on_the_cpu_keeps_opencv_off_torchs_cores(model_file):
    from engine.inference import Inspector

    previous = cv2.getNumThreads()
    try:
        cv2.setNumThreads(2)
        Inspector.from_file(model_file, device="cpu", precision="fp32")
        assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(previous)


def test_unknown_device_names_the_allowed_ones():
    with pytest.raises(ValueError, match="auto, cpu, cuda, mps"):
        resolve_device("tpu")
