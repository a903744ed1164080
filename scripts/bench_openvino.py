"""Model-only img/s and agreement with torch fp32 of every CPU backend, side by side (no test; numbers for docs/scale-out.md).

Run: python scripts/bench_openvino.py MODEL [--data DIR] [--batch 1] [--seconds 10]
Rows: torch fp32, torch int8, onnxruntime fp32, OpenVINO IR f32 (and bf16 where the CPU has it), and the
Inspector with --backend openvino (OpenVINO conv stack, torch head). Each is timed on the same resized uint8
batch, normalisation included, after one warm-up call; agreement is the export check's (engine.export.check).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine.export.check import check_images, compare  # noqa: E402
from engine.inference import Inspector  # noqa: E402
from engine.modelfile import load_model  # noqa: E402
from engine.types import RuntimeOptions  # noqa: E402


def inspector_runner(inspector: Inspector):
    def run(resized: np.ndarray):
        out = inspector.forward(inspector.preprocess.normalize(torch.from_numpy(np.ascontiguousarray(resized))))
        return out.p_anomaly, out.cams

    return run


def rate(run, batch: np.ndarray, seconds: float) -> tuple[float, float]:
    """(images/s, median ms per batch) of run on batch for about `seconds` (at least 5 calls)."""
    run(batch)
    times = []
    start = time.perf_counter()
    while len(times) < 5 or time.perf_counter() - start < seconds:
        t = time.perf_counter()
        run(batch)
        times.append(time.perf_counter() - t)
    return len(batch) * len(times) / sum(times), float(np.median(times)) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--data", help="dataset: agreement on the model's held-out images (default: generated images)")
    parser.add_argument("--check-images", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, help="threads for every backend (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # onnxruntime and OpenVINO follow torch's count

    from engine.export.onnx_file import OnnxRunner, export_onnx
    from engine.export.openvino_file import OpenVinoRunner, export_openvino

    loaded = load_model(args.model)
    images, how = check_images(loaded, args.data, args.check_images)
    pre = loaded.meta.preprocessing()
    batch = np.stack([pre.resize(images[i % len(images)]) for i in range(args.batch)])
    runners = {"torch fp32": inspector_runner(Inspector(loaded, device="cpu", precision="fp32"))}
    try:
        runners["torch int8"] = inspector_runner(Inspector(loaded, device="cpu", precision="int8"))
    except Exception as exc:  # noqa: BLE001 - a benchmark row that cannot run is reported, not fatal
        print(f"torch int8: not measured ({exc})", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        runners["onnxruntime fp32"] = OnnxRunner(export_onnx(loaded, Path(tmp) / "m.onnx"))
        xml = export_openvino(loaded, Path(tmp) / "m.xml")
        runners["OpenVINO IR f32"] = OpenVinoRunner(xml, hint="f32")
        import openvino as ov

        if "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            runners["OpenVINO IR bf16"] = OpenVinoRunner(xml, hint="bf16")
        served = Inspector.open(args.model, RuntimeOptions("cpu", "auto", "openvino"))
        runners[f"Inspector --backend openvino ({served.runtime.backend})"] = inspector_runner(served)
        load = os.getloadavg()[0]
        print(f"model {Path(args.model).name} ({loaded.meta.backbone}, {loaded.meta.input_size} px), batch {args.batch}, "
              f"{torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs, load average {load:.1f} at start")  # fmt: skip
        print(f"agreement with torch fp32 on {how}")
        print(f"{'backend':<42}{'img/s':>8}{'ms/batch':>10}{'verdicts':>10}{'max |Δp|':>10}{'heat corr':>11}")
        for name, run in runners.items():
            ips, ms = rate(run, batch, args.seconds)
            a = compare(loaded, run, images)
            print(f"{name:<42}{ips:>8.1f}{ms:>10.1f}{a.verdict_agreement:>10.1%}{a.max_abs_p_diff:>10.1e}{a.heatmap_correlation_mean:>11.5f}")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
