"""`visinspect`: train, evaluate, calibrate, predict, benchmark, and launch the station."""
from __future__ import annotations

import argparse
import csv
import hashlib
import importlib
import json
import logging
import sys
from pathlib import Path

from engine.bench_options import add_bench_arguments  # torch-free: parsing stays fast
from engine.types import PRECISION_HELP, PRECISIONS

EXIT_OK, EXIT_SOME_FAILED, EXIT_CANNOT_RUN = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line and exits 2, as every other unrunnable case does."""

    def error(self, message: str):
        self.exit(EXIT_CANNOT_RUN, f"visinspect: error: {message} (see `{self.prog} --help`)\n")


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")


def _add_precision(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", default="auto", choices=PRECISIONS, help=PRECISION_HELP)


def _add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layout", default="auto", choices=["auto", "mvtec", "folders"], help="dataset layout")
    p.add_argument("--good-dir", default="good", help="name of the good-image folder (class-folder layout)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="visinspect", description="VisInspect: visual inspection with a VGG16 class-activation-map model.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("train", help="train a product model from a dataset folder")
    p.add_argument("data", help="dataset folder (MVTec AD layout or class folders)")
    p.add_argument("--out", required=True, help="model file to write, e.g. weights/NAME.safetensors")
    p.add_argument("--product", help="product name (default: the output file's stem)")
    _add_data(p)
    p.add_argument("--backbone", default="vgg16", choices=["vgg16", "vgg16_bn"])
    p.add_argument("--backbone-weights", default="imagenet", help="imagenet, none (random init) or a weights file PATH")
    p.add_argument("--trainable", default="conv5", choices=["conv5", "head", "all"], help="layers to fine-tune")
    p.add_argument("--image-size", type=int, default=224, help="model input size, a multiple of 32")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--class-weights", type=float, nargs=2, default=(1.0, 3.0), metavar=("GOOD", "ANOMALY"))
    p.add_argument("--early-stop", type=float, default=0.98, help="stop once train accuracy reaches this")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-feature-cache", action="store_true", help="recompute the frozen layers every epoch")
    p.add_argument("--json", help="also write the held-out metrics as JSON here")
    _add_device(p)

    p = sub.add_parser("eval", help="metrics of a model on its held-out split of a dataset")
    p.add_argument("model")
    p.add_argument("data")
    _add_data(p)
    p.add_argument("--all", action="store_true", help="evaluate on every image, not only the held-out split")
    p.add_argument("--json", help="write the report (metrics and per-image scores) as JSON here")
    _add_device(p)

    p = sub.add_parser("predict", help="inspect image files and folders")
    p.add_argument("model")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders (searched recursively)")
    p.add_argument("--csv", help="write results as CSV here (default: print CSV to stdout)")
    p.add_argument("--save-overlays", metavar="DIR", help="save each image with heatmap and boxes here")
    p.add_argument("--log", nargs="?", const="", metavar="DB", help="also write to the results log (default location if no DB); a rerun resumes")
    p.add_argument("--threshold", type=float, help="decision threshold (default: the model's)")
    p.add_argument("--batch-size", type=int, default=8)
    _add_device(p)
    _add_precision(p)

    p = sub.add_parser("calibrate", help="choose and store a decision threshold from held-out scores")
    p.add_argument("model")
    p.add_argument("data")
    p.add_argument("--target", default="no-miss", help="no-miss, balanced, or max-false-reject:N (percent)")
    _add_device(p)

    p = sub.add_parser("synth", help="write a synthetic MVTec-layout dataset (textured surfaces with drawn defects)")
    p.add_argument("out")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--train-good", type=int, default=40)
    p.add_argument("--test-good", type=int, default=10)
    p.add_argument("--per-defect", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grey", action="store_true")

    p = sub.add_parser("info", help="describe a model file")
    p.add_argument("model")
    p.add_argument("--json", action="store_true", help="print the full metadata as JSON")

    p = sub.add_parser("bench", help="measure throughput and latency on this machine")
    add_bench_arguments(p)

    p = sub.add_parser("gui", help="open the inspection station", add_help=False)
    p.add_argument("gui_args", nargs=argparse.REMAINDER)

    sub.add_parser("install-shortcut", help="create a desktop / start-menu shortcut for the station")
    return parser


def _progress(total: int, desc: str, unit: str = "img"):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False)


def cmd_train(args) -> int:
    from engine.data.layouts import load_dataset
    from engine.modelfile import save_model
    from engine.training import DataReady, EpochReport, StepReport, TrainConfig, TrainResult, train

    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise ValueError(f"--out must end in .safetensors; got {out.name}")
    config = TrainConfig(
        backbone=args.backbone,
        backbone_weights=args.backbone_weights,
        trainable=args.trainable,
        image_size=args.image_size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        class_weights=tuple(args.class_weights),
        early_stop_accuracy=args.early_stop,
        seed=args.seed,
        device=args.device,
        cache_features=not args.no_feature_cache,
    )
    index = load_dataset(args.data, layout=args.layout, good_dir=args.good_dir)
    print(f"dataset: {index.describe()}")
    bar = None
    for event in train(index, config, product=args.product or out.stem):
        if isinstance(event, DataReady):
            print(f"split: {event.n_train} train / {event.n_test} held-out; device {event.device}; backbone weights {event.backbone_origin}")
            for s in event.skipped:
                print(f"skipped: {s}", file=sys.stderr)
        elif isinstance(event, StepReport):
            if bar is None:
                bar = _progress(event.steps, f"epoch {event.epoch}/{event.epochs}", "step")
            bar.update(1)
            bar.set_postfix(loss=f"{event.loss:.4f}")
        elif isinstance(event, EpochReport):
            if bar is not None:
                bar.close()
                bar = None
            print(
                f"epoch {event.epoch}/{event.epochs}: train loss {event.train_loss:.4f} acc {event.train_accuracy:.3f} | "
                f"held-out loss {event.test_loss:.4f} acc {event.test_accuracy:.3f} | {event.seconds:.1f}s"
                + ("  (early stop: train accuracy reached)" if event.early_stop else "")
            )
        elif isinstance(event, TrainResult):
            save_model(out, event.model, event.meta, calibration=event.calibration)
            print(f"\nheld-out report ({event.report.n} images):\n{event.report.table()}")
            print(f"\nsaved {out} ({event.seconds:.0f} s)")
            if args.json:
                Path(args.json).write_text(json.dumps(event.report.to_dict(), indent=2))
    return EXIT_OK


def cmd_eval(args) -> int:
    from engine.data.layouts import load_dataset
    from engine.evaluation.evaluate import evaluate, held_out_samples
    from engine.inference import Inspector

    inspector = Inspector.from_file(args.model, device=args.device)
    index = load_dataset(args.data, layout=args.layout, good_dir=args.good_dir or inspector.meta.dataset.get("good_dir", "good"))
    samples, how = (index.samples, "every image") if args.all else held_out_samples(inspector.meta, index)
    print(f"model: {inspector.meta.describe()}\nevaluating on {how}")
    bar = _progress(len(samples), "evaluating")
    report, errors = evaluate(inspector, samples, progress=lambda i, n: bar.update(1))
    bar.close()
    for e in errors:
        print(f"unreadable: {e}", file=sys.stderr)
    print(report.table())
    if args.json:
        Path(args.json).write_text(json.dumps({"model": str(args.model), "model_id": inspector.model_id, "images": how, **report.to_dict()}, indent=2))
        print(f"wrote {args.json}")
    return EXIT_OK if not errors else EXIT_SOME_FAILED


def _expand_inputs(inputs: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Files and folders (recursive) -> image paths, plus (path, reason) for inputs that cannot be used."""
    from engine.sources import list_images

    paths, bad = [], []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            paths.extend(str(x) for x in list_images(p, recursive=True))
        elif p.exists() or p.is_symlink():
            paths.append(str(p))
        else:
            bad.append((str(p), "file not found"))
    return paths, bad


