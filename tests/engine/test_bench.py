"""`visinspect bench --quick`: the benchmark's machinery runs and reports every part (no timing assertions)."""
import json
import os
import subprocess
import sys

import pytest

from engine import bench

PARTS = ("environment", "model", "model_only", "end_to_end", "live", "reference", "ratios", "memory", "targets")


def _check(result: dict, *, trained: bool) -> None:
    for key in PARTS:
        assert key in result, key
    env = result["environment"]
    for key in ("date", "cpu_model", "cores", "torch_version", "device", "precision"):
        assert env[key], key
    assert env["torch_version"].startswith(bench.torch.__version__.split("+")[0])
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
    _check(result, trained=True)
    assert result["quick"] is True and result["model"]["input_size"] == 64
    text = bench.format_report(result)
    assert "end to end / reference" in text and "live latency" in text and "training" in text


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
    (tmp_path / "imgs" / "ground_truth" / "x_mask.png").write_bytes(paths[0].read_bytes())
    listed = bench.list_images(tmp_path / "imgs", 5)
    assert len(listed) == 5 and all(p.parent == tmp_path / "imgs" for p in listed)
    with pytest.raises(ValueError):
        bench.list_images(tmp_path / "missing", 5)


def test_fast_heatmap_matches_the_reference_normalisation():
    import numpy as np

    from engine.inference.inspector import _full_heatmap
    from engine.inference.localize import heatmap_to_boxes, normalize_heatmap, upsample

    rng = np.random.default_rng(0)
    for _ in range(40):
        h, w = rng.integers(2, 16, 2)
        height, width = rng.integers(20, 400, 2)
        cam = (rng.normal(size=(h, w)) * rng.uniform(1e-3, 1e3)).astype(np.float32)
        fast, ref = _full_heatmap(cam, height, width), normalize_heatmap(upsample(cam, height, width))
        assert fast.dtype == np.float32 and fast.shape == ref.shape
        assert np.abs(fast - ref).max() < 1e-6
        boxes = [(b.x0, b.y0, b.x1, b.y1) for b in heatmap_to_boxes(fast)]
        assert boxes == [(b.x0, b.y0, b.x1, b.y1) for b in heatmap_to_boxes(ref)]
    for cam in (np.zeros((4, 4), np.float32), np.full((3, 3), np.nan, np.float32), np.array([[0, np.inf], [1, 2]], np.float32)):
        assert np.array_equal(_full_heatmap(cam, 10, 12), normalize_heatmap(upsample(cam, 10, 12)))


def test_overlapped_file_runs_give_the_same_results_in_order(tmp_path):
    import numpy as np

    from engine.inference import Inspector

    paths = bench.make_image_set(tmp_path, 7, size=96)
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    paths.insert(3, tmp_path / "bad.jpg")
    inspector = Inspector(bench.random_init_model(64), device="cpu", precision="fp32")
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
