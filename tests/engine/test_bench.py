"""`visinspect bench --quick`: the benchmark's machinery runs and reports every part (no timing assertions)."""
import json
import os
import subprocess
import sys

import pytest
import torch

from engine import bench

PARTS = ("environment", "model", "model_only", "end_to_end", "live", "reference", "ratios", "memory", "targets")
# Every top-level key of `--json` before results were typed (precision_check_trained only when checked).
JSON_KEYS = (
    "quick", "environment", "model", "model_only", "end_to_end", "live", "memory", "reference", "ratios",
    "training", "precision_check", "targets",
)  # fmt: skip


def _check(result: dict, *, trained: bool) -> None:
    for key in PARTS:
        assert key in result, key
    env = result["environment"]
    for key in ("date", "cpu_model", "cores", "torch_version", "device", "precision"):
        assert env[key], key
    assert env["torch_version"].startswith(torch.__version__.split("+")[0])
    mo = result["model_only"]
    assert mo["batch_1"]["batch_size"] == 1 and mo["batch_1"]["images_per_s"] > 0
    assert mo["batch_n"]["images_per_s"] > 0
    e2e = result["end_to_end"]
    assert e2e["images"] > 0 and e2e["errors"] == 0 and e2e["images_per_s"] > 0
    assert result["reference"]["images"] > 0 and result["reference"]["images_per_s"] > 0
    live = result["live"]
    assert 0 < live["p50_ms"] <= live["p95_ms"]
    ratios = result["ratios"]
    assert ratios["end_to_end_vs_reference"] > 0 and ratios["end_to_end_vs_model_only"] > 0
    assert result["memory"]["peak_rss_mib"] is None or result["memory"]["peak_rss_mib"] > 0
    targets = result["targets"]
    assert set(targets) == set(bench.TARGETS)
    assert all(t["meaningful"] is False for t in targets.values())  # quick runs never claim a target
    assert targets["live_p95_ms"]["value"] == live["p95_ms"]
    pc = result["precision_check"]
    if pc is not None:
        assert pc["images"] > 0 and 0.0 <= pc["verdict_agreement"] <= 1.0 and -1.0 <= pc["heatmap_correlation_mean"] <= 1.0
    if trained:
        tr = result["training"]
        assert len(tr["plain_epoch_s"]) == len(tr["cached_epoch_s"]) == 2
        assert tr["plain_later_epoch_s"] > 0 and tr["cached_later_epoch_s"] > 0 and tr["speedup"] > 0
        assert targets["training_cached_speedup"]["value"] == tr["speedup"]
    else:
        assert result["training"] is None and targets["training_cached_speedup"]["met"] is None
    json.dumps(result)  # JSON-ready


def test_quick_run_as_a_function_reports_every_part_and_training():
    result = bench.run(quick=True, device="cpu", train=True)
    assert isinstance(result, bench.BenchResult)
    d = result.to_dict()
    _check(d, trained=True)
    assert d["quick"] is True and d["model"]["input_size"] == 64
    assert set(d) - {"precision_check_trained", "backends"} == set(JSON_KEYS) and list(d)[-1] == "targets"
    assert d["backends"][0]["backend"] == "torch" and d["backends"][0]["batch_1"] == d["model_only"]["batch_1"]
    assert json.loads(json.dumps(d)) == d  # JSON-serialisable as it is: no tuples, enums or numpy values
    assert result.live.p95_ms == d["live"]["p95_ms"] and result.target("live_p95_ms").value == result.live.p95_ms
    if result.precision_check is not None:
        assert d["precision_check"]["agrees"] == result.precision_check.overall.agrees
        assert set(d["precision_check"]["gate"]) == {"verdict_agreement", "heatmap_correlation"}
    text = bench.format_report(result)
    assert "end to end / reference" in text and "live latency" in text and "training" in text


