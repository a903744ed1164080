"""`visinspect bench`: how fast this station inspects, measured beside a plain reference pipeline.

One run measures, for one model (a random-init VGG16 at 224 px unless a model file is given):

- model only: images/s at batch 1 and batch N (preprocessed tensors in, probabilities + CAMs out);
- end to end: images/s from encoded files on disk through decode -> verdict + heatmap + boxes
  (`Inspector.inspect_files`, the path `visinspect predict` and the station's folder runs use);
- live: latency p50 / p95 of one in-memory frame -> Inspection at batch 1 (the live view's path);
- reference: the same files through the simplest pipeline (PIL, torchvision transforms, a DataLoader,
  fp32 contiguous NCHW, a naive CAM), and the ratio end-to-end / reference;
- precision: where a reduced precision is available, its agreement with fp32 on real image sets
  (the gate of engine.inference.agreement);
- training (optional): seconds per epoch after the first, plain loop vs the frozen-stem feature cache;
- peak memory, device, precision, torch version, CPU model and date.

`run()` returns a typed BenchResult; its `to_dict()` is the `--json` format (docs/benchmark.md).
`--quick` is a smoke run (a few images, a 64 px model) that checks the machinery, not the speed.
"""
from engine.bench.inputs import (
    KNOWN_SETS,
    calibration_images,
    list_images,
    make_image_set,
    precision_sets,
    random_init_model,
    shared_data_root,
    with_int8_evidence,
)
from engine.bench.machine import Environment, Memory, cpu_model, environment, load_average, peak_rss_mib, usable_cores
from engine.bench.measure import (
    REFERENCE_BATCH,
    EndToEnd,
    Live,
    ModelOnly,
    Reference,
    bench_end_to_end,
    bench_live,
    bench_model_only,
    bench_reference,
)
from engine.bench.precision import PrecisionCheck, check_precision, reduced_candidate
from engine.bench.report import format_report
from engine.bench.result import TARGETS, BenchResult, ModelInfo, Ratios, Target
from engine.bench.run import main, run, run_cli
from engine.bench.training import TrainingBench, bench_training

__all__ = [
    "KNOWN_SETS",
    "REFERENCE_BATCH",
    "TARGETS",
    "BenchResult",
    "EndToEnd",
    "Environment",
    "Live",
    "Memory",
    "ModelInfo",
    "ModelOnly",
    "PrecisionCheck",
    "Ratios",
    "Reference",
    "Target",
    "TrainingBench",
    "bench_end_to_end",
    "bench_live",
    "bench_model_only",
    "bench_reference",
    "bench_training",
    "calibration_images",
    "check_precision",
    "cpu_model",
    "environment",
    "format_report",
    "list_images",
    "load_average",
    "main",
    "make_image_set",
    "peak_rss_mib",
    "precision_sets",
    "random_init_model",
    "reduced_candidate",
    "run",
    "run_cli",
    "shared_data_root",
    "usable_cores",
    "with_int8_evidence",
]
