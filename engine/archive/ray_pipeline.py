"""The archive review as a Ray Data pipeline: file list -> decode (CPU tasks) -> inspect (actor pool) -> records.

Each inspect actor loads the model once and judges with the Inspector's own model step (inspect_resized) at
the thresholds the driver gives, so verdicts are predict's. Decoding resizes to the model's input size in the
CPU tasks, so only S x S images and the original sizes travel to the actors. Records come back to the driver,
which writes them (results are small; the output then need not be on storage every node shares).

Pitfalls this avoids: actors that take every CPU starve the decode tasks and the pipeline never moves (a share
of the CPUs is kept for decoding); local_mode is gone from Ray (a local Ray is a real one, bound to loopback).
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.archive.rows import ArchiveError, ArchiveRecord, record_from_dict, record_of
from engine.errors import VisInspectError
from engine.thresholds import Thresholds
from engine.types import RuntimeOptions

LOCAL = "local"
RECORD = "record"  # the one column the actors return: each row's record as JSON
WORKER_MEMORY_PER_MODEL_BYTE = 4  # an actor holds the weights, a reduced-precision copy and a batch's activations
MIN_WORKER_MEMORY = 512 << 20


@dataclass(frozen=True)
class RayPlan:
    """How the pipeline is laid out on the cluster it connected to."""

    workers: int
    cpus_per_worker: float
    gpus_per_worker: float
    decode_cpus: float
    cluster_cpus: float

    def describe(self, address: str) -> str:
        where = "a local Ray on this machine" if address == LOCAL else f"Ray at {address}"
        gpu = f", {self.gpus_per_worker:g} GPU" if self.gpus_per_worker else ""
        return (f"{where}: {self.workers} inspect worker(s) x {self.cpus_per_worker:g} CPU{gpu}, "
                f"decode tasks {self.decode_cpus:g} CPU each, {self.cluster_cpus:g} CPUs in the cluster")  # fmt: skip


def import_ray():
    """ray and ray.data, or one line saying how to install them."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ArchiveError("--ray needs Ray Data: pip install 'visinspect[cluster]' (or 'ray[data]')") from None
    return ray


