"""The live view colours the heatmap on the model's absolute scale by default, says so, and can stretch it per image."""

import json

import numpy as np
from safetensors import safe_open
from safetensors.torch import save_file

from engine.types import HeatScale


def _red(viewer) -> float:
    """How red the frame on screen is: the heat colour's share of it."""
    return float(viewer.composite[..., 0].astype(int).mean() - viewer.image[..., 0].astype(int).mean())


def test_a_good_part_stays_cool_in_the_live_view_until_per_image_is_chosen(loaded_window, good_part, line_folder, run_to_end):
    w = loaded_window
    viewer, combo = w.live.viewer, w.model_panel.scale_combo
    assert w.model_panel.heat_scale is HeatScale.ABSOLUTE and viewer.heat_scale is HeatScale.ABSOLUTE
    w.source_panel.set_source([str(good_part)])
    run_to_end(w)
    assert viewer.caption.isVisible() and viewer.caption.toolTip().startswith("heat: absolute (good parts ≤")
    cool = _red(viewer)
    combo.setCurrentText("Per image")
    assert viewer.heat_scale is HeatScale.PER_IMAGE
    assert viewer.caption.toolTip().startswith("heat: stretched per image")
    assert _red(viewer) > cool + 5  # stretched, the same good part shows red blobs
    combo.setCurrentText("Absolute")
    assert _red(viewer) == cool
    assert w.review.viewer.heat_scale is HeatScale.ABSOLUTE
    combo.setCurrentText("Per image")  # the Review preview and its annotated copies follow the same choice
    assert w.review.viewer.heat_scale is HeatScale.PER_IMAGE and w.review.heat_scale is HeatScale.PER_IMAGE


def test_box_labels_are_each_boxs_own_level_on_the_scale_shown(loaded_window, line_folder, run_to_end):
    w = loaded_window
    viewer, combo = w.live.viewer, w.model_panel.scale_combo
    w.source_panel.set_source([str(line_folder / "part-06.png")])  # an anomaly with boxes
    run_to_end(w)
    boxes = viewer.inspection.boxes
    assert boxes and all(b.level is not None for b in boxes)
    assert viewer.box_labels == [f"{b.level:.2f}" for b in boxes]
    combo.setCurrentText("Per image")
    assert viewer.box_labels == [f"{b.score:.2f}" for b in boxes]
    assert viewer.box_labels[0] == "1.00"  # per image, the hottest box is 1.00 by construction


def test_a_model_without_a_scale_is_shown_per_image_and_the_caption_says_why(make_window, model_file, tmp_path, qtbot):
    with safe_open(str(model_file), framework="pt") as f:
        meta = json.loads(f.metadata()["visinspect"])
        tensors = {k: f.get_tensor(k).contiguous() for k in f.keys()}
    meta.pop("heat_scale")
    old = tmp_path / "old.safetensors"
    save_file(tensors, str(old), metadata={"visinspect": json.dumps(meta)})
    w = make_window()
    with qtbot.waitSignal(w.station.model_loaded, timeout=30_000):
        w.open_model(old)
    image = np.full((96, 128, 3), 128, np.uint8)
    (insp,) = w.station.inspector.inspect([image])
    w.live.viewer.show_image(image, insp)
    assert w.model_panel.heat_scale is HeatScale.ABSOLUTE
    assert "no absolute scale" in w.live.viewer.caption.toolTip()
