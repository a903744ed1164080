"""Learn from the operator: a result marked "actually good" or "actually defective (type)" grows the product's dataset.

The image (the source file for file sources, else the frame in memory or the frame saved with the result)
is copied into the dataset folder the judging model was trained on, in that dataset's layout:

- class folders: `<good_dir>/` for good, `<type>/` for a defect type;
- MVTec: `train/good/` for good (VisInspect pools train/ and test/ and splits them itself, so this only keeps
  MVTec's rule that train/ holds good parts only) and `test/<type>/` for defects.

Copies are named `feedback-<time>-r<result id>.<ext>`, written to a hidden temporary file and linked into place,
so nothing is ever overwritten and a crash never leaves half an image. The label, its type, who gave it and when
go to the results log's labels table; labelling the same result again replaces the label and removes the earlier copy.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from engine.data.decode import is_image_file
from engine.data.layouts import GOOD, class_folders, detect_layout
from engine.errors import ModelFileError, VisInspectError
from engine.modelfile import ModelMeta, read_meta
from engine.results.labels import Label, LabelKind, ResultLabel, read_label, read_labels, write_label
from engine.results.log import ResultRow, ResultsLog
from engine.types import Verdict

PREFIX = "feedback-"


class FeedbackError(VisInspectError):
    """A result cannot be labelled: no such result, no image kept, or no dataset folder to copy it into."""


@dataclass(frozen=True)
class DatasetTarget:
    """A product's dataset folder and its layout: where labelled images go."""

    root: Path
    layout: str  # "mvtec" or "folders"
    good_dir: str = GOOD

    @classmethod
    def of_model(cls, meta: ModelMeta, *, name: str = "the model") -> DatasetTarget:
        """The dataset folder a model records it was trained on; FeedbackError when it has none or it is gone."""
        root = meta.dataset.get("root")
        if not root:
            raise FeedbackError(f"{name} does not record the dataset folder it was trained on")
        if not Path(root).is_dir():
            raise FeedbackError(f"the dataset folder {name} was trained on, {root}, is not there any more")
        return cls(Path(root).resolve(), meta.dataset.get("layout") or detect_layout(Path(root)), meta.dataset.get("good_dir") or GOOD)

    @classmethod
    def of_folder(cls, folder: str | os.PathLike, *, good_dir: str = GOOD) -> DatasetTarget:
        """A dataset folder named directly, its layout found as training finds it."""
        root = Path(folder)
        if not root.is_dir():
            raise FeedbackError(f"dataset folder {root} not found")
        return cls(root.resolve(), detect_layout(root), good_dir)

    def folder_for(self, label: Label) -> Path:
        """The folder a label's image goes to in this layout."""
        if self.layout == "mvtec":
            return self.root / ("train" if label.kind is LabelKind.GOOD else "test") / (label.defect_type or GOOD)
        return self.root / (self.good_dir if label.kind is LabelKind.GOOD else label.defect_type)

    def defect_types(self) -> list[str]:
        """The defect types the dataset already has (its defect folders), for the operator to choose from."""
        base = self.root / "test" if self.layout == "mvtec" else self.root
        try:
            names = [p.name for p in class_folders(base)] if base.is_dir() else []
        except OSError:
            return []
        return [n for n in names if n not in (GOOD, self.good_dir)]


@dataclass(frozen=True)
class LabelCounts:
    """Labelled images added to a dataset since a model was trained: good ones and defective ones per type."""

    good: int = 0
    defects: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.good + sum(self.defects.values())

    def describe(self) -> str:
        """e.g. '3 new labelled images since this model (1 good, 2 defective: scratch 2)'."""
        n_defect = sum(self.defects.values())
        types = ", ".join(f"{k} {v}" for k, v in sorted(self.defects.items()))
        detail = f"{self.good} good, {n_defect} defective" + (f": {types}" if types else "")
        plural = "image" if self.total == 1 else "images"
        return f"{self.total} new labelled {plural} since this model ({detail})"


def _image_of(row: ResultRow, image: np.ndarray | None) -> Path | np.ndarray:
    """The source file when the result came from one, else the frame given, else the frame saved with the result."""
    item = Path(row.item)
    if row.item and is_image_file(row.item) and item.is_file():
        return item
    if image is not None:
        return image
    if row.frame_path and Path(row.frame_path).is_file():
        return Path(row.frame_path)
    raise FeedbackError(
        f"no image of result {row.id} was kept (only ANOMALY frames are saved, and {row.item!r} is not an image file)"
    )


def _encoded(source: Path | np.ndarray) -> tuple[bytes, str]:
    """The bytes to write and their extension: a file as it is, a frame in memory as PNG."""
    if isinstance(source, Path):
        try:
            return source.read_bytes(), source.suffix.lower()
        except OSError as exc:
            raise FeedbackError(f"{source} cannot be read ({exc.strerror or exc})") from None
    bgr = cv2.cvtColor(source, cv2.COLOR_RGB2BGR) if source.ndim == 3 and source.shape[2] == 3 else source
    ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise FeedbackError("the frame cannot be encoded as PNG")
    return buf.tobytes(), ".png"