def _hand_made_result(**changes) -> "bench.BenchResult":
    from engine.inference.agreement import Agreement

    env = bench.Environment(
        date="2026-01-01T00:00:00+00:00", cpu_model="cpu", cores=2, torch_threads=2, torch_version="2", opencv_version="4",
        python="3.10", platform="linux", device="CPU", device_type="cpu", precision="fp32", cpu_native_bf16=False,
        mkldnn=True, load_average_1min=0.5, load_average_1min_end=0.6,
    )  # fmt: skip
    empty = Agreement(0, 0.0, 0.0, 0.0, 0.0)
    values = dict(
        quick=True,
        environment=env,
        model=bench.ModelInfo(file=None, backbone="vgg16", weights="none", input_size=64, compiled=False,
                              threshold_timed=0.0, int8_calibration=None, precision_note=""),  # fmt: skip
        model_only_1=bench.ModelOnly(batch_size=1, images_per_s=2.0, batch_ms_p50=500.0, iterations=3),
        model_only_n=bench.ModelOnly(batch_size=3, images_per_s=2.5, batch_ms_p50=1200.0, iterations=3),
        end_to_end=bench.EndToEnd(batch_size=3, workers=1, images=6, errors=0, anomalies=6, boxes=6, seconds=3.0,
                                  images_per_s=2.0, source="synthetic", first_image_shape=(128, 128, 3)),  # fmt: skip
        live=bench.Live(frame_shape=(128, 128, 3), iterations=3, p50_ms=10.0, p95_ms=12.0, mean_ms=11.0, min_ms=9.0),
        memory=bench.Memory(peak_rss_mib_inspection=100.0, peak_rss_mib=120.0),
        reference=bench.Reference(pipeline="plain", batch_size=10, images=6, anomalies=6, seconds=6.0, images_per_s=1.0),
        ratios=bench.Ratios(end_to_end_vs_reference=2.0, end_to_end_vs_model_only=0.8),
        targets=tuple(bench.Target.judge(name, None, quick=True) for name in bench.TARGETS),
        precision_check=bench.PrecisionCheck(reduced="bf16", overall=empty, sets=(("synthetic", empty),)),
    )
    values.update(changes)
    return bench.BenchResult(**values)


def test_bench_result_to_dict_keeps_the_json_format():
    d = _hand_made_result().to_dict()
    assert list(d) == list(JSON_KEYS) and set(PARTS) <= set(d)
    assert json.loads(json.dumps(d)) == d
    assert list(d["model_only"]) == ["batch_1", "batch_n"] and d["live"]["frame_shape"] == [128, 128, 3]
    assert "cuda_max_allocated_mib" not in d["memory"] and d["training"] is None
    pc = d["precision_check"]
    assert pc["images"] == 0 and pc["verdict_agreement"] is None and pc["agrees"] is False
    assert set(pc["sets"]["synthetic"]) == {"images", "verdict_agreement", "heatmap_correlation_mean",
                                           "heatmap_correlation_min", "max_abs_p_diff"}  # fmt: skip
    assert set(d["targets"]) == set(bench.TARGETS)
    assert set(d["targets"]["live_p95_ms"]) == {"target", "limit", "value", "met", "meaningful"}
    trained = _hand_made_result(precision_check_trained=_hand_made_result().precision_check).to_dict()
    assert list(trained)[-2:] == ["precision_check_trained", "targets"]
    assert "not measured" in bench.format_report(_hand_made_result())


def test_targets_are_judged_on_unrounded_values():
    near = bench.Target.judge("end_to_end_vs_model_only", 0.89996, quick=False)
    assert near.met is False and near.value == 0.9 and near.meaningful
    assert bench.Target.judge("live_p95_ms", 60.0, quick=True).met is True
    with pytest.raises(ValueError, match="end_to_end_vs_reference"):
        bench.Target.judge("speed", 1.0, quick=False)