LOG_FINAL_FLUSH_S = 15.0  # how long predict keeps retrying results still waiting for the log at the end


def _finish_log(log, warn) -> int:
    """Write results still waiting for the database (retrying a while), close it; how many were lost."""
    import time

    deadline = time.monotonic() + LOG_FINAL_FLUSH_S
    while log.pending_count and not log.flush() and time.monotonic() < deadline:
        time.sleep(0.5)
    lost = log.pending_count
    log.close()
    if lost:
        warn(f"visinspect: error: {lost} result(s) could not be written to the results log {log.path}: {log.last_error}")
    return lost


def cmd_predict(args) -> int:
    from engine.inference import Inspector
    from engine.render import encode_image, render_overlay
    from engine.results.log import storable_text

    inspector = Inspector.from_file(args.model, device=args.device, precision=args.precision)
    if args.threshold is not None:
        if not 0.0 <= args.threshold <= 1.0:
            raise ValueError(f"--threshold must be within 0..1; got {args.threshold}")
        inspector.threshold = args.threshold
    paths, bad = _expand_inputs(args.inputs)
    log = run_id = None
    done: set[str] = set()
    if args.log is not None:
        from engine.results import ResultsLog, resumable_run_id

        log = ResultsLog(Path(args.log) if args.log else None)
        run_id = resumable_run_id("predict", inspector.loaded.sha256, [str(Path(p).resolve()) for p in args.inputs])
        done = log.done_items(run_id)
        if done:
            print(f"resuming run {run_id}: {len(done)} files already done", file=sys.stderr)
    # The log stores names that are not valid UTF-8 escaped, so compare in that form.
    todo = [p for p in paths if storable_text(p) not in done]
    overlays = Path(args.save_overlays) if args.save_overlays else None
    if overlays:
        overlays.mkdir(parents=True, exist_ok=True)
    out = open(args.csv, "w", newline="", encoding="utf-8") if args.csv else sys.stdout
    writer = csv.writer(out)
    writer.writerow(["path", "verdict", "p_anomaly", "boxes", "error"])
    n_err = len(bad)
    counts = {"GOOD": 0, "ANOMALY": 0}
    for path, reason in bad:
        writer.writerow([storable_text(path), "ERROR", "", "", storable_text(reason)])
    bar = _progress(len(todo), "inspecting")
    log_warned = False
    lost = 0

    def warn(message: str) -> None:
        bar.write(message, file=sys.stderr)

    try:
        for r in inspector.inspect_files(todo, batch_size=args.batch_size, keep_images=overlays is not None):
            bar.update(1)
            common = dict(run_id=run_id, source="cli", item=r.path, model_path=str(inspector.path), model_hash=inspector.loaded.sha256)
            if r.inspection is None:
                n_err += 1
                writer.writerow([storable_text(r.path), "ERROR", "", "", storable_text(r.error)])
                if log:
                    log.log_error(**common, message=r.error)
            else:
                insp = r.inspection
                counts[insp.verdict] += 1
                writer.writerow([storable_text(r.path), insp.verdict, f"{insp.p_anomaly:.4f}", json.dumps([b.as_list() for b in insp.boxes]), ""])
                if log:
                    log.log_inspection(**common, inspection=insp)
                if overlays is not None and r.image is not None:
                    name = hashlib.sha1(storable_text(r.path).encode()).hexdigest()[:8] + "_" + Path(r.path).stem + ".jpg"
                    (overlays / name).write_bytes(encode_image(".jpg", render_overlay(r.image, insp)))
            if log and log.last_error and not log_warned:
                log_warned = True  # once per run: the rows wait in memory and are written when it frees up
                warn(
                    f"visinspect: warning: results log {log.path}: {log.last_error}; inspection goes on, "
                    "results are kept in memory and written when the database can be written again"
                )
            out.flush()
    finally:
        if log:
            lost = _finish_log(log, warn)
        bar.close()
        if out is not sys.stdout:
            out.close()
    total = len(paths) + len(bad)
    print(
        f"{total} inputs: {counts['GOOD']} GOOD, {counts['ANOMALY']} ANOMALY, {n_err} ERROR"
        + (f", {len(paths) - len(todo)} already done" if done else "")
        + (f"; {lost} not saved to the results log" if lost else ""),
        file=sys.stderr,
    )
    return EXIT_SOME_FAILED if n_err or lost else EXIT_OK


