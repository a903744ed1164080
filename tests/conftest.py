"""Shared fixtures: a synthetic dataset and a small model trained on it (random init, 64 px, seconds on CPU)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYLON_CAMEMU", "2")  # two emulated pylon cameras, set before pylon first looks for devices

RAY_TESTS = os.environ.get("VISINSPECT_RAY_TESTS") == "1"


def pytest_configure(config):
    config.addinivalue_line("markers", "ray: starts a local Ray (listens on the network); run with -m ray or VISINSPECT_RAY_TESTS=1")


def pytest_collection_modifyitems(config, items):
    """Tests that start Ray run only when asked for: the default suite never opens a port beyond loopback."""
    if RAY_TESTS or "ray" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="starts Ray: run with -m ray or VISINSPECT_RAY_TESTS=1")
    for item in items:
        if item.get_closest_marker("ray") is not None:
            item.add_marker(skip)


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Small enough for CI's 2 cores, large enough to learn the synthetic defects.
FAST_TRAIN = dict(backbone="vgg16_bn", backbone_weights="none", image_size=64, epochs=30, lr=1e-3)


def shared_dataset(name: str) -> Path:
    """A set from ../shared/data, or a clean skip on a checkout without it."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"../shared/data/{name} is not present")
    return path


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory) -> Path:
    from engine.data.synthetic import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("synthetic") / "product", image_size=128, seed=0).root


@pytest.fixture(scope="session")
def trained(synthetic_dataset, tmp_path_factory):
    """TrainResult of the fast recipe on the synthetic set, saved to a model file."""
    from engine.data.layouts import load_dataset
    from engine.modelfile import save_model
    from engine.training import TrainConfig, fit

    result = fit(load_dataset(synthetic_dataset), TrainConfig(**FAST_TRAIN), product="synthetic")
    path = save_model(tmp_path_factory.mktemp("models") / "synthetic.safetensors", result.model, result.meta, calibration=result.calibration)
    return result, path


@pytest.fixture(scope="session")
def model_file(trained) -> Path:
    return trained[1]


def committed_rows(db: Path) -> list[tuple[int, str, str]]:
    """(id, item, verdict) of every row committed to a results log, read through a read-only connection; [] if not there yet."""
    import sqlite3

    if not db.exists():
        return []
    try:
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=1.0)
        try:
            return conn.execute("SELECT id, item, verdict FROM results ORDER BY id").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return []  # database or table not created yet


def sigkill_after_rows(command: list[str], env: dict, db: Path, n_rows: int, *, what: str) -> list[tuple[int, str, str]]:
    """Run command and SIGKILL it as soon as n_rows results are committed to db; the rows seen before the kill."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    seen: list[tuple[int, str, str]] = []
    deadline = time.monotonic() + 240
    try:
        while len(seen) < n_rows:
            assert proc.poll() is None, f"{what} ended before it could be killed: {proc.stderr.read().decode()}"
            assert time.monotonic() < deadline, f"no results from {what} appeared in time"
            seen = committed_rows(db)
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=60)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return seen


def intact_rows(db: Path) -> list[tuple[int, str, str]]:
    """(id, item, verdict) of every row, opened as the next run does (recovering the WAL) and integrity-checked."""
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return conn.execute("SELECT id, item, verdict FROM results ORDER BY id").fetchall()
    finally:
        conn.close()
