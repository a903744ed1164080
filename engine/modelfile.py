"""The one model file format: safetensors tensors + JSON metadata, read without ever unpickling."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from engine import __version__
from engine.data.preprocess import Preprocess
from engine.errors import ModelFileError
from engine.inference import ood as ood_stats
from engine.inference.localize import DEFAULT_BOX_THRESHOLD, DEFAULT_MIN_AREA_FRACTION, CamScale
from engine.model import BACKBONES, VGG16CAM, PaDiM, empty_model, empty_padim
from engine.thresholds import Thresholds
from engine.tiling import check_tiling
from engine.types import CLASS_NAMES, ModelRef

FORMAT = "visinspect-model"
FORMAT_VERSION = 1
ARCHITECTURE = "vgg16-cam"
METHODS = {"cam": ARCHITECTURE, "padim": "vgg16-padim"}  # method -> the architecture its files record
MODEL_SUFFIX = ".safetensors"
CALIBRATION_KEY = "calibration.images"  # optional tensor stored beside the weights (not a weight)


@dataclass(frozen=True)
class ModelMeta:
    """Everything needed to use and describe a product model; stored as JSON inside the file."""

    product: str
    backbone: str
    backbone_weights: dict  # {"kind": imagenet|file|none, "detail": ...}
    preprocess: dict
    trainable: str = "conv5"
    threshold: float = 0.5
    box_threshold: float = DEFAULT_BOX_THRESHOLD
    min_area_fraction: float = DEFAULT_MIN_AREA_FRACTION
    class_names: tuple[str, ...] = CLASS_NAMES
    dataset: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)
    heat_scale: dict = field(default_factory=dict)  # CamScale.to_dict(); empty in files made before absolute heatmaps
    method: str = "cam"  # "cam": the supervised classifier; "padim": one-class, fitted on good parts only
    one_class: dict = field(default_factory=dict)  # padim: {"dims", "grid", "stages", "score_map", ...}
    tile: int | None = None  # tile side in native pixels (inspected tile by tile); None: the whole image resized
    tile_overlap: int = 0  # pixels neighbouring tiles share
    accept_threshold: float | None = None  # review band: p in [accept, threshold) is REVIEW; None: no band
    ood: dict = field(default_factory=dict)  # OodStats.to_meta() (mean and precision are tensors in the file); empty: none
    ood_limit: float | None = None  # the guard's limit in force; None: guard off
    architecture: str = ARCHITECTURE
    format_version: int = FORMAT_VERSION
    engine_version: str = __version__
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def input_size(self) -> int:
        return int(self.preprocess["size"])

    @property
    def pretrained(self) -> bool:
        return self.backbone_weights.get("kind") != "none"

    @property
    def thresholds(self) -> Thresholds:
        """The decision threshold, box threshold and minimum box area stored in the file, as one Thresholds."""
        return Thresholds.of(self)

    @property
    def cam_scale(self) -> CamScale | None:
        """The absolute heat scale stored with the model, or None (older files: heatmaps are stretched per image)."""
        return CamScale.from_dict(self.heat_scale)

    def preprocessing(self) -> Preprocess:
        return Preprocess.from_dict(self.preprocess)

    def describe(self) -> str:
        """One line an engineer reads in a model list."""
        weights = {"imagenet": "ImageNet", "file": "ImageNet (local file)", "none": "random init (no ImageNet)"}
        acc = self.metrics.get("accuracy")
        bal = self.metrics.get("balanced_accuracy")
        held = f", held-out acc {acc:.1%} / bal {bal:.1%}" if acc is not None and bal is not None else ""
        band = f", review band from p {self.accept_threshold:.3g}" if self.accept_threshold is not None else ""
        guard = "" if self.ood_limit is not None else ", out-of-distribution guard off (no feature statistics)"
        return (
            f"{self.product}: {self.backbone}{', one-class PaDiM (good parts only)' if self.method == 'padim' else ''}, backbone {weights.get(self.backbone_weights.get('kind'), '?')}, "
            f"{self.input_size} px{f', tiles of {self.tile} px' if self.tile else ''}, trained {self.created[:16].replace('T', ' ')}{held}{band}{guard}"
        )

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **asdict(self)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, name: str) -> ModelMeta:
        try:
            d = json.loads(text)
        except json.JSONDecodeError:
            raise ModelFileError(f"{name}: model metadata is not valid JSON") from None
        if not isinstance(d, dict) or d.pop("format", None) != FORMAT:
            raise ModelFileError(f"{name}: not a VisInspect model file")
        version = d.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ModelFileError(
                f"{name}: made by a newer VisInspect (format {version}); this version reads format {FORMAT_VERSION}"
            )
        method = d.get("method", "cam")
        if method not in METHODS:
            raise ModelFileError(f"{name}: method {method!r} is not one of {', '.join(METHODS)}")
        if d.get("architecture") != METHODS[method]:
            raise ModelFileError(f"{name}: architecture {d.get('architecture')!r} is not {METHODS[method]!r}")
        if d.get("backbone") not in BACKBONES:
            raise ModelFileError(f"{name}: backbone {d.get('backbone')!r} is not one of {', '.join(BACKBONES)}")
        known = {f for f in cls.__dataclass_fields__}
        try:
            meta = cls(**{k: v for k, v in d.items() if k in known})
            meta.preprocessing()
            CamScale.from_dict(meta.heat_scale)  # a damaged scale is a damaged file, said on load
            if method == "padim":
                int(meta.one_class["dims"])
            if meta.tile is not None:
                check_tiling(meta.tile, meta.tile_overlap)
            Thresholds.of(meta)  # an accept above the decision, or a limit that is not a number, is a damaged file
        except (TypeError, KeyError, ValueError) as exc:
            raise ModelFileError(f"{name}: model metadata is incomplete ({exc})") from None
        return replace(meta, class_names=tuple(meta.class_names))


@dataclass(frozen=True)
class LoadedModel:
    """A model read from disk with its metadata and the file's hash (which every result records)."""

    model: VGG16CAM | PaDiM
    meta: ModelMeta
    path: Path
    sha256: str
    calibration: np.ndarray | None = None  # (N, S, S, 3) uint8 training images, for the int8 CPU path
    ood: ood_stats.OodStats | None = None  # the training images' feature statistics; None: guard off

    @property
    def model_id(self) -> str:
        return self.sha256[:16]

    @property
    def ref(self) -> ModelRef:
        """The identity every result records: the file's absolute path and full sha256."""
        return ModelRef(str(self.path), self.sha256)


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_model(
    path: str | os.PathLike, model: VGG16CAM | PaDiM, meta: ModelMeta, *, calibration: np.ndarray | None = None,
    ood: ood_stats.OodStats | None = None,
) -> Path:
    """Write the model atomically (temp file + rename) so a crash never leaves half a model file.

    calibration: a few resized training images (N, S, S, 3) uint8, good and defective, stored so the
    int8 CPU path can calibrate itself wherever the model is loaded. ood: the out-of-distribution guard's
    statistics (meta.ood and meta.ood_limit are filled from them when meta has none).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    if calibration is not None:
        size = meta.input_size
        if calibration.dtype != np.uint8 or calibration.ndim != 4 or calibration.shape[1:] != (size, size, 3):
            raise ValueError(f"calibration images must be uint8 (N, {size}, {size}, 3); got {calibration.dtype} {calibration.shape}")
        state[CALIBRATION_KEY] = torch.from_numpy(np.ascontiguousarray(calibration))
    if ood is not None:
        state.update(ood.tensors())
        meta = replace(meta, ood=meta.ood or ood.to_meta(), ood_limit=meta.ood_limit if meta.ood else ood.limit)
    elif meta.ood or meta.ood_limit is not None:
        meta = replace(meta, ood={}, ood_limit=None)  # no statistics written: no guard claimed
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=MODEL_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        save_file(state, tmp, metadata={"visinspect": meta.to_json()})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_meta(path: str | os.PathLike) -> ModelMeta:
    """Read only the metadata (fast: the header), validating that this is a VisInspect model."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("visinspect")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: not a safetensors model file ({str(exc).splitlines()[0][:120]})") from None
    if raw is None:
        raise ModelFileError(f"{path}: a safetensors file, but not a VisInspect model (no metadata)")
    return ModelMeta.from_json(raw, name=str(path))