def cmd_calibrate(args) -> int:
    from engine.evaluation.calibrate import calibrate_model

    result = calibrate_model(args.model, args.data, args.target, device=args.device)
    print(result)
    return EXIT_OK


def cmd_synth(args) -> int:
    from engine.data.synthetic import generate_dataset

    s = generate_dataset(
        args.out,
        n_train_good=args.train_good,
        n_test_good=args.test_good,
        n_per_defect=args.per_defect,
        image_size=args.image_size,
        seed=args.seed,
        grey=args.grey,
    )
    print(f"wrote {s.root}: {s.n_good} good, " + ", ".join(f"{k} {v}" for k, v in s.defect_counts.items()) + f" at {s.image_size} px")
    return EXIT_OK


def cmd_info(args) -> int:
    from dataclasses import asdict

    from engine.modelfile import file_sha256, read_meta

    meta = read_meta(args.model)
    if args.json:
        print(json.dumps(asdict(meta), indent=2))
        return EXIT_OK
    print(meta.describe())
    print(f"sha256: {file_sha256(args.model)}")
    print(f"backbone weights: {meta.backbone_weights.get('kind')} ({meta.backbone_weights.get('detail')})")
    print(f"threshold {meta.threshold:.3f}, box threshold {meta.box_threshold:.2f}, input {meta.input_size} px")
    if meta.metrics:
        print("held-out metrics: " + ", ".join(f"{k} {v:.3f}" for k, v in meta.metrics.items() if isinstance(v, float)))
    return EXIT_OK


