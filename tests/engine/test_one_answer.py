"""One engine, one answer: the same image, model and threshold give the same result in every command and job.

Each test here reproduces a defect found by using the first version as a new user would (issue 10).
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.data.layouts import load_dataset
from engine.inference.runtime import INT8_CHECK_KEY, choose_runtime
from engine.jobs.calibrate import CalibrationDone, calibrate_job
from engine.jobs.evaluate import EvalDone, evaluate_job
from engine.jobs.train import ModelSaved, train_job
from engine.modelfile import load_model, read_meta, save_model
from engine.training import TrainConfig, TrainResult
from engine.types import RuntimeOptions
from tests.conftest import FAST_TRAIN

GOOD_DIR = "OK_parts"  # not "good": the model file must remember it


def run(*args, cwd=None):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "engine.cli", *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)  # fmt: skip


def _jpg(path: Path, png: Path) -> None:
    cv2.imwrite(str(path), cv2.imread(str(png)), [cv2.IMWRITE_JPEG_QUALITY, 95])


@pytest.fixture(scope="module")
def class_folders(synthetic_dataset, tmp_path_factory) -> Path:
    """The synthetic product as class folders (as the magnetic-tile set is): JPEG parts, each mask a same-stem PNG beside it."""
    root = tmp_path_factory.mktemp("folders") / "tiles"
    (root / GOOD_DIR).mkdir(parents=True)
    for i, png in enumerate(sorted((synthetic_dataset / "train" / "good").glob("*.png"))[:24]):
        _jpg(root / GOOD_DIR / f"{i:03d}.jpg", png)
    for kind in ("crack", "spot"):
        folder = root / f"MT_{kind}" / "Imgs"
        folder.mkdir(parents=True)
        for png in sorted((synthetic_dataset / "test" / kind).glob("*.png"))[:8]:
            _jpg(folder / f"{png.stem}.jpg", png)
            shutil.copyfile(synthetic_dataset / "ground_truth" / kind / f"{png.stem}_mask.png", folder / f"{png.stem}.png")
    return root


@pytest.fixture(scope="module")
def folders_model(class_folders, tmp_path_factory):
    """A model trained on the class folders by the train job (as `visinspect train` and the Train tab do)."""
    out = tmp_path_factory.mktemp("folders-model") / "tiles.safetensors"
    index = load_dataset(class_folders, good_dir=GOOD_DIR)
    events = list(train_job(index, TrainConfig(**FAST_TRAIN, device="cpu"), product="tiles", out=out,
                            runtime=RuntimeOptions("cpu"), gallery_limit=40, stop=threading.Event()))  # fmt: skip
    return out, events


def _last(events, kind):
    return [e for e in events if isinstance(e, kind)][-1]


# -- 1. the good-image folder a model was trained with ---------------------------------------------


def test_eval_and_calibrate_use_the_good_folder_stored_in_the_model(folders_model, class_folders, tmp_path):
    path, _ = folders_model
    assert read_meta(path).dataset["good_dir"] == GOOD_DIR
    r = run("eval", path, class_folders, "--device", "cpu", "--json", tmp_path / "e.json")
    assert r.returncode == 0, r.stderr  # was: "no good-image folder 'good'"
    assert "the model's" in r.stdout and "held-out images" in r.stdout
    assert json.loads((tmp_path / "e.json").read_text())["n"] == len(read_meta(path).dataset["held_out"])
    copy = Path(shutil.copy(path, tmp_path / "copy.safetensors"))
    r = run("calibrate", copy, class_folders, "--device", "cpu", "--dry-run")
    assert r.returncode == 0, r.stderr


# -- 2. a no-miss threshold holds on the line, whatever precision the line runs ------------------------


def test_the_train_report_and_the_evaluate_job_score_alike_and_give_the_same_no_miss_threshold(folders_model, class_folders):
    from engine.evaluation.calibrate import calibrate
    from engine.evaluation.evaluate import scores_arrays

    path, events = folders_model
    trained = _last(events, TrainResult)
    done = _last(evaluate_job(path, class_folders, runtime=RuntimeOptions("cpu"), stop=threading.Event()), EvalDone)
    assert done.precision == trained.precision == choose_runtime(load_model(path), RuntimeOptions("cpu")).precision
    assert [s.path for s in done.report.scores] == [s.path for s in trained.report.scores]
    a, b = scores_arrays(trained.report), scores_arrays(done.report)
    assert np.allclose(a[1], b[1], atol=1e-6)
    assert calibrate(*a, "no-miss").threshold == pytest.approx(calibrate(*b, "no-miss").threshold, abs=1e-6)


def test_calibrating_to_miss_nothing_then_evaluating_misses_nothing_where_int8_flips_at_the_new_threshold(folders_model, class_folders, tmp_path):
    """The line's precision can depend on the threshold: the calibrate job scores in the one the line runs at it."""
    path = Path(shutil.copy(folders_model[0], tmp_path / "m.safetensors"))
    loaded = load_model(path)
    if choose_runtime(loaded, RuntimeOptions("cpu")).precision != "int8":
        pytest.skip("auto does not run int8 on this CPU for this model: nothing can flip")
    first = _last(calibrate_job(path, class_folders, target="no-miss", runtime=RuntimeOptions("cpu"), dry_run=True,
                                stop=threading.Event()), CalibrationDone)  # fmt: skip
    t = first.calibration.threshold
    # An int8 check whose one image straddles that threshold: int8 agrees at the model's threshold and is rejected at t.
    eps = min(0.05, abs(t - loaded.meta.threshold) / 2)
    assert eps > 1e-3, "the no-miss threshold should differ from the model's"
    record = {**loaded.meta.training[INT8_CHECK_KEY], "p_fp32": [min(1.0, t + eps)], "p_int8": [max(0.0, t - eps)],
              "heatmap_correlation": [1.0]}  # fmt: skip
    save_model(path, loaded.model, replace(loaded.meta, training={**loaded.meta.training, INT8_CHECK_KEY: record}),
               calibration=loaded.calibration)  # fmt: skip
    r = run("calibrate", path, class_folders, "--device", "cpu")
    assert r.returncode == 0, r.stderr
    stored = read_meta(path).threshold
    assert "scored in         bf16" in r.stdout or "scored in         fp32" in r.stdout, r.stdout
    assert "the line runs" in r.stdout  # the change of precision on the way is said
    missed = re.search(r"missed anomalies  (\d+) of (\d+)", r.stdout)
    assert missed.group(1) == "0"
    r = run("eval", path, class_folders, "--device", "cpu", "--json", tmp_path / "e.json")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["threshold"] == stored and report["fn"] == 0  # was: fn 1 at the stored threshold
    assert report["precision"] != "int8"