def connect(address: str, *, num_cpus: int | None = None) -> bool:
    """Join the Ray cluster at address, or start a local one on loopback ('local'); True when this call started it."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    engine_dir = str(Path(__file__).resolve().parents[1])
    common = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                  runtime_env={"py_modules": [engine_dir]})  # fmt: skip  # workers run this very engine code
    if address == LOCAL:
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1, _node_ip_address="127.0.0.1", **common)
    else:
        ray.init(address=address, **common)
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its per-dataset INFO lines would break up the one bar
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the command draws one bar over the whole run
    ctx.print_on_execution_start = False
    return True


def plan(workers: int, device: str, cpus_per_worker: float | None = None) -> RayPlan:
    """The layout on the connected cluster (share_cpus over its resources)."""
    import ray

    resources = ray.cluster_resources()
    cpus = float(resources.get("CPU", 1.0))
    node_cpus = max((n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")), default=cpus)
    return share_cpus(workers, cpus, node_cpus, float(resources.get("GPU", 0.0)), device, cpus_per_worker)


def share_cpus(workers: int, cpus: float, node_cpus: float, gpus: float, device: str,
               cpus_per_worker: float | None = None) -> RayPlan:  # fmt: skip
    """Up to 1 CPU (half on a 1-CPU cluster) stays for decoding, the rest goes to the actors; a layout that would
    leave decoding no CPU (the pipeline then waits forever) is refused in one line."""
    decode = min(1.0, cpus / 2)
    if cpus_per_worker is None:
        share = min(node_cpus - decode, (cpus - decode) / workers)
        cpus_per_worker = max(0.01, math.floor(share) if share >= 1 else math.floor(share * 100) / 100)
    if cpus_per_worker <= 0 or cpus_per_worker > node_cpus:
        raise ValueError(f"--cpus-per-worker must be more than 0 and at most {node_cpus:g} (the most CPUs a node has); "
                         f"got {cpus_per_worker:g}")  # fmt: skip
    if workers * cpus_per_worker > cpus - decode + 1e-9:
        raise ValueError(f"{workers} worker(s) x {cpus_per_worker:g} CPU leave less than {decode:g} of the cluster's "
                         f"{cpus:g} CPUs for decoding, and the pipeline would wait for it forever; use fewer workers or "
                         "--cpus-per-worker")  # fmt: skip
    gpu = min(1.0, gpus / workers) if gpus and device != "cpu" else 0.0
    return RayPlan(workers, cpus_per_worker, gpu, decode, cpus)


def decode_batch(batch: dict, preprocess) -> dict:
    """Read and resize one batch of files; a file that cannot be read keeps a blank image and its error."""
    from engine.data.decode import read_image

    size = preprocess.size
    paths = [str(p) for p in batch["path"]]
    resized = np.zeros((len(paths), size, size, 3), np.uint8)
    heights, widths, errors = np.zeros(len(paths), np.int64), np.zeros(len(paths), np.int64), []
    for i, path in enumerate(paths):
        try:
            image = read_image(path)
        except VisInspectError as exc:
            errors.append(str(exc))
            continue
        resized[i] = preprocess.resize(image)
        heights[i], widths[i] = image.shape[:2]
        errors.append("")
    return {"path": np.array(paths, dtype=object), "resized": resized, "height": heights, "width": widths,
            "error": np.array(errors, dtype=object)}  # fmt: skip


class InspectWorker:
    """A Ray actor: loads the model once, then turns decoded batches into records."""

    def __init__(self, model: str, runtime: RuntimeOptions, thresholds: Thresholds, run_id: str, threads: int) -> None:
        import torch

        from engine.inference.inspector import Inspector

        torch.set_num_threads(threads)
        self.inspector = Inspector.open(model, runtime)
        self.thresholds, self.run_id = thresholds, run_id

    def __call__(self, batch: dict) -> dict:
        errors = [str(e) for e in batch["error"]]
        ok = [i for i, e in enumerate(errors) if not e]
        shapes = [(int(batch["height"][i]), int(batch["width"][i])) for i in ok]
        found = self.inspector.inspect_resized(batch["resized"][ok], shapes, thresholds=self.thresholds) if ok else []
        inspections = dict(zip(ok, found))
        ref = self.inspector.ref
        records = [record_of(str(p), inspections.get(i), errors[i] or None, ref, self.run_id)
                   for i, p in enumerate(batch["path"])]  # fmt: skip
        return {RECORD: np.array([json.dumps(asdict(r)) for r in records], dtype=object)}


def ray_source(inspector, runtime: RuntimeOptions, *, workers: int, batch_size: int,
               cpus_per_worker: float | None = None):  # fmt: skip
    """A record source (engine.archive.job) that inspects on the connected Ray, and the plan it will use."""
    if workers < 1:
        raise ValueError(f"--workers must be at least 1; got {workers}")
    layout = plan(workers, runtime.device, cpus_per_worker)

    def run(paths: Sequence[str], run_id: str) -> Iterator[Sequence[ArchiveRecord]]:
        import ray

        blocks = max(1, min(len(paths) // batch_size, 20 * workers, 10_000))
        # The actors' memory request also keeps decoding a stage of its own: Ray fuses a task map into the actor map
        # after it when their resource requests are the same, and the actors would then decode too.
        memory = max(MIN_WORKER_MEMORY, WORKER_MEMORY_PER_MODEL_BYTE * inspector.path.stat().st_size)
        ds = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=blocks)
        ds = ds.map_batches(decode_batch, fn_kwargs={"preprocess": inspector.preprocess}, batch_size=batch_size,
                            batch_format="numpy", num_cpus=layout.decode_cpus)  # fmt: skip
        ds = ds.map_batches(
            InspectWorker,
            fn_constructor_kwargs={"model": str(inspector.path.resolve()), "runtime": runtime, "run_id": run_id,
                                   "thresholds": inspector.thresholds, "threads": max(1, int(layout.cpus_per_worker))},
            compute=ray.data.ActorPoolStrategy(size=workers), batch_size=batch_size, batch_format="numpy",
            num_cpus=layout.cpus_per_worker, num_gpus=layout.gpus_per_worker or None, memory=memory,
        )  # fmt: skip
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                yield [record_from_dict(json.loads(text)) for text in batch[RECORD]]
        except ray.exceptions.RayError as exc:
            raise ArchiveError(f"a Ray worker failed: {worker_failure(str(exc))}") from None

    return run, layout


_RAISED = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception): (.+)$")


def worker_failure(text: str) -> str:
    """The one line that says why a Ray task or actor failed: the last 'SomeError: message' of its traceback text."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    found = [m.group(1) for m in map(_RAISED.match, lines) if m]
    return (found[-1] if found else (lines[0] if lines else "no reason given"))[:500]


def disconnect(started: bool) -> None:
    """Shut down the Ray this process started (a cluster it joined keeps running)."""
    if started:
        import ray

        ray.shutdown()