def write_new_file(folder: Path, stem: str, data: bytes, ext: str) -> Path:
    """Write data to folder/stem.ext, or stem-2.ext, ... (never over a file): a hidden temp file linked into place."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-feedback-", suffix=ext, dir=folder)
    except OSError as exc:
        raise FeedbackError(f"cannot write into {folder} ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        for n in range(1, 10_000):
            target = folder / f"{stem}{'' if n == 1 else f'-{n}'}{ext}"
            try:
                os.link(tmp, target)  # fails when the name exists: an atomic "create, never overwrite"
                return target
            except FileExistsError:
                continue
            except OSError:  # a file system without hard links
                if not target.exists():
                    os.replace(tmp, target)
                    return target
        raise FeedbackError(f"no free file name for {stem}{ext} in {folder}")
    except OSError as exc:
        raise FeedbackError(f"cannot write into {folder} ({exc.strerror or exc})") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def dataset_of_result(row: ResultRow) -> DatasetTarget:
    """The dataset folder of the model that judged a result (read from its model file)."""
    if not row.model_path:
        raise FeedbackError(f"result {row.id} records no model, so its product's dataset folder is unknown")
    try:
        meta = read_meta(row.model_path)
    except ModelFileError as exc:
        raise FeedbackError(f"the dataset folder of result {row.id} is unknown: {exc}") from None
    return DatasetTarget.of_model(meta, name=Path(row.model_path).name)


def label_result(
    log: ResultsLog,
    result_id: int,
    label: Label,
    *,
    who: str,
    dataset: DatasetTarget | None = None,
    image: np.ndarray | None = None,
) -> ResultLabel:
    """Copy a result's image into the product's dataset as `label` says, record the label; relabelling replaces both.

    dataset: where to copy (default: the dataset the judging model was trained on). image: the RGB frame in
    memory (the Live tab's), used when the result did not come from an image file.
    """
    row = log.get(result_id)
    if row is None:
        raise FeedbackError(f"there is no result {result_id} in {log.path}")
    if row.verdict is Verdict.ERROR and not (row.item and Path(row.item).is_file()):
        raise FeedbackError(f"result {result_id} is an error with no image to label")
    target = dataset or dataset_of_result(row)
    folder = target.folder_for(label)
    old = read_label(log, result_id)
    now = time.time()
    if old is not None and old.label == label and Path(old.copy_path).parent == folder and Path(old.copy_path).is_file():
        copy = Path(old.copy_path)  # the same label again: the copy stays, who and when are updated
    else:
        data, ext = _encoded(_image_of(row, image))
        stem = f"{PREFIX}{datetime.fromtimestamp(now).strftime('%Y%m%d-%H%M%S')}-r{row.id}"
        copy = write_new_file(folder, stem, data, ext)
    record = ResultLabel(row.id, now, who, label, str(target.root), str(copy))
    try:
        write_label(log, record)
    except sqlite3.Error as exc:
        if old is None or Path(old.copy_path) != copy:
            with contextlib.suppress(OSError):
                copy.unlink()
        raise FeedbackError(f"the label was not saved (results log: {exc}); the dataset is unchanged") from None
    if old is not None and Path(old.copy_path) != copy:
        with contextlib.suppress(OSError):
            Path(old.copy_path).unlink()
    return record


def find_logged_result(log: ResultsLog, item: str | int, model_sha256: str, p_anomaly: float | None = None) -> ResultRow | None:
    """The newest logged result of an item (file path or frame index) judged by a model (the Live tab's current one)."""
    log.flush()
    with log.connection() as conn:
        raw = conn.execute(
            "SELECT id, p_anomaly FROM results WHERE item = ? AND model_hash = ? ORDER BY id DESC LIMIT 50",
            (str(item), model_sha256),
        ).fetchall()
    for result_id, p in raw:
        if p_anomaly is None or (p is not None and abs(p - p_anomaly) < 1e-6):
            return log.get(result_id)
    return None


def label_item(
    log: ResultsLog, item: str | int, model_sha256: str, p_anomaly: float | None, label: Label, *, who: str,
    image: np.ndarray | None = None,
) -> ResultLabel:
    """Label the logged result of an item judged by a model (the Live view's current frame, a Review row)."""
    row = find_logged_result(log, item, model_sha256, p_anomaly)
    if row is None:
        raise FeedbackError("this result is not in the results log, so it cannot be labelled")
    return label_result(log, row.id, label, who=who, image=image)


def trained_since(meta: ModelMeta) -> float:
    """When a model's training read its images (seconds since the epoch): labels from then on are new to it."""
    created = datetime.fromisoformat(meta.created).timestamp() + 1.0  # recorded to the second, rounded down
    return created - float(meta.training.get("seconds", 0.0) or 0.0)


def new_labels_since(log: ResultsLog, model: ModelMeta | str | os.PathLike) -> LabelCounts:
    """Labelled images copied into a model's dataset since it was trained (copies still there), good and per type."""
    meta = model if isinstance(model, ModelMeta) else read_meta(model)
    root = meta.dataset.get("root")
    if not root:
        return LabelCounts()
    good, defects = 0, {}
    for record in read_labels(log, since=trained_since(meta), dataset=str(Path(root).resolve())):
        if not Path(record.copy_path).is_file():
            continue
        if record.label.kind is LabelKind.GOOD:
            good += 1
        else:
            defects[record.label.defect_type] = defects.get(record.label.defect_type, 0) + 1
    return LabelCounts(good, defects)