# -- 3. one image walker: a mask is never a part -------------------------------------------------------


def test_predict_inspects_parts_never_their_masks(model_file, synthetic_dataset, class_folders, tmp_path):
    from engine.bench import list_images as bench_images
    from engine.sources import list_images

    r = run("predict", model_file, synthetic_dataset, "--device", "cpu", "--csv", tmp_path / "mvtec.csv")
    rows = list(csv.DictReader((tmp_path / "mvtec.csv").open(encoding="utf-8")))
    assert r.returncode == 0, r.stderr
    assert len(rows) == 86  # 40 + 10 good and 36 defective; was 122 with the ground-truth masks
    assert not any("ground_truth" in row["path"] for row in rows)
    r = run("predict", model_file, class_folders, "--device", "cpu", "--csv", tmp_path / "folders.csv")
    rows = list(csv.DictReader((tmp_path / "folders.csv").open(encoding="utf-8")))
    assert len(rows) == 24 + 16 and all(row["path"].endswith(".jpg") for row in rows)  # the same-stem .png masks left out
    index = load_dataset(class_folders, good_dir=GOOD_DIR)
    walked = [str(p) for p in list_images(class_folders)]
    assert sorted(walked) == sorted(str(s.path) for s in index.samples) == sorted(row["path"] for row in rows)
    assert sorted(str(p) for p in bench_images(class_folders, 40)) == sorted(walked)


