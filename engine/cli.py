"""`visinspect`: train, evaluate, calibrate, predict, benchmark, and launch the station.

Every long command is a thin loop over an engine job (engine.jobs): the station runs the same jobs,
so the command line and the window give the same answer.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import threading
from pathlib import Path

from engine.archive.command import add_archive_arguments  # torch-free: parsing stays fast
from engine.bench_options import add_bench_arguments  # torch-free: parsing stays fast
from engine.central.command import add_sync_arguments, run_sync
from engine.export import add_export_arguments  # torch-free: parsing stays fast
from engine.lineio.users import add_users_arguments, run_users_command  # hashlib only: parsing stays fast
from engine.progress import progress_bar
from engine.serve import add_serve_arguments  # torch-free as well
from engine.training.config import add_config_arguments, config_from_args
from engine.types import BACKEND_HELP, BACKENDS, DEVICE_HELP, PRECISION_HELP, PRECISIONS, RuntimeOptions, Verdict

EXIT_OK, EXIT_SOME_FAILED, EXIT_CANNOT_RUN = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line and exits 2, as every other unrunnable case does."""

    def error(self, message: str):
        self.exit(EXIT_CANNOT_RUN, f"visinspect: error: {message} (see `{self.prog} --help`)\n")


def _add_runtime(p: argparse.ArgumentParser, *, device: bool = True) -> None:
    if device:
        p.add_argument("--device", default="auto", help=DEVICE_HELP)
        p.add_argument("--backend", default="torch", choices=BACKENDS, help=BACKEND_HELP)
    p.add_argument("--precision", default="auto", choices=PRECISIONS, help=PRECISION_HELP)


def _add_data(p: argparse.ArgumentParser, *, stored: bool) -> None:
    """--layout and --good-dir; for a command given a model, their defaults are what the model was trained with."""
    stored_text = " (default: the one the model was trained with)"
    p.add_argument("--layout", default=None if stored else "auto", choices=["auto", "mvtec", "folders"],
                   help="dataset layout" + (stored_text if stored else " (default: auto)"))  # fmt: skip
    p.add_argument("--good-dir", default=None if stored else "good",
                   help="name of the good-image folder, class-folder layout" + (stored_text if stored else " (default: good)"))  # fmt: skip


def _add_choice(p: argparse.ArgumentParser) -> None:
    p.add_argument("--all", action="store_true", help="use every image, not only the model's held-out split")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="visinspect", description="VisInspect: visual inspection with a VGG16 class-activation-map model.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("train", help="train a product model from a dataset folder")
    p.add_argument("data", help="dataset folder (MVTec AD layout or class folders)")
    p.add_argument("--out", required=True, help="model file to write, e.g. weights/NAME.safetensors")
    p.add_argument("--product", help="product name (default: the output file's stem)")
    _add_data(p, stored=False)
    add_config_arguments(p)
    _add_runtime(p, device=False)
    p.add_argument("--json", help="also write the held-out metrics as JSON here")

    p = sub.add_parser("eval", help="metrics of a model on its held-out split of a dataset")
    p.add_argument("model")
    p.add_argument("data")
    _add_data(p, stored=True)
    _add_choice(p)
    p.add_argument("--json", help="write the report (metrics and per-image scores) as JSON here")
    _add_runtime(p)

    p = sub.add_parser("predict", help="inspect image files and folders")
    p.add_argument("model")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders (searched recursively)")
    p.add_argument("--csv", help="write results as CSV here (default: print CSV to stdout)")
    p.add_argument("--save-overlays", metavar="DIR", help="save each newly inspected image with heatmap and boxes here")
    p.add_argument("--log", nargs="?", const="", metavar="DB",
                   help="also write to the results log (default location if no DB); a rerun resumes")  # fmt: skip
    p.add_argument("--retry-errors", action="store_true", help="with --log: inspect again the files an earlier run could not")
    p.add_argument("--threshold", type=float, help="decision threshold (default: the model's)")
    p.add_argument("--batch-size", type=int, default=8)
    _add_runtime(p)

    p = sub.add_parser("review-archive", help="inspect a large archive once into a Parquet/CSV file, in-process or on Ray")
    add_archive_arguments(p)
    _add_runtime(p)

    p = sub.add_parser("calibrate", help="choose and store a decision threshold from held-out scores")
    p.add_argument("model")
    p.add_argument("data")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--target", help="no-miss (default), balanced, or max-false-reject:N (percent of good images)")
    how.add_argument("--threshold", type=float, help="store this threshold, after showing what it does")
    p.add_argument("--dry-run", action="store_true", help="show the threshold and what it does, change nothing")
    _add_data(p, stored=True)
    _add_choice(p)
    _add_runtime(p)

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

    p = sub.add_parser("frames", help="size of the saved anomaly frames; --prune applies the retention policy")
    p.add_argument("--db", help="results log whose frames folder to use (default: the station's)")
    p.add_argument("--prune", action="store_true", help="remove frames older than the age limit, then the oldest over the size limit")
    p.add_argument("--max-gb", type=float, help="with --prune: size limit in GB (default: the station's policy)")
    p.add_argument("--max-days", type=float, help="with --prune: age limit in days (default: the station's policy)")

    p = sub.add_parser("sync", help="send the results log's new rows to the plant's central PostgreSQL")
    add_sync_arguments(p)

    p = sub.add_parser("export", help="write the model as ONNX or OpenVINO IR for serving elsewhere, checked against torch")
    add_export_arguments(p)
    _add_data(p, stored=True)

    p = sub.add_parser("bench", help="measure throughput and latency on this machine")
    add_bench_arguments(p)

    p = sub.add_parser("serve", help="run the live job with no window, wired to the line (OPC UA, Modbus, MQTT)")
    add_serve_arguments(p)
    _add_runtime(p)

    p = sub.add_parser("cameras", help="list the cameras this PC can see (OpenCV, pylon, GenTL) with the source to use")
    p.add_argument("--cti", action="append", metavar="FILE", help="also list the devices of this GenTL producer (.cti)")

    p = sub.add_parser("gui", help="open the inspection station", add_help=False)
    p.add_argument("gui_args", nargs=argparse.REMAINDER)

    sub.add_parser("install-shortcut", help="create a desktop / start-menu shortcut for the station")

    add_users_arguments(sub.add_parser("users", help="line users allowed to write to the station over OPC UA"))
    return parser


