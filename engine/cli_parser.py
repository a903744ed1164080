"""The `visinspect` command line's arguments: one parser, every sub-command and its flags (torch-free, so --help is quick)."""

from __future__ import annotations

import argparse

from engine.archive.command import add_archive_arguments
from engine.bench_options import add_bench_arguments
from engine.central.command import add_sync_arguments
from engine.cli_feedback import add_feedback_commands
from engine.export import add_export_arguments
from engine.lineio.users import add_users_arguments
from engine.serve import add_serve_arguments
from engine.training.config import add_config_arguments
from engine.types import BACKEND_HELP, BACKENDS, DEVICE_HELP, PRECISION_HELP, PRECISIONS

EXIT_CANNOT_RUN = 2  # a command that cannot run at all (bad flag, missing file): one line, this status


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
    p.add_argument("--accept", metavar="P",
                   help="review band: p(anomaly) from P up to the threshold is REVIEW; 'off' for none (default: the model's)")  # fmt: skip
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
    p.add_argument("--review-band", metavar="FROM",
                   help="also store a review band: parts from FROM up to the threshold are REVIEW (a person decides). "
                        "FROM is a target (e.g. no-miss: no defect passes unseen), a probability, or off "
                        "(default: keep the model's band). E.g. --target max-false-reject:1 --review-band no-miss")  # fmt: skip
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
    add_feedback_commands(sub)
    return parser