# -- 4. a resumed run reports every input and judges the earlier results at the threshold in force ------


def test_a_resumed_predict_reports_every_input_and_a_new_threshold_judges_them_again(model_file, synthetic_dataset, tmp_path):
    folder = tmp_path / "parts"
    shutil.copytree(synthetic_dataset / "test", folder)
    db = tmp_path / "log.sqlite3"
    first = run("predict", model_file, folder, "--log", db, "--device", "cpu", "--csv", tmp_path / "1.csv")
    assert first.returncode == 0, first.stderr
    again = run("predict", model_file, folder, "--log", db, "--device", "cpu", "--csv", tmp_path / "2.csv")
    assert again.returncode == 0 and "46 of 46 inputs already done" in again.stderr, again.stderr
    one, two = (list(csv.DictReader((tmp_path / n).open(encoding="utf-8"))) for n in ("1.csv", "2.csv"))
    assert len(two) == 46 == len(one)  # was: 0 rows on a full resume
    drop = ("inspected_at",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in two] == [{k: v for k, v in r.items() if k not in drop} for r in one]
    zero = run("predict", model_file, folder, "--log", db, "--device", "cpu", "--csv", tmp_path / "0.csv", "--threshold", 0)
    assert zero.returncode == 0 and "judged again at threshold 0.0000" in zero.stderr, zero.stderr
    rows = list(csv.DictReader((tmp_path / "0.csv").open(encoding="utf-8")))
    assert len(rows) == 46 and {r["verdict"] for r in rows} == {"ANOMALY"} and all(json.loads(r["boxes"]) for r in rows)
    assert [r["p_anomaly"] for r in rows] == [r["p_anomaly"] for r in one]  # reused, not inspected again
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM results").fetchone()[0] == 46  # nothing logged twice
    conn.close()


# -- 5. one model identity in the results log ----------------------------------------------------------