def _runtime(args) -> RuntimeOptions:
    return RuntimeOptions(getattr(args, "device", "auto"), args.precision, getattr(args, "backend", "torch"))


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cmd_train(args) -> int:
    from engine.data.layouts import load_dataset
    from engine.jobs.train import ModelSaved, check_model_path, train_job
    from engine.training import DataReady, EpochReport, StepReport, TrainResult

    out = check_model_path(args.out)
    config = config_from_args(args)
    index = load_dataset(args.data, layout=args.layout, good_dir=args.good_dir)
    print(f"dataset: {index.describe()}")
    bar = None
    runtime = RuntimeOptions(config.device, args.precision)
    for event in train_job(index, config, product=args.product or out.stem, out=out, runtime=runtime, stop=threading.Event()):
        if isinstance(event, DataReady):
            print(f"split: {event.n_train} train / {event.n_test} held-out; device {event.device}; backbone weights {event.backbone_origin}")
            for s in event.skipped:
                _say(f"skipped: {s}")
        elif isinstance(event, StepReport):
            if bar is None:
                bar = progress_bar(event.steps, f"epoch {event.epoch}/{event.epochs}", unit="step")
            bar.update(1)
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
            print(f"\nheld-out report ({event.report.n} images, scored in {event.precision} as the line will run it):")
            print(event.report.table())
            if args.json:
                Path(args.json).write_text(json.dumps(event.report.to_dict(), indent=2))
        elif isinstance(event, ModelSaved):
            print(f"\nsaved {event.path}" + (" (replaced the file that was there)" if event.replaced else ""))
    return EXIT_OK


def _reading_images(events):
    """The job's events, less the image-loading progress, which is drawn as a progress bar."""
    from engine.jobs.evaluate import LoadProgress

    bar = None
    for event in events:
        if not isinstance(event, LoadProgress):
            yield event
            continue
        bar = bar or progress_bar(event.total, "reading images")
        bar.update(event.done - bar.n)
        if event.done >= event.total:
            bar.close()


