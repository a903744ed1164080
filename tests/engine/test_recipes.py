"""Product recipes: saved and loaded as JSON, listed, validated with one line naming the bad key, ROI crops."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.errors import RecipeError
from engine.recipes import LineIOSettings, Recipe, crop_to_roi, list_recipes, load_recipe, recipes_dir, save_recipe


def test_a_saved_recipe_loads_back_equal_with_its_model_path_resolved_against_the_recipe_file(tmp_path):
    recipe = Recipe(
        name="bolt-a", model="models/bolt.safetensors", decision_threshold=0.4, box_threshold=0.6,
        source="pylon:0?trigger=software", roi=(10, 20, 100, 80),
        io=LineIOSettings(opcua="127.0.0.1:4840", mqtt="broker:1883", mqtt_topic="line1/results"), triggered=True,
    )  # fmt: skip
    path = save_recipe(recipe, tmp_path)
    assert path == tmp_path / "bolt-a.json" and json.loads(path.read_text())["roi"] == [10, 20, 100, 80]
    loaded = load_recipe("bolt-a", tmp_path)
    assert loaded.model == str((tmp_path / "models" / "bolt.safetensors").resolve())
    assert loaded == Recipe(**{**recipe.__dict__, "model": loaded.model})
    assert load_recipe(str(path)) == loaded
    save_recipe(Recipe(name="Cap 2", model="/abs/cap.safetensors"), tmp_path)
    assert list_recipes(tmp_path) == ["bolt-a", "Cap 2"]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # no temp file left behind


def test_recipes_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("VISINSPECT_RECIPES", str(tmp_path / "r"))
    assert recipes_dir() == tmp_path / "r" and list_recipes() == []


@pytest.mark.parametrize(
    "content, words",
    [
        ({"model": "m.safetensors", "colour": "red"}, ["'colour'", "allowed"]),
        ({"name": "r"}, ["'model'", "missing"]),
        ({"model": "m.safetensors", "decision_threshold": 1.5}, ["decision_threshold", "1.5"]),
        ({"model": "m.safetensors", "roi": [0, 0, -5, 10]}, ["roi", "width"]),
        ({"model": "m.safetensors", "roi": "all"}, ["roi", "'all'"]),
        ({"model": "m.safetensors", "io": {"opcua": "4840"}}, ["io.opcua", "HOST:PORT"]),
        ({"model": "m.safetensors", "io": {"plc": "a:1"}}, ["io must be", "opcua"]),
        ({"model": "m.safetensors", "triggered": "yes"}, ["triggered", "'yes'"]),
        ([1, 2], ["one JSON object"]),
    ],
)
def test_a_bad_recipe_file_is_one_line_naming_the_bad_key_or_value(tmp_path, content, words):
    (tmp_path / "r.json").write_text(json.dumps(content))
    with pytest.raises(RecipeError) as info:
        load_recipe("r", tmp_path)
    message = str(info.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_missing_recipe_and_bad_json_and_bad_name_are_one_line(tmp_path):
    save_recipe(Recipe(name="known", model="/m.safetensors"), tmp_path)
    with pytest.raises(RecipeError, match="'nope' not found.*known"):
        load_recipe("nope", tmp_path)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(RecipeError, match="not valid JSON"):
        load_recipe("broken", tmp_path)
    with pytest.raises(RecipeError, match="not allowed"):
        Recipe(name="../etc", model="m")


def test_save_never_replaces_another_recipes_file(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"name": "b", "model": "/m"}))
    with pytest.raises(RecipeError, match="holds recipe 'b'"):
        save_recipe(Recipe(name="a", model="/m2"), tmp_path)
    assert json.loads((tmp_path / "a.json").read_text())["name"] == "b"
    save_recipe(Recipe(name="c", model="/m"), tmp_path)
    with pytest.raises(RecipeError, match="already exists"):
        save_recipe(Recipe(name="c", model="/other"), tmp_path, exist_ok=False)
    save_recipe(Recipe(name="c", model="/other"), tmp_path)  # editing a recipe replaces its own file
    assert load_recipe("c", tmp_path).model == "/other"


def test_crop_to_roi_takes_exactly_the_roi_and_refuses_one_outside_the_frame():
    image = np.arange(40 * 60 * 3, dtype=np.uint32).reshape(40, 60, 3).astype(np.uint8)
    crop = crop_to_roi(image, (5, 10, 20, 15))
    assert crop.shape == (15, 20, 3) and np.array_equal(crop, image[10:25, 5:25])
    assert crop_to_roi(image, None) is image
    with pytest.raises(RecipeError, match="outside the 60x40 frame"):
        crop_to_roi(image, (50, 0, 20, 10))