def load_model(path: str | os.PathLike, *, device: torch.device | str = "cpu") -> LoadedModel:
    """Load a model file into an eval-mode VGG16CAM or PaDiM (its method) on device; any defect in the file is a ModelFileError."""
    path = Path(path).resolve()
    meta = read_meta(path)
    if meta.method == "padim":
        try:
            model = empty_padim(backbone=meta.backbone, image_size=meta.input_size, dims=int(meta.one_class["dims"]))
        except ValueError as exc:
            raise ModelFileError(f"{path}: {exc}") from None
    else:
        model = empty_model(backbone=meta.backbone, num_classes=len(meta.class_names))
    try:
        state = {}
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for key in f.keys():
                state[key] = f.get_tensor(key)
        calibration = _calibration(state.pop(CALIBRATION_KEY, None), meta.input_size)
        ood = _ood(meta, {k: state.pop(k) for k in [k for k in state if k.startswith(ood_stats.TENSOR_PREFIX)]})
        model.load_state_dict(state, strict=True)
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise ModelFileError(f"{path}: model tensors are corrupt or do not match ({str(exc).splitlines()[0][:160]})") from None
    model.to(device).eval()
    return LoadedModel(model=model, meta=meta, path=path, sha256=file_sha256(path), calibration=calibration, ood=ood)