def cmd_eval(args) -> int:
    from engine.jobs.evaluate import EvalDone, EvalStarted, evaluate_job

    done = None
    for event in _reading_images(evaluate_job(args.model, args.data, runtime=_runtime(args), layout=args.layout,
                                              good_dir=args.good_dir, every_image=args.all, stop=threading.Event())):  # fmt: skip
        if isinstance(event, EvalStarted):
            print(f"model: {event.meta.describe()}\nevaluating on {event.how}, {event.runtime}")
        elif isinstance(event, EvalDone):
            done = event
    for e in done.errors:
        _say(f"unreadable: {e}")
    print(done.report.table())
    if args.json:
        record = {"model": done.model.path, "model_sha256": done.model.sha256, "images": done.how,
                  "precision": done.precision, **done.report.to_dict()}  # fmt: skip
        Path(args.json).write_text(json.dumps(record, indent=2))
        print(f"wrote {args.json}")
    return EXIT_OK if not done.errors else EXIT_SOME_FAILED


def cmd_predict(args) -> int:
    from engine.csvfile import open_csv
    from engine.inference.inspector import Inspector
    from engine.jobs.review import (
        CSV_COLUMNS,
        FINAL_FLUSH_S,
        LogTrouble,
        ReviewChunk,
        ReviewDone,
        ReviewStarted,
        review_job,
    )
    from engine.render import OverlayWriter

    inspector = Inspector.open(args.model, _runtime(args))
    if inspector.runtime.backend != args.backend:
        _say(f"visinspect: {inspector.precision_note}")
    if args.threshold is not None:
        inspector.thresholds = inspector.thresholds.with_decision(args.threshold)
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1; got {args.batch_size}")
    log = None
    if args.log is not None:
        from engine.results import ResultsLog

        log = ResultsLog(Path(args.log) if args.log else None)
    overlays = OverlayWriter(args.save_overlays) if args.save_overlays else None
    bar = None
    done = None
    run_id = ""
    try:
        with open_csv(args.csv, CSV_COLUMNS) as writer:
            for event in review_job(
                args.inputs, inspector, results=log, source="cli", resume=log is not None, retry_errors=args.retry_errors,
                batch_size=args.batch_size, keep_images=overlays is not None, final_flush_s=FINAL_FLUSH_S,
                on_image=overlays.write if overlays else None, stop=threading.Event(),
            ):  # fmt: skip
                if isinstance(event, ReviewStarted):
                    run_id = event.run_id
                    if event.resumed:
                        rejudged = f"; {event.rejudged} judged again at threshold {event.thresholds.decision:.4f}" if event.rejudged else ""
                        _say(f"resuming run {run_id}: {event.resumed} of {event.total} inputs already done{rejudged}")
                    bar = progress_bar(event.total, "inspecting")
                    bar.update(event.resumed)
                elif isinstance(event, ReviewChunk):
                    for row in event.rows:
                        writer.writerow(row.csv_cells(run_id))
                        if not row.reused:
                            bar.update(1)
                elif isinstance(event, LogTrouble):
                    _say(f"visinspect: warning: results log {log.path}: {event.message}; inspection goes on, results are "
                         "kept in memory and written when the database can be written again")  # fmt: skip
                elif isinstance(event, ReviewDone):
                    done = event
    finally:
        if bar is not None:
            bar.close()
        if log is not None:
            log.close()
    counts = {v: done.counts.get(v, 0) for v in Verdict}
    if done.lost:
        _say(f"visinspect: error: {done.lost} result(s) could not be written to the results log {log.path}: {log.last_error}")
    _say(
        f"{sum(counts.values())} inputs: {counts[Verdict.GOOD]} GOOD, {counts[Verdict.ANOMALY]} ANOMALY, {counts[Verdict.ERROR]} ERROR"
        + (f" ({done.reused} from the earlier run, {done.inspected} inspected now)" if done.reused else "")
        + (f"; {done.lost} not saved to the results log" if done.lost else "")
        + (f"; overlays of {overlays.written} images in {overlays.folder}" if overlays else "")
    )
    return EXIT_SOME_FAILED if counts[Verdict.ERROR] or done.lost else EXIT_OK


def cmd_review_archive(args) -> int:
    from engine.archive.command import run_cli

    return run_cli(args, _runtime(args))


