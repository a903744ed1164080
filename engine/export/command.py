"""`visinspect export`: write the model for another runtime, then check it against torch and print the verdict."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from engine.errors import VisInspectError
from engine.export import DEFAULT_CHECK_IMAGES, FORMATS, SUFFIXES
from engine.export.check import ExportCheck, check_images, compare
from engine.modelfile import load_model


@dataclass(frozen=True)
class Exported:
    """What was written (the .onnx, or the .xml with its .bin) and how it agrees with torch."""

    files: tuple[Path, ...]
    check: ExportCheck


def out_path(fmt: str, out: str | os.PathLike) -> Path:
    """out, checked against the format: .onnx for onnx, .xml (its .bin beside it) for openvino."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    out = Path(out)
    if out.suffix.lower() != SUFFIXES[fmt]:
        raise ValueError(f"the {fmt} file must end in {SUFFIXES[fmt]}; got {out.name!r}")
    return out


def require(*modules: str) -> None:
    """One line naming the extra to install when a runtime the export needs is missing."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise VisInspectError(f"export needs {', '.join(missing)}: pip install 'visinspect[export]' (or {' '.join(missing)})")


def export_model(
    model: str | os.PathLike, fmt: str, out: str | os.PathLike, *, data: str | os.PathLike | None = None,
    check_count: int = DEFAULT_CHECK_IMAGES, layout: str | None = None, good_dir: str | None = None,
) -> Exported:  # fmt: skip
    """Export the model file, then run the file in onnxruntime / OpenVINO against torch fp32 on check images."""
    out = out_path(fmt, out)
    require("onnx", "onnxruntime" if fmt == "onnx" else "openvino")
    loaded = load_model(model)
    images, how = check_images(loaded, data, check_count, layout=layout, good_dir=good_dir)
    if fmt == "onnx":
        from engine.export.onnx_file import OnnxRunner, export_onnx

        files = (export_onnx(loaded, out),)
        runner = OnnxRunner(files[0])
        runtime = "onnxruntime CPU"
    else:
        from engine.export.openvino_file import OpenVinoRunner, export_openvino

        xml = export_openvino(loaded, out)
        files = (xml, xml.with_suffix(".bin"))
        runner = OpenVinoRunner(xml)
        runtime = runner.name
    return Exported(files, ExportCheck(runtime, how, compare(loaded, runner, images)))


def run_cli(args) -> int:
    """Entry point: the files written, the check table; exit 0 when the export agrees, 1 when it does not."""
    done = export_model(args.model, args.format, args.out, data=args.data, check_count=args.check_images,
                        layout=args.layout, good_dir=args.good_dir)  # fmt: skip
    mib = sum(f.stat().st_size for f in done.files) / (1 << 20)
    print(f"wrote {', '.join(str(f) for f in done.files)} ({mib:.1f} MiB; thresholds and preprocessing in its metadata)")
    print(done.check.table())
    if not done.check.agrees:
        print(f"visinspect: the {args.format} export does not agree with torch; do not serve it (the file is kept to examine)", file=sys.stderr)
        return 1
    return 0
