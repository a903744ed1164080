"""Operator feedback: labelled results grow the product's dataset in its layout, never overwrite, and are logged."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.data.decode import read_image
from engine.data.layouts import load_dataset
from engine.feedback import (
    DatasetTarget,
    FeedbackError,
    find_logged_result,
    label_result,
    new_labels_since,
    write_new_file,
)
from engine.jobs.compare import CompareDone, compare_job, comparison_samples
from engine.modelfile import ModelMeta, load_model, read_meta, save_model
from engine.results import ResultsLog
from engine.results.labels import Label, read_label, read_labels
from engine.thresholds import Thresholds
from engine.types import Inspection, ModelRef

MODEL = ModelRef("/models/m.safetensors", "cd" * 32)


def _png(path: Path, value: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((16, 16, 3), value, np.uint8))
    return path


def _folders_dataset(root: Path) -> Path:
    for i in range(2):
        _png(root / "good" / f"g{i}.png", 100 + i)
        _png(root / "scratch" / f"s{i}.png", 200 + i)
    return root


def _mvtec_dataset(root: Path) -> Path:
    for i in range(2):
        _png(root / "train" / "good" / f"g{i}.png", 100 + i)
        _png(root / "test" / "good" / f"t{i}.png", 110 + i)
        _png(root / "test" / "crack" / f"c{i}.png", 200 + i)
    return root


def _logged(log: ResultsLog, item: str | int, p: float = 0.9, *, image=None, model: ModelRef = MODEL) -> int:
    insp = Inspection(p, Thresholds(0.5), np.zeros((8, 8), np.float32), (), model=model)
    log.log_inspection(run_id="r1", source="test", item=item, inspection=insp, image=image)
    return log.last_id()


def _meta(root: Path, *, created: float, layout: str = "folders") -> ModelMeta:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(created))
    return ModelMeta(
        product="p", backbone="vgg16_bn", backbone_weights={"kind": "none"}, preprocess={"size": 64, "mean": [0] * 3, "std": [1] * 3},
        dataset={"root": str(root), "layout": layout, "good_dir": "good"}, training={"seconds": 0.0}, created=stamp,
    )  # fmt: skip


def test_folders_layout_good_and_defect_copies_land_in_class_folders(tmp_path):
    root = _folders_dataset(tmp_path / "ds")
    part = _png(tmp_path / "line" / "part-07.png", 42)
    with ResultsLog(tmp_path / "r.sqlite3") as log:
        good_id, bad_id = _logged(log, str(part), 0.9), _logged(log, str(part), 0.2)
        target = DatasetTarget.of_folder(root)
        a = label_result(log, good_id, Label.good(), who="ann (operator)", dataset=target)
        b = label_result(log, bad_id, Label.defect("dent"), who="bob (operator)", dataset=target)
    assert Path(a.copy_path).parent == root / "good" and Path(b.copy_path).parent == root / "dent"
    assert Path(a.copy_path).name.startswith("feedback-") and Path(a.copy_path).read_bytes() == part.read_bytes()
    index = load_dataset(root)
    assert index.counts() == {"good": 3, "dent": 1, "scratch": 2}  # the dataset scan sees the new images and type
    assert not [p for p in root.rglob(".tmp-*")]


def test_mvtec_layout_good_goes_to_train_good_defects_to_test_type(tmp_path):
    root = _mvtec_dataset(tmp_path / "mv")
    frame = np.zeros((20, 30, 3), np.uint8)
    frame[..., 0] = 255  # red, to check the channel order of a frame written from memory
    with ResultsLog(tmp_path / "r.sqlite3") as log:
        cam_id = _logged(log, 17, 0.1)  # a camera frame: no file, the frame in memory is used
        other = _logged(log, 18, 0.1)
        good = label_result(log, cam_id, Label.good(), who="w", dataset=DatasetTarget.of_folder(root), image=frame)
        bad = label_result(log, other, Label.defect("crack"), who="w", dataset=DatasetTarget.of_folder(root), image=frame)
    assert Path(good.copy_path).parent == root / "train" / "good" and Path(good.copy_path).suffix == ".png"
    assert Path(bad.copy_path).parent == root / "test" / "crack"
    assert tuple(read_image(good.copy_path)[0, 0]) == (255, 0, 0)
    assert load_dataset(root).counts() == {"good": 5, "crack": 3}


def test_never_overwrites_an_existing_file(tmp_path):
    first = write_new_file(tmp_path, "feedback-x", b"one", ".png")
    second = write_new_file(tmp_path, "feedback-x", b"two", ".png")
    assert first != second and first.read_bytes() == b"one" and second.read_bytes() == b"two"


def test_relabel_replaces_label_and_moves_the_copy(tmp_path):
    root = _folders_dataset(tmp_path / "ds")
    part = _png(tmp_path / "part.png", 7)
    with ResultsLog(tmp_path / "r.sqlite3") as log:
        rid = _logged(log, str(part))
        target = DatasetTarget.of_folder(root)
        first = label_result(log, rid, Label.good(), who="ann (operator)", dataset=target)
        again = label_result(log, rid, Label.good(), who="ann (operator)", dataset=target)
        assert again.copy_path == first.copy_path and len(list((root / "good").iterdir())) == 3  # no duplicate
        second = label_result(log, rid, Label.defect("scratch"), who="bob (engineer)", dataset=target)
        stored = read_label(log, rid)
        assert len(read_labels(log)) == 1
    assert not Path(first.copy_path).exists() and Path(second.copy_path).parent == root / "scratch"
    assert stored.label == Label.defect("scratch") and stored.who == "bob (engineer)" and stored.copy_path == second.copy_path
    assert load_dataset(root).counts() == {"good": 2, "scratch": 3}


def test_label_is_recorded_with_who_and_when_and_survives_reopen(tmp_path):
    root = _folders_dataset(tmp_path / "ds")
    part = _png(tmp_path / "part.png", 7)
    before = time.time()
    with ResultsLog(tmp_path / "r.sqlite3") as log:
        rid = _logged(log, str(part))
        label_result(log, rid, Label.parse("defect:scratch"), who="carol (operator)", dataset=DatasetTarget.of_folder(root))
    with ResultsLog(tmp_path / "r.sqlite3") as log:
        stored = read_label(log, rid)
        assert log.get(rid).item == str(part)  # existing queries still work beside the new table
    assert stored.who == "carol (operator)" and stored.label.defect_type == "scratch" and stored.time >= before
    raw = sqlite3.connect(tmp_path / "r.sqlite3").execute("SELECT label, defect_type, who FROM labels").fetchall()
    assert raw == [("defect", "scratch", "carol (operator)")]


def test_older_log_gains_the_labels_table_with_its_rows_kept(tmp_path):
    db = tmp_path / "old.sqlite3"
    with ResultsLog(db) as log:
        rid = _logged(log, "a.png")
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE labels")
    conn.commit()
    conn.close()
    with ResultsLog(db) as log:
        assert log.get(rid).item == "a.png" and read_labels(log) == []


def test_bad_labels_and_missing_images_say_why(tmp_path):
    for text in ("bad", "defect:", "defect:good", "defect:../x", "defect:ground_truth"):
        with pytest.raises(ValueError, match="defect"):
            Label.parse(text)
    root = _folders_dataset(tmp_path / "ds")
    with ResultsLog(tmp_path / "r.sqlite3") as log:
        rid = _logged(log, 3, 0.1)  # a GOOD camera frame: no frame saved, none given
        with pytest.raises(FeedbackError, match="no image of result"):
            label_result(log, rid, Label.good(), who="w", dataset=DatasetTarget.of_folder(root))
        with pytest.raises(FeedbackError, match="no result 999"):
            label_result(log, 999, Label.good(), who="w", dataset=DatasetTarget.of_folder(root))
        with pytest.raises(FeedbackError, match="dataset folder"):
            label_result(log, rid, Label.good(), who="w", image=np.zeros((4, 4, 3), np.uint8))  # its model file is gone
    assert load_dataset(root).counts() == {"good": 2, "scratch": 2}


def test_saved_anomaly_frame_is_used_when_the_source_was_not_a_file(tmp_path):
    root = _folders_dataset(tmp_path / "ds")
    with ResultsLog(tmp_path / "r.sqlite3") as log:
        rid = _logged(log, 5, 0.9, image=np.full((12, 12, 3), 90, np.uint8))
        record = label_result(log, rid, Label.defect("scratch"), who="w", dataset=DatasetTarget.of_folder(root))
    assert Path(record.copy_path).suffix == ".jpg" and read_image(record.copy_path).shape == (12, 12, 3)


def test_new_labels_since_counts_only_labels_after_the_model_into_its_dataset(tmp_path):
    root = _folders_dataset(tmp_path / "ds")
    other = _folders_dataset(tmp_path / "other")
    part = _png(tmp_path / "part.png", 7)
    with ResultsLog(tmp_path / "r.sqlite3") as log:
        ids = [_logged(log, str(part)) for _ in range(4)]
        label_result(log, ids[0], Label.good(), who="w", dataset=DatasetTarget.of_folder(root))
        label_result(log, ids[1], Label.defect("scratch"), who="w", dataset=DatasetTarget.of_folder(root))
        label_result(log, ids[2], Label.defect("dent"), who="w", dataset=DatasetTarget.of_folder(root))
        label_result(log, ids[3], Label.good(), who="w", dataset=DatasetTarget.of_folder(other))
        counts = new_labels_since(log, _meta(root, created=time.time() - 60))
        later = new_labels_since(log, _meta(root, created=time.time() + 60))  # a model trained after the labels
    assert counts.total == 3 and counts.good == 1 and counts.defects == {"dent": 1, "scratch": 1}
    assert counts.describe().startswith("3 new labelled images since this model")
    assert later.total == 0


def test_label_goes_to_the_dataset_the_judging_model_records(tmp_path, model_file):
    root = _folders_dataset(tmp_path / "ds")
    loaded = load_model(model_file)
    path = save_model(tmp_path / "m.safetensors", loaded.model, replace(loaded.meta, dataset={"root": str(root), "layout": "folders", "good_dir": "good"}))
    ref = ModelRef(str(path), "ef" * 32)
    part = _png(tmp_path / "part.png", 9)
    with ResultsLog(tmp_path / "r.sqlite3") as log:
        rid = _logged(log, str(part), 0.8, model=ref)
        assert find_logged_result(log, str(part), ref.sha256, 0.8).id == rid
        record = label_result(log, rid, Label.good(), who="w")
        assert new_labels_since(log, path).good == 1
    assert Path(record.copy_path).parent == root / "good"


def test_comparison_uses_images_neither_model_trained_on(tmp_path):
    root = _folders_dataset(tmp_path / "ds")
    for i in range(2, 6):
        _png(root / "good" / f"g{i}.png", 120 + i)
        _png(root / "scratch" / f"s{i}.png", 220 + i)
    index = load_dataset(root)
    rels = [str(s.path.relative_to(root)) for s in index.samples]
    old_held = [rels[0], rels[1], rels[-1]]  # two good, one defective
    old = replace(_meta(root, created=time.time() - 60), dataset={"root": str(root), "held_out": old_held})
    new_file = _png(root / "good" / "feedback-20260101-000000-r1.png", 33)  # labelled after the old model
    index = load_dataset(root)
    new_held = ["good/feedback-20260101-000000-r1.png", rels[0], rels[1], rels[-1], rels[-2]]
    new = replace(old, dataset={"root": str(root), "held_out": new_held})
    choice = comparison_samples(old, new, index)
    chosen = {str(s.path.relative_to(root)) for s in choice.samples}
    assert new_file.exists() and chosen == {new_held[0], rels[0], rels[1], rels[-1]}  # not rels[-2]: the old model trained on it
    assert "neither model was trained on" in choice.how
    only_good = replace(old, dataset={"root": str(root), "held_out": [rels[0], rels[1]]})
    fallback = comparison_samples(only_good, new, index)  # no defective image left: the new model's held-out, said so
    assert len(fallback.samples) == 5 and "old model may have been trained on some" in fallback.how


def test_compare_job_scores_both_models_on_the_same_images(model_file, synthetic_dataset):
    events = list(compare_job(model_file, model_file, synthetic_dataset, stop=threading.Event()))
    done = events[-1]
    assert isinstance(done, CompareDone) and done.old.n == done.new.n == events[0].n
    assert [r[1] for r in done.rows()] == [r[2] for r in done.rows()]  # the same model gives the same numbers
    assert read_meta(model_file).dataset["root"]


def test_cli_label_and_relabel_then_compare(tmp_path, capsys, model_file, synthetic_dataset):
    from engine.cli import main

    root = _folders_dataset(tmp_path / "ds")
    part = _png(tmp_path / "part.png", 5)
    db = tmp_path / "r.sqlite3"
    with ResultsLog(db) as log:
        rid = _logged(log, str(part))
    assert main(["label", str(rid), "good", "--log", str(db), "--who", "dana", "--data", str(root)]) == 0
    assert main(["label", str(rid), "defect:chip", "--log", str(db), "--who", "dana", "--data", str(root)]) == 0
    assert main(["label", str(rid), "broken", "--log", str(db)]) == 2
    out, err = capsys.readouterr()
    assert "actually defective (chip), by dana" in out and "'good' or 'defect:TYPE'" in err
    assert load_dataset(root).counts() == {"good": 2, "chip": 1, "scratch": 2}
    assert main(["compare", str(model_file), str(model_file), str(synthetic_dataset)]) == 0
    out = capsys.readouterr().out
    assert "Balanced accuracy" in out and "Image AUROC" in out


def test_cli_loop_label_retrain_then_compare_on_images_neither_model_trained_on(tmp_path, capsys, model_file, synthetic_dataset):
    import shutil

    from engine.cli import main
    from engine.modelfile import file_sha256

    data = shutil.copytree(synthetic_dataset, tmp_path / "product")
    loaded = load_model(model_file)
    old = save_model(tmp_path / "old.safetensors", loaded.model, replace(loaded.meta, dataset={**loaded.meta.dataset, "root": str(data)}),
                     calibration=loaded.calibration)  # fmt: skip
    part = tmp_path / "line" / "part-1.png"
    part.parent.mkdir()
    shutil.copyfile(sorted((data / "test" / "crack").iterdir())[0], part)
    db = tmp_path / "r.sqlite3"
    with ResultsLog(db) as log:
        rid = _logged(log, str(part), 0.1, model=ModelRef(str(old), file_sha256(old)))  # the model called it good
    before = load_dataset(data).counts()["crack"]
    assert main(["label", str(rid), "defect:crack", "--log", str(db), "--who", "eve"]) == 0  # into the model's own dataset
    assert load_dataset(data).counts()["crack"] == before + 1
    new = tmp_path / "new.safetensors"
    assert main(["train", str(data), "--out", str(new), "--backbone", "vgg16_bn", "--backbone-weights", "none",
                 "--image-size", "32", "--epochs", "1"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["compare", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "held-out images neither model was trained on" in out and "Balanced accuracy" in out