def cmd_calibrate(args) -> int:
    from engine.jobs.calibrate import CalibrationDone, CalibrationStarted, calibrate_job

    target = None if args.threshold is not None else (args.target or "no-miss")
    for event in _reading_images(calibrate_job(
        args.model, args.data, target=target, threshold=args.threshold, runtime=_runtime(args), layout=args.layout,
        good_dir=args.good_dir, every_image=args.all, dry_run=args.dry_run, stop=threading.Event(),
    )):  # fmt: skip
        if isinstance(event, CalibrationStarted):
            print(f"calibrating on {event.how}")
        elif isinstance(event, CalibrationDone):
            for note in event.notes:
                print(f"note: {note}")
            print(f"{event.calibration}\n  scored in         {event.precision} (the precision the line runs at this threshold)")
            if event.heat_scale is not None:
                print(f"  heat scale        good parts <= {event.heat_scale.good_level:.2f}, a typical defect 1.00 (absolute heatmaps)")
            if event.stored:
                print(f"stored threshold {event.calibration.threshold:.4f} in {event.model_path} (it was {event.previous_threshold:.4f}); "
                      "a station that has this model loaded uses it once it loads the model again")  # fmt: skip
            else:
                print(f"dry run: {event.model_path} still holds threshold {event.previous_threshold:.4f}")
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
    print(f"threshold {meta.threshold:.4f}, box threshold {meta.box_threshold:.2f}, input {meta.input_size} px")
    if meta.metrics:
        print("held-out metrics: " + ", ".join(f"{k} {v:.3f}" for k, v in meta.metrics.items() if isinstance(v, float)))
    return EXIT_OK


def cmd_frames(args) -> int:
    from engine.results import default_results_path
    from engine.results.retention import FrameStore, RetentionPolicy, recorded_policy

    folder = (Path(args.db) if args.db else default_results_path()).parent / "frames"
    if not args.prune and (args.max_gb is not None or args.max_days is not None):
        raise ValueError("--max-days and --max-gb go with --prune")
    store = FrameStore(folder)
    policy, origin = store.policy, "the station's" if recorded_policy(folder) else "the default"
    if args.max_gb is not None or args.max_days is not None:
        given = RetentionPolicy.from_units(args.max_gb, args.max_days)
        policy = RetentionPolicy(given.max_bytes if args.max_gb is not None else policy.max_bytes,
                                 given.max_age_days if args.max_days is not None else policy.max_age_days)  # fmt: skip
        origin = "given here"
    print(f"frames folder: {folder}\n  {store.usage().describe()}\n  policy: {policy.describe()} ({origin})")
    if args.prune:
        report = store.prune(policy)
        print(f"{report.describe()}\nnow: {store.usage().describe()}")
        for problem in report.problems:
            _say(f"not removed: {problem}")
        return EXIT_SOME_FAILED if report.problems else EXIT_OK
    return EXIT_OK


def cmd_export(args) -> int:
    from engine.export.command import run_cli

    return run_cli(args)


def cmd_bench(args) -> int:
    from engine.bench import run_cli

    return run_cli(args)


def cmd_serve(args) -> int:
    from engine.serve import run_serve

    return run_serve(args, _runtime(args))


def cmd_cameras(args) -> int:
    from engine.sources.discover import backend_status, default_cti_paths, describe_cameras, list_cameras

    cameras = list_cameras(cti_paths=list(dict.fromkeys(default_cti_paths() + (args.cti or []))))
    print("\n".join(describe_cameras(cameras, backend_status())))
    return EXIT_OK


def cmd_gui(args) -> int:
    # Imported by name so the engine package never imports Qt itself.
    gui_args = args.gui_args[1:] if args.gui_args[:1] == ["--"] else args.gui_args
    return importlib.import_module("visinspect_gui.app").main(gui_args)


def cmd_install_shortcut(args) -> int:
    for path in importlib.import_module("visinspect_gui.shortcut").install_shortcut():
        print(f"created {path}")
    return EXIT_OK


def cmd_users(args) -> int:
    print(run_users_command(args))
    return EXIT_OK


COMMANDS = {
    "train": cmd_train,
    "eval": cmd_eval,
    "predict": cmd_predict,
    "review-archive": cmd_review_archive,
    "calibrate": cmd_calibrate,
    "synth": cmd_synth,
    "info": cmd_info,
    "frames": cmd_frames,
    "sync": run_sync,
    "export": cmd_export,
    "bench": cmd_bench,
    "serve": cmd_serve,
    "cameras": cmd_cameras,
    "gui": cmd_gui,
    "install-shortcut": cmd_install_shortcut,
    "users": cmd_users,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point; any failure is one line on stderr and exit status 2 (1: some inputs failed)."""
    from engine.errors import EXPECTED_ERRORS

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
    except EXPECTED_ERRORS as exc:  # the CLI boundary: one line, no traceback
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
