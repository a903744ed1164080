"""The absolute heat scale: a good part stays cool, a defect shows hot, box labels are their own levels; older files fall back."""
import json
from dataclasses import replace

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.torch import save_file

from engine.data.decode import read_image
from engine.data.layouts import load_dataset
from engine.errors import ModelFileError
from engine.inference import Inspector
from engine.inference.localize import GOOD_LEVEL, CamScale, ScaleError, full_heatmap_and_range, measure_cam_scale
from engine.modelfile import load_model, read_meta, save_model, update_meta
from engine.render import annotate, render_overlay
from engine.thresholds import Thresholds
from engine.types import Box, HeatScale, Inspection, RuntimeOptions


def _parts(synthetic_dataset, label: int, n: int = 8):
    samples = [s for s in load_dataset(synthetic_dataset).samples if s.label == label]
    return [read_image(s.path) for s in samples[:: max(1, len(samples) // n)][:n]]


def test_training_stores_a_scale_on_which_good_parts_stay_cool_and_defects_show_hot(trained, synthetic_dataset):
    result, path = trained
    scale = read_meta(path).cam_scale
    assert scale is not None and scale == result.meta.cam_scale and "held-out" in scale.source
    assert scale.n_good > 0 and scale.n_defective > 0
    inspector = Inspector.from_file(path, device="cpu", precision="fp32")
    good = inspector.inspect(_parts(synthetic_dataset, 0))
    bad = [i for i in inspector.inspect(_parts(synthetic_dataset, 1, 16)) if i.is_anomaly]
    assert bad, "the small model should find some defects"
    for insp in good:
        assert insp.heatmap.max() == pytest.approx(1.0)  # the founding stretch: every image's peak is full red
        assert insp.heat_view(HeatScale.ABSOLUTE).apply(insp.heatmap).max() <= 2 * GOOD_LEVEL
    peaks = [i.heat_view(HeatScale.ABSOLUTE).apply(i.heatmap).max() for i in bad]
    assert np.median(peaks) >= 0.8
    assert good[0].heat_view().caption.startswith("heat: absolute")


def test_each_box_label_is_its_own_peak_on_the_absolute_scale():
    cam = np.zeros((8, 8), np.float32)
    cam[1:3, 1:3] = 10.0  # the image's hottest region
    cam[5:7, 5:7] = 9.0
    heatmap, cam_range = full_heatmap_and_range(cam, 80, 80)
    scale = CamScale(low=2.0, high=12.0)
    insp = Inspection(0.9, Thresholds(0.5, box=0.8, min_area_fraction=0.0), heatmap, (), cam_range=cam_range, scale=scale)
    insp = insp.at(Thresholds(0.5, box=0.7, min_area_fraction=0.0))  # re-judged without the model: levels again
    assert len(insp.boxes) == 2
    absolute = insp.heat_view(HeatScale.ABSOLUTE)
    raw = cam_range[0] + heatmap * (cam_range[1] - cam_range[0])
    for box in insp.boxes:
        inside = raw[box.y0 : box.y1, box.x0 : box.x1].max()
        assert box.level == pytest.approx((inside - 2.0) / 10.0, abs=1e-4)
        assert box.label(HeatScale.ABSOLUTE) == f"{box.level:.2f}"
    assert [b.label(HeatScale.ABSOLUTE) for b in insp.boxes] == ["0.80", "0.70"]
    assert [b.label(HeatScale.PER_IMAGE) for b in insp.boxes] == ["1.00", "0.90"]
    assert absolute.apply(heatmap).max() == pytest.approx(0.8) and absolute.scale is HeatScale.ABSOLUTE


def test_boxes_keep_their_level_through_the_log_form_and_read_the_old_form():
    box = Box(1, 2, 30, 40, 0.95, 0.4321)
    assert Box.from_list(json.loads(json.dumps(box.as_list()))) == box
    old = Box.from_list([1, 2, 30, 40, 0.95])
    assert old.level is None and old.label() == "0.95" and old.as_list() == [1, 2, 30, 40, 0.95]


def test_a_scale_needs_good_and_defective_maps_and_flat_good_maps_still_give_one():
    cams = [np.full((4, 4), -1.0, np.float32)] * 3 + [np.full((4, 4), 5.0, np.float32)]
    scale = measure_cam_scale(cams, [0, 0, 0, 1], source="unit")
    assert scale.level(-1.0) == pytest.approx(GOOD_LEVEL) and scale.level(5.0) == pytest.approx(1.0)
    with pytest.raises(ScaleError, match="good and defective"):
        measure_cam_scale(cams[:3], [0, 0, 0])
    with pytest.raises(ScaleError, match="low < high"):
        CamScale(1.0, 1.0)
    inseparable = measure_cam_scale([np.full((4, 4), 2.0, np.float32), np.zeros((4, 4), np.float32)], [0, 1])
    assert inseparable.level(2.0) == pytest.approx(GOOD_LEVEL)  # good parts still read cool; the defect reads cooler


def _old_file(path, target):
    """A copy of a model file as made before heat scales: no heat_scale in its metadata."""
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["visinspect"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta.pop("heat_scale")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(target), metadata={"visinspect": json.dumps(meta)})
    return target


def test_an_older_model_file_loads_and_is_shown_stretched_per_image_saying_so(trained, synthetic_dataset, tmp_path):
    old = _old_file(trained[1], tmp_path / "old.safetensors")
    assert read_meta(old).cam_scale is None
    inspector = Inspector.from_file(old, device="cpu", precision="fp32")
    (insp,) = inspector.inspect(_parts(synthetic_dataset, 1, 1))
    view = insp.heat_view(HeatScale.ABSOLUTE)
    assert view.scale is HeatScale.PER_IMAGE and "no absolute scale" in view.caption
    assert np.array_equal(view.apply(insp.heatmap), insp.heatmap)
    assert all(b.level is None for b in insp.regions)
    image = _parts(synthetic_dataset, 1, 1)[0]
    assert np.array_equal(render_overlay(image, insp), render_overlay(image, insp, heat_scale=HeatScale.PER_IMAGE))


def test_the_scale_survives_save_load_and_metadata_updates_and_a_damaged_one_is_a_clear_error(trained, tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(trained[1].read_bytes())
    scale = read_meta(path).cam_scale
    update_meta(path, threshold=0.7)
    assert read_meta(path).cam_scale == scale
    copy = save_model(tmp_path / "copy.safetensors", load_model(path).model, read_meta(path))
    assert Inspector.from_file(copy, device="cpu").scale == scale
    broken = save_model(tmp_path / "broken.safetensors", load_model(path).model, replace(read_meta(path), heat_scale={"low": 1}))
    with pytest.raises(ModelFileError, match="heat scale"):
        load_model(broken)


def test_calibration_measures_the_scale_again_and_stores_it_with_the_threshold(trained, synthetic_dataset, tmp_path):
    import threading

    from engine.jobs.calibrate import CalibrationDone, calibrate_job

    path = tmp_path / "m.safetensors"
    path.write_bytes(_old_file(trained[1], tmp_path / "old.safetensors").read_bytes())
    runtime = RuntimeOptions("cpu", "fp32")
    events = list(calibrate_job(path, synthetic_dataset, target="balanced", runtime=runtime, stop=threading.Event()))
    done = events[-1]
    assert isinstance(done, CalibrationDone) and done.heat_scale is not None
    stored = read_meta(path).cam_scale
    assert stored == done.heat_scale and "calibration" in stored.source


def test_an_annotated_copy_says_which_scale_it_is_on(trained, synthetic_dataset):
    inspector = Inspector.from_file(trained[1], device="cpu", precision="fp32")
    image = _parts(synthetic_dataset, 0, 1)[0]
    (insp,) = inspector.inspect([image])
    absolute, stretched = annotate(image, insp), annotate(image, insp, heat_scale=HeatScale.PER_IMAGE)
    assert absolute.shape == stretched.shape
    top = slice(0, absolute.shape[0] // 2)  # above the caption
    assert absolute[top, :, 0].mean() < stretched[top, :, 0].mean() - 10  # the good part is far less red
    assert not np.array_equal(absolute[-8:], stretched[-8:])  # the captions differ
    with pytest.raises(ValueError, match="absolute, per_image"):
        HeatScale.parse("log")
