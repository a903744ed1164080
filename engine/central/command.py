"""`visinspect sync URL [--log DB] [--station ID]`: push every result the central store lacks, print one line."""
from __future__ import annotations

import argparse
from pathlib import Path

URL_HELP = ("central PostgreSQL, e.g. postgresql://station@plant-db/visinspect?sslmode=require (no password here: "
            "PGPASSWORD or a pgpass file gives it)")  # fmt: skip


def add_sync_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", metavar="URL", help=URL_HELP)
    p.add_argument("--log", metavar="DB", help="results log to send (default: the station's)")
    p.add_argument("--station", metavar="ID", help="station id its rows carry (default: the one stored in the log, "
                   "else this machine's name and a random suffix, stored on first use)")  # fmt: skip
    p.add_argument("--frames-url", metavar="URL", help="anomaly frames are referenced as URL/<path in the log folder> "
                   "(with --share: URL/<path in the share>; default: their path on this station or the share)")  # fmt: skip
    p.add_argument("--share", metavar="DIR", help="copy each saved anomaly frame to DIR/STATION/YYYY-MM-DD/ (a mounted "
                   "plant share) before its row is sent; the row then references the copy")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=500, help="rows per server transaction (default: 500)")


def run_sync(args) -> int:
    """Send, print 'N results sent to HOST/DB (M already there)'; errors propagate as one-line CentralError."""
    from engine.central.sync import sync_log
    from engine.results import default_results_path

    report = sync_log(args.url, Path(args.log) if args.log else default_results_path(), station=args.station,
                      batch_size=args.batch_size, frames_url=args.frames_url, share=args.share)  # fmt: skip
    print(report.describe())
    if not report.mark_saved:
        print("note: the results log was busy; its sent-mark moves on the next sync (no row is sent twice)")
    return 0
