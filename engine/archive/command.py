"""`visinspect review-archive`: the archive review job on the command line, with a progress bar and a summary."""
from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path


def add_archive_arguments(p: argparse.ArgumentParser) -> None:
    """The command's own flags (the runtime flags are the station's usual ones, added by the CLI)."""
    p.add_argument("model")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files or folders (searched recursively)")
    p.add_argument("--files-from", metavar="LIST", help="also inspect the files named in this text file, one per line")
    p.add_argument("--out", required=True, help="results file, .parquet or .csv; a rerun skips the files it already holds")
    p.add_argument("--ray", metavar="ADDRESS", help="run on the Ray cluster at ADDRESS (auto: the one this node belongs to; "
                   "ray://HEAD:10001: Ray Client), or local: a Ray on this machine only (default: in-process, no Ray)")  # fmt: skip
    p.add_argument("--workers", type=int, default=1, help="with --ray: inspect actors, each loads the model once (default 1)")
    p.add_argument("--cpus-per-worker", type=float, help="with --ray: CPUs per actor (default: all but one CPU for decoding, shared)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threshold", type=float, help="decision threshold (default: the model's)")
    p.add_argument("--central", metavar="URL", help="also send the rows to the plant PostgreSQL at this URL, without a "
                   "password (PGPASSWORD or a pgpass file gives it); a rerun sends none twice")  # fmt: skip
    p.add_argument("--station", metavar="ID", help="with --central: the station id the rows carry (default: archive:HOST)")


def _inputs(args) -> list[str]:
    inputs = list(args.inputs)
    if args.files_from:
        with open(args.files_from, encoding="utf-8") as f:
            inputs += [line.strip() for line in f if line.strip()]
    if not inputs:
        raise ValueError("give at least one INPUT or --files-from LIST")
    return inputs


def run_cli(args, runtime) -> int:
    """Run the review; exit 0 when every file was inspected, 1 when some could not be."""
    from engine.archive.job import (
        ArchiveDone,
        ArchiveProgress,
        ArchiveStarted,
        archive_job,
        check_output,
        in_process,
        summary,
    )
    from engine.inference.inspector import Inspector
    from engine.progress import progress_bar
    from engine.types import Verdict

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1; got {args.batch_size}")
    if args.ray is None and (args.workers != 1 or args.cpus_per_worker is not None):
        raise ValueError("--workers and --cpus-per-worker go with --ray")
    check_output(args.out)
    if args.station and not args.central:
        raise ValueError("--station goes with --central")
    target = _central_target(args.central)
    inputs = _inputs(args)
    inspector = Inspector.open(args.model, runtime)  # on the driver too: a bad model file stops here, in one line
    if args.threshold is not None:
        inspector.thresholds = inspector.thresholds.with_decision(args.threshold)
    started = False
    stop = threading.Event()
    if args.ray is None:
        source, how = in_process(inspector, batch_size=args.batch_size, stop=stop), f"in-process, {inspector.runtime.describe()}"
    else:
        from engine.archive.ray_pipeline import connect, ray_source

        started = connect(args.ray)
        source, layout = ray_source(inspector, runtime, workers=args.workers, batch_size=args.batch_size,
                                    cpus_per_worker=args.cpus_per_worker)  # fmt: skip
        how = layout.describe(args.ray)
    bar, done = None, None
    try:
        for event in archive_job(inputs, inspector, args.out, source=source, how=how, stop=stop):
            if isinstance(event, ArchiveStarted):
                resumed = f", {event.resumed} done by an earlier run" if event.resumed else ""
                print(f"{event.total} files{resumed}; inspecting {event.todo} on {event.how}", file=sys.stderr, flush=True)
                bar = progress_bar(event.todo, "inspecting")
            elif isinstance(event, ArchiveProgress):
                bar.update(event.new)
            elif isinstance(event, ArchiveDone):
                done = event
    finally:
        if bar is not None:
            bar.close()
        if args.ray is not None:
            from engine.archive.ray_pipeline import disconnect

            disconnect(started)
    print(summary(done), file=sys.stderr, flush=True)
    if target is not None:
        _send(target, args, inspector, inputs)
    return 1 if done.counts.get(Verdict.ERROR) else 0


def _central_target(url: str | None):
    """The central store of --central, checked before the review starts (a bad URL costs no inspection)."""
    if not url:
        return None
    from engine.central.target import CentralTarget

    return CentralTarget.parse(url)


def _send(target, args, inspector, inputs: list[str]) -> None:
    """Send the output's rows to the central store and say so; a failure names the rerun that sends them."""
    from engine.archive.rows import read_output
    from engine.central.archive import push_archive
    from engine.central.errors import CentralError

    source = f"review-archive {inputs[0]}" + (f" (+{len(inputs) - 1} more)" if len(inputs) > 1 else "")
    try:
        report = push_archive(target, read_output(Path(args.out)), model_path=inspector.ref.path,
                              thresholds=inspector.thresholds, source=source, station=args.station)  # fmt: skip
    except CentralError as exc:
        raise type(exc)(f"{exc}; the results are in {args.out}: run the same command again to send them") from None
    print(f"central: {report.describe()} as station {report.station_id}", file=sys.stderr, flush=True)
