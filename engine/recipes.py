"""Product recipes: model, thresholds, camera, ROI and line I/O of one product, as a small JSON file per product.

A recipe is stored as NAME.json in the recipes folder; the engineer switches it in the station, the PLC by
writing the Recipe node or register, and every result row records the recipe it was judged under.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from engine import paths
from engine.errors import RecipeError

RECIPE_SUFFIX = ".json"
FORMAT = "visinspect-recipe"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")
NAME_RULE = "1 to 64 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit"


def parse_host_port(text: str, *, what: str = "address") -> tuple[str, int]:
    """(host, port) from "HOST:PORT" ("[::1]:4840" for IPv6); ValueError naming what was wrong."""
    host, sep, port = str(text).strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{what} {text!r} is not HOST:PORT with a port 0..65535, e.g. 127.0.0.1:4840")
    return host, int(port)


@dataclass(frozen=True)
class LineIOSettings:
    """Where the station talks to the line: each "HOST:PORT", None for an endpoint not used."""

    opcua: str | None = None
    modbus: str | None = None
    mqtt: str | None = None
    mqtt_topic: str | None = None  # None: visinspect/<station>/results

    def __post_init__(self) -> None:
        for key in ("opcua", "modbus", "mqtt"):
            value = getattr(self, key)
            if value is not None:
                parse_host_port(value, what=f"io.{key}")

    @property
    def any(self) -> bool:
        return any((self.opcua, self.modbus, self.mqtt))


@dataclass(frozen=True)
class Recipe:
    """One product: which model judges it, at which thresholds, from which camera, inside which ROI, with which I/O."""

    name: str
    model: str  # model path; relative paths in the file are relative to the recipe file (load_recipe resolves them)
    decision_threshold: float | None = None  # None: the model's own
    box_threshold: float | None = None
    source: str | None = None  # a source spec, e.g. "pylon:0?exposure_us=5000&trigger=software"
    roi: tuple[int, int, int, int] | None = None  # x, y, width, height in frame pixels: only this part is inspected
    io: LineIOSettings = field(default_factory=LineIOSettings)
    triggered: bool = False  # True: one frame per PLC trigger; False: every frame (free run)
    accept_threshold: float | None = None  # review band start (p from it up to the decision is REVIEW); None: the model's

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise RecipeError(f"recipe name {self.name!r} is not allowed: use {NAME_RULE}")
        if not isinstance(self.model, str) or not self.model.strip():
            raise RecipeError(f"recipe {self.name}: model must be a model file path, not {self.model!r}")
        for key in ("decision_threshold", "box_threshold", "accept_threshold"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0):
                raise RecipeError(f"recipe {self.name}: {key} must be a number within 0..1 or null, not {value!r}")
        if self.source is not None and (not isinstance(self.source, str) or not self.source.strip()):
            raise RecipeError(f"recipe {self.name}: source must be a source spec or null, not {self.source!r}")
        if self.roi is not None:
            object.__setattr__(self, "roi", _check_roi(self.roi, f"recipe {self.name}: roi"))
        if not isinstance(self.triggered, bool):
            raise RecipeError(f"recipe {self.name}: triggered must be true or false, not {self.triggered!r}")

    def to_json_dict(self) -> dict:
        """The recipe as the JSON object stored in its file."""
        d = asdict(self)
        d["roi"] = list(self.roi) if self.roi is not None else None
        return {"format": FORMAT, **d}


def _check_roi(roi, what: str) -> tuple[int, int, int, int]:
    """roi as four ints x, y, width, height (x, y >= 0; width, height >= 1); RecipeError saying what is wrong."""
    try:
        values = tuple(roi)
    except TypeError:
        values = ()
    if len(values) != 4 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in values):
        raise RecipeError(f"{what} must be four whole numbers [x, y, width, height], not {roi!r}")
    x, y, w, h = (int(v) for v in values)
    if x < 0 or y < 0 or w < 1 or h < 1:
        raise RecipeError(f"{what} [{x}, {y}, {w}, {h}] needs x, y >= 0 and width, height >= 1")
    return x, y, w, h


def crop_to_roi(image: np.ndarray, roi) -> np.ndarray:
    """The part of image inside roi (x, y, width, height), or the image itself for roi None; RecipeError if outside."""
    if roi is None:
        return image
    x, y, w, h = _check_roi(roi, "ROI")
    height, width = image.shape[:2]
    if x + w > width or y + h > height:
        raise RecipeError(f"ROI [{x}, {y}, {w}, {h}] reaches outside the {width}x{height} frame")
    return np.ascontiguousarray(image[y : y + h, x : x + w])


def recipes_dir() -> Path:
    """The recipes folder: $VISINSPECT_RECIPES, else "recipes" in the data folder."""
    env = os.environ.get("VISINSPECT_RECIPES")
    return Path(env) if env else paths.data_dir() / "recipes"


def list_recipes(folder: Path | None = None) -> list[str]:
    """The names of the recipes in the folder, sorted (an absent folder has none)."""
    folder = Path(folder) if folder is not None else recipes_dir()
    if not folder.is_dir():
        return []
    return sorted((p.stem for p in folder.glob(f"*{RECIPE_SUFFIX}") if _NAME.fullmatch(p.stem)), key=str.lower)


def _recipe_path(name_or_path: str, folder: Path | None) -> Path:
    text = str(name_or_path).strip()
    if text.endswith(RECIPE_SUFFIX) or os.sep in text or "/" in text:
        return Path(text).expanduser()
    if not _NAME.fullmatch(text):
        raise RecipeError(f"recipe name {text!r} is not allowed: use {NAME_RULE}")
    return (Path(folder) if folder is not None else recipes_dir()) / f"{text}{RECIPE_SUFFIX}"


def load_recipe(name_or_path: str, folder: Path | None = None) -> Recipe:
    """The recipe of that name in the folder (or in that .json file), its model path made absolute; RecipeError, one line."""
    path = _recipe_path(name_or_path, folder)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = ", ".join(list_recipes(path.parent)) or "none"
        raise RecipeError(f"recipe {name_or_path!r} not found in {path.parent} (recipes there: {known})") from None
    except OSError as exc:
        raise RecipeError(f"recipe file {path} cannot be read ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecipeError(f"recipe file {path} is not valid JSON ({exc})") from None
    return _from_dict(data, path)


def _from_dict(data, path: Path) -> Recipe:
    if not isinstance(data, dict):
        raise RecipeError(f"recipe file {path} must hold one JSON object")
    data = dict(data)
    fmt = data.pop("format", FORMAT)
    if fmt != FORMAT:
        raise RecipeError(f"recipe file {path}: format {fmt!r} is not {FORMAT!r}")
    allowed = [f.name for f in fields(Recipe)]
    for key in data:
        if key not in allowed:
            raise RecipeError(f"recipe file {path}: unknown key {key!r}; allowed: {', '.join(allowed)}")
    data.setdefault("name", path.stem)
    if "model" not in data:
        raise RecipeError(f"recipe file {path}: key 'model' (the model file) is missing")
    io = data.get("io") or {}
    io_keys = [f.name for f in fields(LineIOSettings)]
    if not isinstance(io, dict) or any(k not in io_keys for k in io):
        raise RecipeError(f"recipe file {path}: io must be an object with keys {', '.join(io_keys)}, not {io!r}")
    try:
        data["io"] = LineIOSettings(**io)
    except ValueError as exc:
        raise RecipeError(f"recipe file {path}: {exc}") from None
    model = data["model"]
    if isinstance(model, str) and model.strip() and not Path(model).expanduser().is_absolute():
        data["model"] = str((path.parent / model).resolve())
    try:
        return Recipe(**data)
    except RecipeError as exc:
        raise RecipeError(f"recipe file {path}: {exc}") from None


def save_recipe(recipe: Recipe, folder: Path | None = None, *, exist_ok: bool = True) -> Path:
    """Write recipe as NAME.json in the folder atomically; RecipeError when the file there holds another recipe.

    exist_ok False: also refuse to replace an existing recipe of the same name (a "save as new").
    """
    folder = Path(folder) if folder is not None else recipes_dir()
    target = folder / f"{recipe.name}{RECIPE_SUFFIX}"
    if target.exists():
        if not exist_ok:
            raise RecipeError(f"recipe {recipe.name!r} already exists in {folder}")
        try:
            other = json.loads(target.read_text(encoding="utf-8"))
            other_name = other.get("name", target.stem) if isinstance(other, dict) else None
        except (OSError, ValueError):
            other_name = None
        if other_name != recipe.name:
            raise RecipeError(f"{target} holds {'recipe ' + repr(other_name) if other_name else 'something else'}, "
                              f"not recipe {recipe.name!r}; not replaced")  # fmt: skip
    text = json.dumps(recipe.to_json_dict(), indent=2) + "\n"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{recipe.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        raise RecipeError(f"recipe {recipe.name!r} cannot be saved in {folder} ({exc.strerror or exc})") from None
    return target


__all__ = [
    "LineIOSettings",
    "Recipe",
    "crop_to_roi",
    "list_recipes",
    "load_recipe",
    "parse_host_port",
    "recipes_dir",
    "save_recipe",
]