def test_the_results_log_records_the_full_sha256_and_the_absolute_model_path(model_file, synthetic_dataset, tmp_path):
    from engine.modelfile import file_sha256

    shutil.copy(model_file, tmp_path / "m.safetensors")
    r = run("predict", "m.safetensors", synthetic_dataset / "test" / "good", "--log", "log.sqlite3", "--device", "cpu", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    conn = sqlite3.connect(tmp_path / "log.sqlite3")
    rows = set(conn.execute("SELECT model_path, model_hash FROM results").fetchall())
    conn.close()
    assert rows == {(str(tmp_path / "m.safetensors"), file_sha256(model_file))}  # was a relative path; 64 hex digits


# -- 7. one rule for the images an evaluation uses ----------------------------------------------------


def test_eval_on_a_dataset_the_model_never_saw_uses_every_image_and_says_so(model_file, tmp_path):
    from engine.data.synthetic import generate_dataset

    other = generate_dataset(tmp_path / "other", n_train_good=3, n_test_good=2, n_per_defect=2, image_size=64, seed=5).root
    r = run("eval", model_file, other, "--device", "cpu", "--json", tmp_path / "e.json")
    assert r.returncode == 0, r.stderr
    assert "not the model's training dataset" in r.stdout
    assert json.loads((tmp_path / "e.json").read_text())["n"] == 11  # was a seeded 20 % split: 3 images


def test_the_train_gallery_is_judged_as_the_report_was(folders_model):
    _, events = folders_model
    report = _last(events, TrainResult).report
    predicted = {s.path: s.predicted for s in report.scores}
    gallery = [e for e in events if type(e).__name__ == "GalleryEntry"]
    assert gallery and all(int(e.inspection.is_anomaly) == predicted[e.path] for e in gallery)
    saved = _last(events, ModelSaved)
    assert events.index(saved) < events.index(gallery[0])  # the gallery is drawn from the saved file, after saving
    assert read_meta(saved.path).metrics["accuracy"] == _last(events, TrainResult).report.accuracy


# -- 8. calibrate says what it stored, where, and what was there --------------------------------------


def test_calibrate_says_what_it_stored_where_and_dry_run_changes_nothing(model_file, synthetic_dataset, tmp_path):
    path = Path(shutil.copy(model_file, tmp_path / "m.safetensors"))
    before = read_meta(path).threshold
    r = run("calibrate", path, synthetic_dataset, "--target", "balanced", "--device", "cpu", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert f"dry run: {path} still holds threshold {before:.4f}" in r.stdout and read_meta(path).threshold == before
    r = run("calibrate", path, synthetic_dataset, "--target", "balanced", "--device", "cpu")
    after = read_meta(path).threshold
    assert f"stored threshold {after:.4f} in {path} (it was {before:.4f})" in r.stdout


# -- 11. an ERROR is a result: a resumed run does not log it again -------------------------------------


def test_resume_does_not_repeat_unreadable_files_unless_asked(model_file, synthetic_dataset, tmp_path):
    folder = tmp_path / "parts"
    shutil.copytree(synthetic_dataset / "test" / "good", folder)
    (folder / "broken-1.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    (folder / "broken-2.jpg").write_bytes(b"")
    db = tmp_path / "log.sqlite3"

    def rows() -> int:
        conn = sqlite3.connect(db)
        try:
            return conn.execute("SELECT count(*) FROM results").fetchone()[0]
        finally:
            conn.close()

    assert run("predict", model_file, folder, "--log", db, "--device", "cpu").returncode == 1
    assert rows() == 12
    again = run("predict", model_file, folder, "--log", db, "--device", "cpu")
    assert again.returncode == 1 and "2 ERROR" in again.stderr  # still reported...
    assert rows() == 12  # ...but not logged again (was 14)
    assert run("predict", model_file, folder, "--log", db, "--device", "cpu", "--retry-errors").returncode == 1
    assert rows() == 14


# -- 13. no CSV cell a spreadsheet runs as a formula -----------------------------------------------------


DANGEROUS = ("=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx")


def _cells(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as f:
        return [cell for row in csv.reader(f) for cell in row]


def test_every_csv_export_neutralises_cells_a_spreadsheet_would_run_as_formulas(tmp_path):
    from engine.csvfile import open_csv
    from engine.jobs.review import CSV_COLUMNS, ReviewRow, export_rows_job
    from engine.results import ResultsLog, export_csv
    from engine.thresholds import Thresholds
    from engine.types import Inspection, ModelRef

    model = ModelRef("/m.safetensors", "ab" * 32)
    with ResultsLog(tmp_path / "log.sqlite3") as log:  # History's export
        for text in DANGEROUS:
            insp = Inspection(0.9, Thresholds(0.5), np.zeros((4, 4), np.float32), (), model=model)
            log.log_inspection(run_id="r", source=text, item=text, inspection=insp)
            log.log_error(run_id="r", source="s", item="i", model=model, message=text)
        export_csv(log, tmp_path / "history.csv")
    rows = [ReviewRow(text, None, (), None, error=text, model=model) for text in DANGEROUS]  # the Review tab's export
    list(export_rows_job(tmp_path / "review.csv", rows, "run", stop=threading.Event()))
    with open_csv(tmp_path / "predict.csv", CSV_COLUMNS) as writer:  # predict's writer
        for row in rows:
            writer.writerow(row.csv_cells("run"))
    for name in ("history.csv", "review.csv", "predict.csv"):
        cells = _cells(tmp_path / name)
        assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], name  # was: written as they are
        assert all(any(c == "'" + text for c in cells) for text in DANGEROUS), name  # kept readable, behind a quote
