"""Export a product model for serving elsewhere (ONNX, OpenVINO IR), checked against torch before it leaves.

Kept free of heavy imports so the command line can list the formats before torch loads:
engine.export.onnx_file and engine.export.openvino_file write the files, engine.export.check
compares them with torch, engine.export.command is `visinspect export`.
"""

FORMATS = ("onnx", "openvino")
SUFFIXES = {"onnx": ".onnx", "openvino": ".xml"}
DEFAULT_CHECK_IMAGES = 64


def add_export_arguments(p) -> None:
    """The options of `visinspect export` (the dataset layout options are the CLI's own)."""
    p.add_argument("model")
    p.add_argument("--format", default="onnx", choices=FORMATS, help="onnx (one .onnx file, default) or openvino (.xml + .bin)")
    p.add_argument("--out", required=True, help="file to write: NAME.onnx, or NAME.xml for openvino")
    p.add_argument("--data", help="dataset folder: check on the model's held-out images (default: generated images)")
    p.add_argument("--check-images", type=int, default=DEFAULT_CHECK_IMAGES,
                   help=f"at most this many images in the check (default {DEFAULT_CHECK_IMAGES})")  # fmt: skip
