"""Dataset layouts (MVTec AD and class folders) and the founding 80/20 split stratified by defect type."""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sklearn.model_selection import train_test_split

from engine.data.walk import MASK_FOLDER_NAMES, is_mask_folder, list_images
from engine.errors import DatasetError

LAYOUTS = ("auto", "mvtec", "folders")
GOOD = "good"


@dataclass(frozen=True)
class Sample:
    """One labelled image: label 0 = Good, 1 = Anomaly; defect_type is 'good' for good images."""

    path: Path
    label: int
    defect_type: str
    mask_path: Path | None = None


@dataclass(frozen=True)
class DatasetIndex:
    """All labelled images of a dataset folder and the layout they were found in."""

    root: Path
    layout: str
    good_dir: str
    samples: tuple[Sample, ...]

    def counts(self) -> dict[str, int]:
        """Images per type, good first: {'good': 34, 'colour': 17}."""
        c = Counter(s.defect_type for s in self.samples)
        return {GOOD: c.pop(GOOD, 0), **dict(sorted(c.items()))}

    @property
    def n_good(self) -> int:
        return sum(1 for s in self.samples if s.label == 0)

    @property
    def n_anomaly(self) -> int:
        return sum(1 for s in self.samples if s.label == 1)

    @property
    def n_masks(self) -> int:
        return sum(1 for s in self.samples if s.label == 1 and s.mask_path is not None)

    def summary(self) -> dict:
        return {
            "root": str(self.root),
            "layout": self.layout,
            "good_dir": self.good_dir,
            "counts": self.counts(),
            "n_good": self.n_good,
            "n_anomaly": self.n_anomaly,
            "n_masks": self.n_masks,
        }

    def describe(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in self.counts().items())
        return f"{self.layout} layout: {parts}; masks for {self.n_masks} of {self.n_anomaly} defective"


def _find_mask(image: Path, mask_dirs: list[Path]) -> Path | None:
    for d in mask_dirs:
        for name in (f"{image.stem}_mask.png", f"{image.stem}.png"):
            candidate = d / name
            if candidate.is_file() and candidate != image:
                return candidate
    return None


def load_mvtec(root: Path) -> DatasetIndex:
    """MVTec AD: train/good, test/<type>, ground_truth/<type>/<stem>_mask.png (or <stem>.png); pooled."""
    samples = []
    for split in ("train", "test"):
        split_dir = root / split
        if not split_dir.is_dir():
            continue
        for type_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            kind = type_dir.name
            label = 0 if kind == GOOD else 1
            mask_dirs = [root / "ground_truth" / kind]
            for path in list_images(type_dir):
                mask = _find_mask(path, mask_dirs) if label else None
                samples.append(Sample(path, label, kind, mask))
    return DatasetIndex(root, "mvtec", GOOD, tuple(samples))


def class_folders(root: Path) -> list[Path]:
    """The sub-folders of a class-folder dataset that can hold images (mask and hidden folders left out)."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and not is_mask_folder(p.name))


def load_folders(root: Path, *, good_dir: str = GOOD) -> DatasetIndex:
    """Class folders: good_dir holds good images, every other folder is a defect type (searched recursively).

    A .png with the same stem as a non-png image beside it, or in a mask folder, is that image's mask.
    """
    class_dirs = class_folders(root)
    names = [p.name for p in class_dirs]
    if good_dir not in names:
        raise DatasetError(f"{root}: no good-image folder {good_dir!r}; folders found: {', '.join(names) or 'none'}")
    samples = []
    for type_dir in class_dirs:
        kind = type_dir.name
        label = 0 if kind == good_dir else 1
        for path in list_images(type_dir):  # masks beside their images are not listed
            mask = None
            if label:
                mask_dirs = [path.parent] + [path.parent / m for m in MASK_FOLDER_NAMES] + [type_dir / m for m in MASK_FOLDER_NAMES]
                mask = _find_mask(path, mask_dirs) if path.suffix.lower() != ".png" else _find_mask(path, mask_dirs[1:])
            samples.append(Sample(path, label, "good" if label == 0 else kind, mask))
    return DatasetIndex(root, "folders", good_dir, tuple(samples))


def detect_layout(root: Path) -> str:
    """'mvtec' when train/good and test/ exist, else 'folders'."""
    return "mvtec" if (root / "train" / GOOD).is_dir() and (root / "test").is_dir() else "folders"


def load_dataset(root: str | os.PathLike, *, layout: str = "auto", good_dir: str = GOOD, min_defective: int = 2) -> DatasetIndex:
    """Index a dataset folder; at least 2 good and min_defective defective images are needed (0: good-only training)."""
    root = Path(root)
    if layout not in LAYOUTS:
        raise DatasetError(f"layout must be one of {', '.join(LAYOUTS)}; got {layout!r}")
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    if layout == "auto":
        layout = detect_layout(root)
    index = load_mvtec(root) if layout == "mvtec" else load_folders(root, good_dir=good_dir)
    if index.n_good < 2 or index.n_anomaly < min_defective:
        need = "at least 2 of each are needed" if min_defective == 2 else f"at least 2 good and {min_defective} defective are needed"
        raise DatasetError(f"{root}: found {index.n_good} good and {index.n_anomaly} defective images ({layout} layout); {need}")
    return index


@dataclass(frozen=True)
class Split:
    """The training and held-out samples of a dataset."""

    train: tuple[Sample, ...]
    test: tuple[Sample, ...]
    seed: int
    test_fraction: float


def split_dataset(index: DatasetIndex, *, test_fraction: float = 0.2, seed: int = 0) -> Split:
    """Pool everything and split train/held-out, stratified by defect type (rare types merged per class)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test fraction must be between 0 and 1; got {test_fraction}")
    samples = list(index.samples)
    counts = Counter(s.defect_type for s in samples)
    strata = [s.defect_type if counts[s.defect_type] >= 2 else f"_rare{s.label}" for s in samples]
    strata_counts = Counter(strata)
    if min(strata_counts.values()) < 2:  # a lone rare sample: stratify by class only
        strata = [s.label for s in samples]
    train, test = train_test_split(samples, test_size=test_fraction, random_state=seed, stratify=strata)
    order = {s.path: i for i, s in enumerate(samples)}
    return Split(
        train=tuple(sorted(train, key=lambda s: order[s.path])),
        test=tuple(sorted(test, key=lambda s: order[s.path])),
        seed=seed,
        test_fraction=test_fraction,
    )


GOOD_NAME_HINT = re.compile(r"(^|[_\-\s])(good|free|ok|normal|pass|clean)($|[_\-\s])", re.IGNORECASE)


@dataclass(frozen=True, eq=False)
class DatasetScan:
    """A dataset folder as read for a form: its sub-folders, the good-image folder used, and the index or why not."""

    folder: str
    names: tuple[str, ...]
    good_dir: str
    index: DatasetIndex | None
    error: str | None


def scan_dataset(folder: str | os.PathLike, good_dir: str | None = None, *, min_defective: int = 2) -> DatasetScan:
    """List folder's sub-folders, guess the good one unless given (good, else a name like MT_Free or OK), index it
    (min_defective 0: a folder of good images only is a dataset too)."""
    root = Path(folder)
    try:
        names = tuple(p.name for p in class_folders(root))
    except OSError:
        names = ()
    good = good_dir or ("good" if "good" in names else next((n for n in names if GOOD_NAME_HINT.search(n)), GOOD))
    try:
        return DatasetScan(str(folder), names, good, load_dataset(root, good_dir=good, min_defective=min_defective), None)
    except (DatasetError, OSError) as exc:
        return DatasetScan(str(folder), names, good, None, str(exc))
