"""Model-only img/s and agreement with torch fp32 of every CPU backend, side by side (no test; numbers for docs/scale-out.md).

Run: python scripts/bench_openvino.py MODEL [--data DIR] [--batch 1] [--seconds 10]
Rows: torch fp32, torch int8, onnxruntime fp32, OpenVINO IR f32 (and bf16 where the CPU has it), and the
Inspector with --backend openvino (OpenVINO conv stack, torch head) at auto, fp32 and int8 (NNCF). Each is timed
on the same resized uint8 batch, normalisation included, after one warm-up call; agreement is the export check's
(engine.export.check). --rows WORD[,WORD] times only the rows whose name contains one of the words;
--interleave ROUNDS compares the two int8 conv stacks alone, taking turns (docs/scale-out.md).
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


def interleaved(loaded, batch_sizes: list[int], rounds: int, seconds: float) -> None:
    """torch int8 and OpenVINO int8 conv stacks only, taking turns for `seconds` each, `rounds` times: on a loaded
    machine the fairest comparison, since both see the same load."""
    from engine.inference.openvino_int8 import openvino_int8_features
    from engine.inference.runtime import _quantize

    torch_int8 = _quantize(loaded, torch.device("cpu"), loaded.calibration).features
    ov_int8 = openvino_int8_features(loaded, loaded.calibration)
    x = loaded.meta.preprocessing().batch(list(loaded.calibration))

    def torch_run(xb):
        with torch.inference_mode():
            torch_int8(xb)

    rates: dict[str, list[float]] = {}
    for _ in range(rounds):
        for n in batch_sizes:
            xb = x[:n].repeat((n + len(x) - 1) // len(x), 1, 1, 1)[:n].contiguous()
            for name, fn in ((f"torch int8, batch {n}", torch_run), (f"OpenVINO int8, batch {n}", ov_int8)):
                fn(xb)
                calls, start = 0, time.perf_counter()
                while time.perf_counter() - start < seconds:
                    fn(xb)
                    calls += 1
                rates.setdefault(name, []).append(round(calls * n / (time.perf_counter() - start), 1))
    print(f"conv stack only, interleaved, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} at the end")
    for name, values in rates.items():
        print(f"  {name:<24}" + " / ".join(f"{v:.1f}" for v in values) + " img/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--data", help="dataset: agreement on the model's held-out images (default: generated images)")
    parser.add_argument("--check-images", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, help="threads for every backend (default: torch's choice)")
    parser.add_argument("--rows", help="comma-separated words: time only the rows whose name contains one")
    parser.add_argument("--interleave", type=int, metavar="ROUNDS",
                        help="instead: torch int8 vs OpenVINO int8 conv stacks, batch 1 and --batch, taking turns")  # fmt: skip
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # onnxruntime and OpenVINO follow torch's count
    if args.interleave:
        interleaved(load_model(args.model), sorted({1, args.batch}), args.interleave, args.seconds)
        return 0

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
        for precision in ("auto", "fp32", "int8"):
            served = Inspector.open(args.model, RuntimeOptions("cpu", precision, "openvino"))
            ran = f"{served.runtime.backend} {served.precision_name}"
            runners[f"Inspector --backend openvino --precision {precision} ({ran})"] = inspector_runner(served)
            print(f"--precision {precision}: {served.precision_note}")
        if args.rows:
            words = [w.strip().lower() for w in args.rows.split(",") if w.strip()]
            runners = {k: v for k, v in runners.items() if any(w in k.lower() for w in words)}
        load = os.getloadavg()[0]
        print(f"model {Path(args.model).name} ({loaded.meta.backbone}, {loaded.meta.input_size} px), batch {args.batch}, "
              f"{torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs, load average {load:.1f} at start")  # fmt: skip
        print(f"agreement with torch fp32 on {how}")
        print(f"{'backend':<64}{'img/s':>8}{'ms/batch':>10}{'verdicts':>10}{'max |Δp|':>10}{'heat corr':>11}")
        for name, run in runners.items():
            ips, ms = rate(run, batch, args.seconds)
            a = compare(loaded, run, images)
            print(f"{name:<64}{ips:>8.1f}{ms:>10.1f}{a.verdict_agreement:>10.1%}{a.max_abs_p_diff:>10.1e}{a.heatmap_correlation_mean:>11.5f}")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