def test_quick_run_through_the_cli_with_training_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    r = subprocess.run(
        [sys.executable, "-m", "engine.cli", "bench", "--quick", "--device", "cpu", "--json", str(out), "--train", "--workers", "1", "--threads", "1"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "end to end / reference" in r.stdout and "targets" in r.stdout
    result = json.loads(out.read_text(encoding="utf-8"))
    _check(result, trained=True)  # the CLI takes every option of the benchmark, --train included
    assert result["environment"]["torch_threads"] == 1


def test_images_folder_is_used_and_masks_are_skipped(tmp_path):
    paths = bench.make_image_set(tmp_path / "imgs", 3, size=64)
    (tmp_path / "imgs" / "ground_truth").mkdir()
    (tmp_path / "imgs" / "ground_truth" / "x.png").write_bytes(paths[0].read_bytes())
    (tmp_path / "imgs" / "bench_0000_mask.png").write_bytes(paths[0].read_bytes())
    listed = bench.list_images(tmp_path / "imgs", 5)
    assert len(listed) == 5 and all(p.parent == tmp_path / "imgs" for p in listed)
    assert listed[:3] == paths and listed[3:] == paths[:2]  # fewer files than asked: repeated in order
    with pytest.raises(ValueError):
        bench.list_images(tmp_path / "missing", 5)


def test_fast_heatmap_matches_the_reference_normalisation():
    import numpy as np

    from engine.inference.localize import full_heatmap, heatmap_to_boxes, normalize_heatmap, upsample

    rng = np.random.default_rng(0)
    for _ in range(40):
        h, w = rng.integers(2, 16, 2)
        height, width = rng.integers(20, 400, 2)
        cam = (rng.normal(size=(h, w)) * rng.uniform(1e-3, 1e3)).astype(np.float32)
        fast, ref = full_heatmap(cam, height, width), normalize_heatmap(upsample(cam, height, width))
        assert fast.dtype == np.float32 and fast.shape == ref.shape
        assert np.abs(fast - ref).max() < 1e-6
        boxes = [(b.x0, b.y0, b.x1, b.y1) for b in heatmap_to_boxes(fast)]
        assert boxes == [(b.x0, b.y0, b.x1, b.y1) for b in heatmap_to_boxes(ref)]
    for cam in (np.zeros((4, 4), np.float32), np.full((3, 3), np.nan, np.float32), np.array([[0, np.inf], [1, 2]], np.float32)):
        assert np.array_equal(full_heatmap(cam, 10, 12), normalize_heatmap(upsample(cam, 10, 12)))


def test_overlapped_file_runs_give_the_same_results_in_order(tmp_path):
    import numpy as np

    from engine.inference import Inspector
    from engine.inference.runtime import choose_runtime
    from engine.types import RuntimeOptions

    paths = bench.make_image_set(tmp_path, 7, size=96)
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    paths.insert(3, tmp_path / "bad.jpg")
    loaded = bench.random_init_model(64)
    inspector = Inspector(loaded, choose_runtime(loaded, RuntimeOptions("cpu", "fp32")))
    plain = list(inspector.inspect_files(paths, batch_size=3, overlap=False))
    overlapped = list(inspector.inspect_files(paths, batch_size=3, overlap=True))
    assert [r.path for r in plain] == [r.path for r in overlapped] == [str(p) for p in paths]
    for a, b in zip(plain, overlapped):
        assert (a.error is None) == (b.error is None)
        if a.inspection is not None:
            assert a.inspection.p_anomaly == b.inspection.p_anomaly
            assert np.array_equal(a.inspection.heatmap, b.inspection.heatmap)
    assert sum(r.error is not None for r in overlapped) == 1


def test_cpu_bf16_weight_copy_is_bit_identical_to_autocast(monkeypatch):
    import numpy as np

    import engine.inference.inspector as inspector_module

    loaded = bench.random_init_model(64)
    image = np.random.default_rng(0).integers(0, 255, (70, 90, 3), dtype=np.uint8)
    copy_run = inspector_module.Inspector(loaded, device="cpu", precision="bf16").inspect([image])[0]
    monkeypatch.setattr(inspector_module, "BF16_WEIGHT_COPY", False)
    autocast_run = inspector_module.Inspector(loaded, device="cpu", precision="bf16").inspect([image])[0]
    assert copy_run.p_anomaly == autocast_run.p_anomaly
    assert np.array_equal(copy_run.heatmap, autocast_run.heatmap)
