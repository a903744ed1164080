"""One benchmark run from start to report: `run()` returns a BenchResult, `run_cli()` prints and saves it."""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from engine.bench.backends import BackendRow, bench_backends
from engine.bench.inputs import (
    calibration_images,
    list_images,
    make_image_set,
    precision_sets,
    random_init_model,
    shared_data_root,
    with_int8_evidence,
)
from engine.bench.machine import Memory, environment, load_average, peak_rss_mib
from engine.bench.measure import bench_end_to_end, bench_live, bench_model_only, bench_reference
from engine.bench.precision import PrecisionCheck, check_precision, reduced_candidate
from engine.bench.report import format_report
from engine.bench.result import BenchResult, ModelInfo, Ratios, Target
from engine.bench.training import TrainingBench, bench_training
from engine.bench_options import add_bench_arguments
from engine.data.decode import read_image
from engine.inference.device import decode_workers, resolve_device
from engine.inference.inspector import Inspector
from engine.inference.runtime import auto_int8_wanted, choose_runtime
from engine.modelfile import LoadedModel, load_model
from engine.types import RuntimeOptions


def _borrowed_int8_evidence(
    timed: LoadedModel, *, precision: str, borrow: bool, quick: bool, check_images: int, say: Callable[[str], None]
) -> tuple[LoadedModel, list[np.ndarray] | None, str | None]:
    """For the random-init model: calibration images (and for auto a held-out int8 check), as a trained file has."""
    if not (precision == "int8" or (precision == "auto" and borrow)):
        return timed, None, None
    excluded = [p for _, paths in ([] if quick else precision_sets(check_images)) for p in paths]
    n = 4 if quick else 16
    with tempfile.TemporaryDirectory(prefix="visinspect-calib-") as tmp:
        images, source = calibration_images(2 * n, excluded, Path(tmp))
    calibration, held_out = images[:n], images[n:]
    source = source.replace(str(2 * n), str(n), 1)
    say(f"int8 calibration images: {source}")
    if precision == "auto":
        say(f"int8 check against fp32 on {len(held_out)} other images ...")
        timed = with_int8_evidence(timed, calibration, held_out)
    return timed, calibration, source


def _training_data(train_data: str | os.PathLike | None, *, quick: bool, tmp: Path) -> Path:
    """--train-data, else ../shared/data/hazelnut_toy (full runs), else a small synthetic set."""
    if train_data:
        return Path(train_data)
    root = shared_data_root()
    if not quick and root is not None and (root / "hazelnut_toy").is_dir():
        return root / "hazelnut_toy"
    from engine.data.synthetic import generate_dataset

    n = 4 if quick else 32
    return generate_dataset(
        tmp / "train-set", image_size=64 if quick else 256, n_train_good=2 * n, n_test_good=n // 2, n_per_defect=n // 2
    ).root


