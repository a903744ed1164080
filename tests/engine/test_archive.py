"""`visinspect review-archive`: predict's verdicts on the same files, one CSV/Parquet file, resumable, errors as rows."""
from __future__ import annotations

import csv
import threading
from dataclasses import replace

import cv2
import numpy as np
import pytest

from engine.cli import main
from engine.jobs.review import CSV_COLUMNS

SIZE = 64  # the smallest input that keeps a 4x4 CAM: a batch takes milliseconds


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A random-init VGG16-CAM model file (64 px) whose probabilities spread around its threshold."""
    import torch

    from engine.bench.inputs import random_init_model
    from engine.export.check import generated_images
    from engine.modelfile import save_model

    loaded = random_init_model(SIZE, "vgg16")
    with torch.no_grad():
        loaded.model.fc.weight.mul_(40)  # random init scores every image ~0.5; spread them so verdicts differ
        pre = loaded.meta.preprocessing()
        p = torch.softmax(loaded.model(pre.batch([pre.resize(im) for im in generated_images(8, SIZE, seed=1)])), 1)[:, 1]
    meta = replace(loaded.meta, product="tiny", threshold=float(np.median(p.numpy())), box_threshold=0.7)
    return save_model(tmp_path_factory.mktemp("tiny") / "tiny.safetensors", loaded.model, meta)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """A folder of 10 images of mixed sizes and formats (one in a sub-folder) and one file that is not an image."""
    from engine.export.check import generated_images

    root = tmp_path_factory.mktemp("archive")
    (root / "line2").mkdir()
    for i, image in enumerate(generated_images(10, SIZE, seed=2)):
        image = cv2.resize(image, (96 + 8 * i, 96)) if i % 3 else image
        name = root / ("line2" if i == 9 else "") / f"part_{i}.{'png' if i % 2 else 'jpg'}"
        cv2.imwrite(str(name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    (root / "part_corrupt.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return root


def _rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _predict(model, inputs, out) -> list[dict]:
    assert main(["predict", str(model), *map(str, inputs), "--csv", str(out), "--device", "cpu", "--precision", "fp32"]) == 1
    return _rows(out)


def _comparable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "inspected_at"} for r in rows]


def test_in_process_gives_predicts_rows_and_a_summary(tiny_model, archive, tmp_path, capsys):
    expected = _predict(tiny_model, [archive], tmp_path / "predict.csv")
    out = tmp_path / "review.csv"
    code = main(["review-archive", str(tiny_model), str(archive), "--out", str(out), "--device", "cpu", "--precision", "fp32"])
    assert code == 1  # one file could not be inspected
    rows = _rows(out)
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert _comparable(rows) == _comparable(expected)  # same files, order, verdicts, p, boxes, errors, run id
    verdicts = [r["verdict"] for r in rows]
    assert {"GOOD", "ANOMALY"} <= set(verdicts) and verdicts.count("ERROR") == 1
    bad = next(r for r in rows if r["path"].endswith("part_corrupt.jpg"))
    assert bad["verdict"] == "ERROR" and "not a readable image" in bad["error"] and bad["p_anomaly"] == ""
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    n_good, n_anomaly = verdicts.count("GOOD"), verdicts.count("ANOMALY")
    assert summary.startswith(f"11 files: {n_good} GOOD, {n_anomaly} ANOMALY, 1 ERROR; 11 inspected now in ")
    assert "img/s" in summary and str(out) in summary
    assert not (tmp_path / "review.csv.parts").exists()  # parts are gone once the output is whole


def test_parquet_holds_the_same_rows_with_numbers_as_numbers(tiny_model, archive, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    expected = _predict(tiny_model, [archive, tmp_path / "missing.png"], tmp_path / "predict.csv")
    out = tmp_path / "review.parquet"
    main(["review-archive", str(tiny_model), str(archive), str(tmp_path / "missing.png"), "--out", str(out),
          "--device", "cpu", "--precision", "fp32"])  # fmt: skip
    table = pq.read_table(out)
    assert table.column_names == list(CSV_COLUMNS)
    assert str(table.schema.field("p_anomaly").type) == "double"
    rows = table.to_pylist()
    assert [r["path"] for r in rows] == [r["path"] for r in expected]
    assert [r["verdict"] for r in rows] == [r["verdict"] for r in expected]
    for got, want in zip(rows, expected):
        if want["p_anomaly"]:
            assert f"{got['p_anomaly']:.6f}" == want["p_anomaly"] and got["boxes"] == want["boxes"]
        else:
            assert got["p_anomaly"] is None and got["error"] == want["error"]
    assert rows[-1]["verdict"] == "ERROR" and "file not found" in rows[-1]["error"]


def test_a_stopped_run_resumes_with_only_the_files_not_done(tiny_model, archive, tmp_path):
    from engine.archive.job import ArchiveDone, ArchiveProgress, ArchiveStarted, archive_job, in_process
    from engine.inference.inspector import Inspector

    inspector = Inspector.from_file(tiny_model, device="cpu", precision="fp32")
    out = tmp_path / "review.csv"
    asked: list[list[str]] = []

    def run(stop_after: int | None):
        stop = threading.Event()
        source = in_process(inspector, batch_size=2, stop=stop)

        def counting(paths, run_id):
            asked.append(list(paths))
            yield from source(paths, run_id)

        events = []
        for event in archive_job([archive], inspector, out, source=counting, part_rows=1, stop=stop):
            events.append(event)
            if isinstance(event, ArchiveProgress) and event.inspected == stop_after:
                stop.set()  # as if killed: the parts written so far stay
        return events

    first = run(stop_after=4)
    assert not any(isinstance(e, ArchiveDone) for e in first) and not out.exists()
    second = run(stop_after=None)
    started, done = second[0], second[-1]
    assert isinstance(started, ArchiveStarted) and started.resumed == 4 and started.todo == 7
    assert len(asked[1]) == 7 and not set(asked[1]) & set(asked[0][:4])  # the 4 done files are not inspected again
    assert isinstance(done, ArchiveDone) and done.inspected == 7 and done.resumed == 4
    resumed_rows = _rows(out)
    fresh = tmp_path / "fresh.csv"
    main(["review-archive", str(tiny_model), str(archive), "--out", str(fresh), "--device", "cpu", "--precision", "fp32"])
    assert _comparable(resumed_rows) == _comparable(_rows(fresh))

    third = run(stop_after=None)  # a finished output: nothing is inspected again
    assert third[0].todo == 0 and len(asked) == 2 and _rows(out) == resumed_rows


def test_an_output_of_another_threshold_is_refused_in_one_line(tiny_model, archive, tmp_path, capsys):
    out = tmp_path / "review.csv"
    args = ["review-archive", str(tiny_model), str(archive / "part_0.jpg"), "--out", str(out), "--device", "cpu"]
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--threshold", "0.99"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds results at threshold" in err[0] and "choose another --out" in err[0]


def test_bad_output_and_flags_are_refused_before_inspecting(tiny_model, archive, tmp_path, capsys):
    assert main(["review-archive", str(tiny_model), str(archive), "--out", str(tmp_path / "r.json")]) == 2
    assert "--out must end in .parquet or .csv" in capsys.readouterr().err
    assert main(["review-archive", str(tiny_model), str(archive), "--out", str(tmp_path / "r.csv"), "--workers", "2"]) == 2
    assert "--workers and --cpus-per-worker go with --ray" in capsys.readouterr().err
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.ray
def test_ray_pipeline_gives_predicts_rows(tiny_model, archive, tmp_path):
    """Opt-in (starts a local Ray on 127.0.0.1): two inspect actors on a 2-CPU Ray give predict's rows."""
    pytest.importorskip("ray")
    import ray

    from engine.archive.ray_pipeline import connect, disconnect

    expected = _predict(tiny_model, [archive], tmp_path / "predict.csv")
    started = connect("local", num_cpus=2)
    try:
        out = tmp_path / "review.parquet"
        code = main(["review-archive", str(tiny_model), str(archive), "--out", str(out), "--ray", "local",
                     "--workers", "2", "--batch-size", "3", "--device", "cpu", "--precision", "fp32"])  # fmt: skip
        assert code == 1 and ray.is_initialized()  # the Ray the test started is left to the test
    finally:
        disconnect(started)
    import pyarrow.parquet as pq

    rows = pq.read_table(out).to_pylist()
    assert [(r["path"], r["verdict"], r["boxes"], r["error"] or "") for r in rows] == [
        (r["path"], r["verdict"], r["boxes"], r["error"]) for r in expected
    ]
    assert [f"{r['p_anomaly']:.6f}" if r["p_anomaly"] is not None else "" for r in rows] == [r["p_anomaly"] for r in expected]


