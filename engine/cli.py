"""`visinspect`: train, evaluate, calibrate, predict, benchmark, and launch the station.

Every long command is a thin loop over an engine job (engine.jobs): the station runs the same jobs,
so the command line and the window give the same answer.
"""
from __future__ import annotations

import importlib
import json
import logging
import sys
import threading
from pathlib import Path

from engine.central.command import run_sync
from engine.cli_feedback import cmd_compare, cmd_label  # torch-free: parsing stays fast
from engine.cli_parser import EXIT_CANNOT_RUN, build_parser  # torch-free: parsing stays fast
from engine.lineio.users import run_users_command  # hashlib only
from engine.progress import progress_bar
from engine.training.config import config_from_args
from engine.types import RuntimeOptions, Verdict

EXIT_OK, EXIT_SOME_FAILED = 0, 1


def _runtime(args) -> RuntimeOptions:
    return RuntimeOptions(getattr(args, "device", "auto"), args.precision, getattr(args, "backend", "torch"))


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cmd_train(args) -> int:
    from engine.data.layouts import load_dataset
    from engine.jobs.train import ModelSaved, check_model_path, train_job
    from engine.training import DataReady, EpochReport, StepReport, TrainResult
    from engine.training.good_only import ModeChosen

    out = check_model_path(args.out)
    config = config_from_args(args)
    index = load_dataset(args.data, layout=args.layout, good_dir=args.good_dir, min_defective=0)
    print(f"dataset: {index.describe()}")
    bar = None
    runtime = RuntimeOptions(config.device, args.precision)
    for event in train_job(index, config, product=args.product or out.stem, out=out, runtime=runtime, stop=threading.Event()):
        if isinstance(event, ModeChosen):
            print(f"mode: {event.mode} ({event.reason})")
        elif isinstance(event, DataReady):
            tiles = f" tiles of {config.tile} px (overlap {config.tile_overlap})" if config.tile else ""
            print(f"split: {event.n_train} train{tiles} / {event.n_test} held-out images; device {event.device}; backbone weights {event.backbone_origin}")
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
    if inspector.runtime.backend != args.backend or args.precision not in ("auto", inspector.precision_name):
        _say(f"visinspect: {inspector.precision_note}")
    if args.threshold is not None:
        inspector.thresholds = inspector.thresholds.with_decision(args.threshold)
    if args.accept is not None:
        inspector.thresholds = inspector.thresholds.with_accept(_accept(args.accept, inspector.thresholds.decision))
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
        + "".join(f", {counts[v]} {v.value}" for v in (Verdict.REVIEW, Verdict.NOT_PRODUCT) if counts[v])
        + (f" ({done.reused} from the earlier run, {done.inspected} inspected now)" if done.reused else "")
        + (f"; {done.lost} not saved to the results log" if done.lost else "")
        + (f"; overlays of {overlays.written} images in {overlays.folder}" if overlays else "")
    )
    return EXIT_SOME_FAILED if counts[Verdict.ERROR] or done.lost else EXIT_OK


def cmd_review_archive(args) -> int:
    from engine.archive.command import run_cli

    return run_cli(args, _runtime(args))


def _accept(text: str, decision: float) -> float | None:
    """--accept: a probability up to the decision threshold, or off; ValueError naming what is allowed."""
    if text.strip().lower() in ("off", "none"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--accept must be a probability 0..{decision:g} (the threshold) or off; got {text!r}") from None
    if not 0.0 <= value <= decision:
        raise ValueError(f"--accept must be a probability 0..{decision:g} (the threshold) or off; got {text!r}")
    return value


def cmd_calibrate(args) -> int:
    from engine.jobs.calibrate import CalibrationDone, CalibrationStarted, calibrate_job

    target = None if args.threshold is not None else (args.target or "no-miss")
    for event in _reading_images(calibrate_job(
        args.model, args.data, target=target, threshold=args.threshold, runtime=_runtime(args), layout=args.layout,
        good_dir=args.good_dir, every_image=args.all, dry_run=args.dry_run, review_band=args.review_band, stop=threading.Event(),
    )):  # fmt: skip
        if isinstance(event, CalibrationStarted):
            print(f"calibrating on {event.how}")
        elif isinstance(event, CalibrationDone):
            for note in event.notes:
                print(f"note: {note}")
            print(f"{event.calibration}\n  scored in         {event.precision} (the precision the line runs at this threshold)")
            if event.heat_scale is not None:
                print(f"  heat scale        good parts <= {event.heat_scale.good_level:.2f}, a typical defect 1.00 (absolute heatmaps)")
            if event.calibration.accept is None and args.review_band not in (None, "off", "none"):
                print("  review band       none: the band's start is not below the threshold on these images")
            if event.stored:
                band = f" and review band from {event.calibration.accept:.4f}" if event.calibration.accept is not None else ""
                print(f"stored threshold {event.calibration.threshold:.4f}{band} in {event.model_path} (it was {event.previous_threshold:.4f}); "
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
    if meta.accept_threshold is not None:
        print(f"review band: p(anomaly) {meta.accept_threshold:.4f} up to the threshold is REVIEW (a person decides)")
    if meta.ood_limit is not None:
        views = ", ".join(f"{v.get('kind')} ({v.get('fitted_on', '?')})" for v in meta.ood.get("views", []))
        print(f"out-of-distribution guard: on, score limit {meta.ood_limit:g} (views: {views}); beyond it: NOT_PRODUCT")
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
    "label": cmd_label,
    "compare": cmd_compare,
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