def cmd_bench(args) -> int:
    from engine.bench import run_cli

    return run_cli(args)


def cmd_gui(args) -> int:
    # Imported by name so the engine package never imports Qt itself.
    gui_args = args.gui_args[1:] if args.gui_args[:1] == ["--"] else args.gui_args
    return importlib.import_module("visinspect_gui.app").main(gui_args)


def cmd_install_shortcut(args) -> int:
    for path in importlib.import_module("visinspect_gui.shortcut").install_shortcut():
        print(f"created {path}")
    return EXIT_OK


COMMANDS = {
    "train": cmd_train,
    "eval": cmd_eval,
    "predict": cmd_predict,
    "calibrate": cmd_calibrate,
    "synth": cmd_synth,
    "info": cmd_info,
    "bench": cmd_bench,
    "gui": cmd_gui,
    "install-shortcut": cmd_install_shortcut,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point; any failure is one line on stderr and exit status 2 (1: some inputs failed)."""
    from engine.errors import VisInspectError

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["gui"]:  # the station parses its own options (argparse REMAINDER drops leading --flags)
        argv = ["gui", "--", *argv[1:]]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("visinspect: interrupted", file=sys.stderr)
        return 130
    except (VisInspectError, ValueError, OSError) as exc:  # the CLI boundary: one line, no traceback
        if args.debug:
            raise
        print(f"visinspect: error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except Exception as exc:  # noqa: BLE001
        if args.debug:
            raise
        print(f"visinspect: internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)", file=sys.stderr)
        return EXIT_CANNOT_RUN


if __name__ == "__main__":
    sys.exit(main())