def test_ray_layout_keeps_a_cpu_for_decoding_and_refuses_one_that_would_hang():
    """On a 2-CPU node, actors that take both CPUs leave the decode tasks none and the pipeline never moves."""
    from engine.archive.ray_pipeline import share_cpus

    one, two = share_cpus(1, 2, 2, 0, "cpu"), share_cpus(2, 2, 2, 0, "cpu")
    assert (one.cpus_per_worker, one.decode_cpus) == (1, 1) and (two.cpus_per_worker, two.decode_cpus) == (0.5, 1)
    assert share_cpus(3, 2, 2, 0, "cpu").cpus_per_worker * 3 <= 1
    big = share_cpus(4, 64, 16, 4, "auto")  # four 16-CPU nodes with a GPU each: one actor per node
    assert (big.cpus_per_worker, big.gpus_per_worker) == (15, 1)
    with pytest.raises(ValueError, match="leave less than 1 of the cluster's 2 CPUs for decoding"):
        share_cpus(1, 2, 2, 0, "cpu", cpus_per_worker=2)
    with pytest.raises(ValueError, match="at most 16"):
        share_cpus(1, 64, 16, 0, "cpu", cpus_per_worker=32)


def test_a_file_list_names_the_files_to_inspect(tiny_model, archive, tmp_path):
    listing = tmp_path / "todo.txt"
    listing.write_text(f"{archive / 'part_1.png'}\n\n{archive / 'line2' / 'part_9.png'}\n", encoding="utf-8")
    out = tmp_path / "review.csv"
    assert main(["review-archive", str(tiny_model), "--files-from", str(listing), "--out", str(out), "--device", "cpu"]) == 0
    assert [r["path"] for r in _rows(out)] == [str(archive / "part_1.png"), str(archive / "line2" / "part_9.png")]


def test_a_failed_ray_worker_is_one_line_with_its_reason():
    from engine.archive.ray_pipeline import worker_failure

    text = """The actor died because of an error raised in its creation task, ray::MapWorker(...).__init__() (pid=1, ip=10.0.0.2)
  File "/x/actor_pool_map_operator.py", line 738, in __init__
    self._init_udf_with_retries(ctx)
    raise ModelFileError(f"{path}: not a safetensors model file") from None
engine.errors.ModelFileError: /mnt/models/a.safetensors: model file not found"""
    assert worker_failure(text) == "/mnt/models/a.safetensors: model file not found"
    assert worker_failure("Task was killed due to the node running low on memory.\nMore text") == (
        "Task was killed due to the node running low on memory."
    )
