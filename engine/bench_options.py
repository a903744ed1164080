"""The options of `visinspect bench`, in a module without torch so the CLI parses them before importing it."""

from __future__ import annotations

import argparse

from engine.types import PRECISION_HELP, PRECISIONS


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    """Every benchmark option, shared by `visinspect bench` and `python -m engine.bench`."""
    p.add_argument("model", nargs="?", help="model file (default: a random-init VGG16 at 224 px)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--images", help="folder of images for the end-to-end runs (default: synthetic 512 px JPEGs)")
    p.add_argument("--n-images", type=int, default=200)
    p.add_argument("--seconds", type=float, default=10.0, help="time budget per measurement")
    p.add_argument("--precision", default="auto", choices=PRECISIONS, help=PRECISION_HELP)
    p.add_argument("--json", help="write the results as JSON here")
    p.add_argument("--quick", action="store_true", help="tiny smoke run (correctness only)")
    p.add_argument("--check-precision", dest="check_precision", action=argparse.BooleanOptionalAction, default=None,
                   help="compare the reduced precision with fp32 on real sets (default: when one is available)")  # fmt: skip
    p.add_argument("--check-images", type=int, default=150, help="images per real set for the precision check")
    p.add_argument("--train", action="store_true", help="also time training epochs, plain loop vs feature cache")
    p.add_argument("--train-data", help="dataset for --train (default: ../shared/data/hazelnut_toy)")
    p.add_argument("--train-epochs", type=int, default=3)
    p.add_argument("--workers", type=int, help="decode threads (default: the cores torch leaves free on a CPU, at least 1; up to 4 with a GPU)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--openvino", action=argparse.BooleanOptionalAction, default=True,
                   help="also time the OpenVINO backend beside torch, model only (default: where OpenVINO is installed)")  # fmt: skip
    p.add_argument("--compile", action="store_true", help="torch.compile the model (first call compiles; CUDA stations)")
