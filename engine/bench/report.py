"""The benchmark's printed table: one line per measured part, then each target met or not."""
from __future__ import annotations

from engine.bench.result import BenchResult, Target


def _met(t: Target) -> str:
    if t.met is None:
        return "not measured"
    word = "MET" if t.met else "NOT MET"
    return word if t.meaningful else f"{word} (quick run: not meaningful)"


def _rows(r: BenchResult) -> list[tuple[str, str]]:
    """(label, value) per measured part, in the order people read them."""
    b1, bn, e2e, live, ref, mem = r.model_only_1, r.model_only_n, r.end_to_end, r.live, r.reference, r.memory
    threads = f"{e2e.workers} decode thread{'s' if e2e.workers != 1 else ''}"
    vs_ref = r.ratios.end_to_end_vs_reference
    rows = [
        ("model only, batch 1", f"{b1.images_per_s:.2f} img/s   ({b1.batch_ms_p50:.1f} ms per batch)"),
        (f"model only, batch {bn.batch_size}", f"{bn.images_per_s:.2f} img/s   ({bn.batch_ms_p50:.1f} ms per batch)"),
        (
            f"end to end, batch {e2e.batch_size}",
            f"{e2e.images_per_s:.2f} img/s   ({e2e.images} files, {e2e.source}, {threads}, {e2e.anomalies} boxed as anomalies)",
        ),
        ("reference pipeline", f"{ref.images_per_s:.2f} img/s   ({ref.images} files; PIL + torchvision, fp32 NCHW, naive CAM)"),
        ("end to end / reference", f"{vs_ref:.2f}x" if vs_ref is not None else "not measured"),
        ("end to end / model only", f"{r.ratios.end_to_end_vs_model_only:.2%}"),
        ("live latency, batch 1", f"p50 {live.p50_ms:.1f} ms   p95 {live.p95_ms:.1f} ms   ({live.iterations} frames)"),
    ]
    # the backends side by side (torch's row repeats the two above; its precision note is in the header)
    rows[2:2] = [(f"model only, {b.backend}" + (f" {b.precision}" if b.precision else ""), b.describe()) for b in r.backends]
    mem_txt = f"peak RSS {mem.peak_rss_mib_inspection} MiB (inspection), {mem.peak_rss_mib} MiB (whole run)"
    if mem.cuda_max_allocated_mib is not None:
        mem_txt += f", CUDA max allocated {mem.cuda_max_allocated_mib} MiB"
    rows.append(("memory", mem_txt))
    for pc, label in ((r.precision_check, "model above"), (r.precision_check_trained, "trained model")):
        if pc is None:
            continue
        a = pc.overall
        rows.append(
            (
                f"{pc.reduced} vs fp32 ({label})",
                f"verdicts {a.verdict_agreement:.2%} agree, heatmap corr mean {a.heatmap_correlation_mean:.4f} "
                f"(min {a.heatmap_correlation_min:.4f}), max |dp| {a.max_abs_p_diff:.4f} on {a.images} images "
                f"-> {'agrees' if pc.agrees else 'DOES NOT agree'}",
            )
        )
    tr = r.training
    if tr is not None and tr.speedup is not None:
        rows.append(
            (
                f"training {tr.image_size} px",
                f"plain {tr.plain_later_epoch_s:.2f} s/epoch, cached {tr.cached_later_epoch_s:.2f} s/epoch "
                f"(epochs after the first) -> {tr.speedup:.2f}x; first epochs {tr.plain_epoch_s[0]:.2f} / "
                f"{tr.cached_epoch_s[0]:.2f} s",
            )
        )
    return rows


def format_report(r: BenchResult) -> str:
    """The human-readable report `visinspect bench` prints."""
    env, m = r.environment, r.model
    rows = _rows(r)
    width = max(len(k) for k, _ in rows) + 2
    head = (
        f"VisInspect benchmark{' (quick smoke run: numbers are not meaningful)' if r.quick else ''}\n"
        f"{env.date} | {env.cpu_model}, {env.cores} cores | torch {env.torch_version} | "
        f"{env.device} | precision {env.precision} | load avg {env.load_average_1min}\n"
        f"model: {m.backbone} {m.input_size} px, {m.file or 'random init, in memory'}"
        + (f" | int8 calibrated on {m.int8_calibration}" if m.int8_calibration else "")
        + "\n"
        + (f"precision: {m.precision_note}\n" if m.precision_note else "")
    )
    body = "\n".join(f"  {k:<{width}}{v}" for k, v in rows)
    targets = "\n".join(f"  {t.text:<58}{_met(t):<12} ({t.value})" for t in r.targets)
    return f"{head}\n{body}\n\ntargets\n{targets}\n"