def run(
    model: str | os.PathLike | None = None,
    *,
    device: str = "auto",
    batch_size: int = 10,
    images: str | os.PathLike | None = None,
    n_images: int = 200,
    seconds: float = 10.0,
    precision: str = "auto",
    quick: bool = False,
    check: bool | None = None,
    check_images: int = 150,
    train: bool = False,
    train_data: str | os.PathLike | None = None,
    train_epochs: int = 3,
    workers: int | None = None,
    threads: int | None = None,
    compile: bool = False,
    openvino: bool = True,
    log: Callable[[str], None] | None = None,
) -> BenchResult:
    """Run the benchmark (see the package docstring) and return what it measured."""
    say = log or (lambda msg: None)
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1; got {batch_size}")
    options = RuntimeOptions(device, precision)
    if threads:
        torch.set_num_threads(int(threads))
    if quick:
        n_images, batch_size, seconds = min(n_images, 6), min(batch_size, 3), min(seconds, 0.2)
        check_images, train_epochs = min(check_images, 4), 2
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()

    loaded = load_model(model) if model else random_init_model(64 if quick else 224)
    # A random-init model judges nearly every image GOOD, which would skip the box search; with
    # threshold 0 every image takes the full verdict + heatmap + boxes path (the worst case).
    timed = loaded if model else replace(loaded, meta=replace(loaded.meta, threshold=0.0))
    # A trained model file brings its calibration images and its held-out int8 check; the random-init
    # model borrows images for both, so that auto decides as it would for a trained model.
    borrow = not model and auto_int8_wanted(resolve_device(device))
    timed, calibration, calibration_source = _borrowed_int8_evidence(
        timed, precision=precision, borrow=borrow, quick=quick, check_images=check_images, say=say
    )
    inspector = Inspector(timed, choose_runtime(timed, options, calibration=calibration), compile=compile)
    runtime = inspector.runtime
    workers = workers or decode_workers(runtime.device)
    env = environment(inspector)
    info = ModelInfo(
        file=str(model) if model else None,
        backbone=loaded.meta.backbone,
        weights=loaded.meta.backbone_weights.get("kind"),
        input_size=loaded.meta.input_size,
        compiled=bool(compile),
        threshold_timed=timed.meta.threshold,
        int8_calibration=calibration_source,
        precision_note=runtime.note,
    )
    say(f"model: {info.backbone} {info.input_size} px on {runtime.device_name}, {runtime.precision}")
    if runtime.note:
        say(f"precision: {runtime.note}")

    min_iters = 2 if quick else 3
    say("model only, batch 1 ...")
    model_1 = bench_model_only(inspector, 1, seconds, min_iters=min_iters)
    say(f"model only, batch {batch_size} ...")
    model_n = bench_model_only(inspector, batch_size, seconds, min_iters=min_iters)
    torch_row = BackendRow("torch", runtime.precision, runtime.note, model_1, model_n)
    backends = bench_backends(timed, options, torch_row, calibration=calibration, batch_size=batch_size, seconds=seconds,
                              min_iters=min_iters, quick=quick, say=say) if openvino else (torch_row,)  # fmt: skip

    training: TrainingBench | None = None
    checked: PrecisionCheck | None = None
    checked_trained: PrecisionCheck | None = None
    with tempfile.TemporaryDirectory(prefix="visinspect-bench-") as tmp:
        if images:
            paths, source = list_images(images, n_images), str(images)
        else:
            px = 128 if quick else 512
            say(f"writing {n_images} synthetic {px}x{px} JPEGs ...")
            paths = make_image_set(Path(tmp) / "images", n_images, size=px)
            source = f"synthetic JPEG q95, {px}x{px}"
        frame = read_image(paths[0])
        say(f"end to end over {len(paths)} files ...")
        e2e = bench_end_to_end(inspector, paths, batch_size, workers=workers, source=source, first_image_shape=frame.shape)
        say("live latency at batch 1 ...")
        live = bench_live(inspector, frame, seconds, min_iters=3 if quick else 20)
        peak_inspection = peak_rss_mib()
        say("plain reference pipeline ...")
        ref = bench_reference(timed, paths, seconds, runtime.device, min_batches=1 if quick else 2)
        vs_reference = e2e.images_per_s / ref.images_per_s if ref.images_per_s else None
        vs_model = e2e.images_per_s / model_n.images_per_s

        trained = None
        if train:
            data = _training_data(train_data, quick=quick, tmp=Path(tmp))
            say(f"training: plain vs cached over {train_epochs} epochs on {data} ...")
            training, trained = bench_training(
                data, image_size=64 if quick else 224, epochs=max(2, train_epochs), batch_size=10, device=str(runtime.device)
            )

        candidate = runtime.precision if runtime.precision != "fp32" else reduced_candidate(runtime.device, quick=quick)
        if candidate is not None and check is not False:
            sets = ([] if quick else precision_sets(check_images)) or [("synthetic", paths[:check_images])]
            say(f"precision check: {candidate} vs fp32 on {sum(len(p) for _, p in sets)} images ...")
            kwargs = {"batch_size": batch_size, "workers": workers, "calibration": calibration}
            checked = check_precision(loaded, runtime.device, candidate, sets, **kwargs)
            if trained is not None:
                say(f"precision check with the model trained above: {candidate} vs fp32 ...")
                checked_trained = check_precision(trained, runtime.device, candidate, sets, **kwargs)

    cuda_peak = round(torch.cuda.max_memory_allocated() / (1 << 20), 1) if runtime.device.type == "cuda" else None
    targets = (
        Target.judge("end_to_end_vs_reference", vs_reference, quick=quick),
        Target.judge("end_to_end_vs_model_only", vs_model, quick=quick),
        Target.judge("live_p95_ms", live.p95_ms, quick=quick),
        Target.judge("training_cached_speedup", training.speedup if training else None, quick=quick),
    )
    return BenchResult(
        quick=quick,
        environment=replace(env, load_average_1min_end=load_average()),
        model=info,
        model_only_1=model_1,
        model_only_n=model_n,
        end_to_end=e2e,
        live=live,
        memory=Memory(peak_rss_mib_inspection=peak_inspection, peak_rss_mib=peak_rss_mib(), cuda_max_allocated_mib=cuda_peak),
        reference=ref,
        ratios=Ratios(
            end_to_end_vs_reference=round(vs_reference, 4) if vs_reference else None,
            end_to_end_vs_model_only=round(vs_model, 4),
        ),
        targets=targets,
        training=training,
        precision_check=checked,
        precision_check_trained=checked_trained,
        backends=backends,
    )


def _parser() -> argparse.ArgumentParser:
    from engine import bench

    p = argparse.ArgumentParser(prog="python -m engine.bench", description=(bench.__doc__ or "").splitlines()[0])
    add_bench_arguments(p)
    return p


def run_cli(args: argparse.Namespace) -> int:
    """Entry point of `visinspect bench`: print the table, write JSON when asked."""

    def log(msg: str) -> None:
        print(f"[bench] {msg}", file=sys.stderr, flush=True)

    result = run(
        args.model,
        device=args.device,
        batch_size=args.batch_size,
        images=args.images,
        n_images=args.n_images,
        seconds=args.seconds,
        precision=args.precision,
        quick=args.quick,
        check=args.check_precision,
        check_images=args.check_images,
        train=args.train,
        train_data=args.train_data,
        train_epochs=args.train_epochs,
        workers=args.workers,
        threads=args.threads,
        compile=args.compile,
        openvino=args.openvino,
        log=log,
    )
    print(format_report(result))
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
        print(f"results written to {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_parser().parse_args(argv))
