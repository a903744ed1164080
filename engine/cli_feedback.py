"""`visinspect label` and `visinspect compare`: the operator-feedback loop from the command line.

label: mark a logged result actually good or actually defective; its image goes into the product's dataset.
Retraining is `visinspect train` on that grown dataset; compare then scores old and new model on the same images.
"""
from __future__ import annotations

import argparse
import getpass
import threading

from engine.types import PRECISION_HELP, PRECISIONS, RuntimeOptions


def add_feedback_commands(sub) -> None:
    """Add the label and compare subcommands to the visinspect parser."""
    p = sub.add_parser("label", help="mark a logged result actually good or actually defective; its image joins the dataset")
    p.add_argument("result_id", type=int, help="the result's id in the results log (History shows it)")
    p.add_argument("label", help="good, or defect:TYPE (TYPE: the dataset's defect folder, new or existing)")
    p.add_argument("--log", help="results log (default: the station's)")
    p.add_argument("--who", help="who gives the label (default: this account's user name)")
    p.add_argument("--data", help="dataset folder to copy into (default: the one the judging model was trained on)")
    p.add_argument("--good-dir", default="good", help="with --data, class-folder layout: the good-image folder (default: good)")

    p = sub.add_parser("compare", help="an old and a new model of a product on the same held-out images")
    p.add_argument("old", help="the model in use")
    p.add_argument("new", help="the retrained model")
    p.add_argument("data", nargs="?", help="dataset folder (default: the one the new model was trained on)")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", choices=PRECISIONS, help=PRECISION_HELP)


def cmd_label(args: argparse.Namespace) -> int:
    from engine.feedback import DatasetTarget, label_result
    from engine.results import ResultsLog
    from engine.results.labels import Label

    label = Label.parse(args.label)
    who = args.who or f"{_user()} (command line)"
    target = DatasetTarget.of_folder(args.data, good_dir=args.good_dir) if args.data else None
    with ResultsLog(args.log) as log:
        record = label_result(log, args.result_id, label, who=who, dataset=target)
    print(f"result {record.result_id}: {label.describe()}, by {record.who}\ncopied to {record.copy_path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from engine.jobs.compare import CompareDone, CompareStarted, compare_job

    for event in compare_job(args.old, args.new, args.data, runtime=RuntimeOptions(args.device, args.precision), stop=threading.Event()):
        if isinstance(event, CompareStarted):
            print(f"scoring both models on {event.how}")
        elif isinstance(event, CompareDone):
            print(event.table())
    return 0


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown user"