def _ood(meta: ModelMeta, tensors: dict[str, torch.Tensor]) -> ood_stats.OodStats | None:
    """The stored guard statistics, checked against meta.ood; None for a file without them (guard off)."""
    if not tensors and not meta.ood:
        return None
    if not tensors or not meta.ood:
        raise ValueError("out-of-distribution statistics are incomplete")
    return ood_stats.OodStats.from_file(meta.ood, tensors)


def _calibration(tensor: torch.Tensor | None, size: int) -> np.ndarray | None:
    """The stored calibration images, checked: uint8 (N, S, S, 3) or a ValueError naming what is wrong."""
    if tensor is None:
        return None
    if tensor.dtype != torch.uint8 or tensor.ndim != 4 or tuple(tensor.shape[1:]) != (size, size, 3):
        raise ValueError(f"calibration images are {tensor.dtype} {tuple(tensor.shape)}, not uint8 (N, {size}, {size}, 3)")
    return tensor.numpy()


def update_meta(path: str | os.PathLike, **changes) -> ModelMeta:
    """Rewrite a model file with changed metadata (e.g. a calibrated threshold), tensors untouched."""
    loaded = load_model(path)
    meta = replace(loaded.meta, **changes)
    if meta.accept_threshold is not None and meta.accept_threshold > meta.threshold:
        meta = replace(meta, accept_threshold=None)  # a new threshold below the review band ends the band
    save_model(path, loaded.model, meta, calibration=loaded.calibration, ood=loaded.ood)
    return meta


@dataclass(frozen=True)
class ModelListing:
    """A model file found in a folder: its metadata, or why it cannot be used."""

    path: Path
    meta: ModelMeta | None
    error: str | None = None


def list_models(folder: str | os.PathLike) -> list[ModelListing]:
    """Every model file in folder, newest first, each with its metadata or the one-line reason it is unusable."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob(f"*{MODEL_SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            found.append(ModelListing(path, read_meta(path)))
        except ModelFileError as exc:
            found.append(ModelListing(path, None, str(exc)))
    return found
