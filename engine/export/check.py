"""An exported model against torch fp32 on the same images: verdicts, probabilities and full-size heatmaps."""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from engine.data.decode import read_image
from engine.errors import VisInspectError
from engine.inference.agreement import PRECISION_GATE, Agreement, agreement_from_scores, correlation
from engine.inference.localize import full_heatmap
from engine.inference.trace_gate import GATE
from engine.modelfile import LoadedModel

CHUNK = 8
# Exported graphs compute in fp32 like torch, so they are held to the gate of the reduced precisions and more:
# every checked verdict and a probability within this of torch's.
MAX_P_DIFF = 1e-3

Runner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # resized uint8 (N, S, S, 3) -> (p_anomaly, raw CAMs)


@dataclass(frozen=True)
class ExportCheck:
    """How an export agrees with torch fp32: the gate's numbers, on which images, in which runtime."""

    runtime: str
    how: str
    agreement: Agreement

    @property
    def agrees(self) -> bool:
        return self.agreement.agrees and self.agreement.max_abs_p_diff <= MAX_P_DIFF

    def table(self) -> str:
        """The short table `visinspect export` prints."""
        a = self.agreement
        verdict, corr = PRECISION_GATE["verdict_agreement"], PRECISION_GATE["heatmap_correlation"]
        return "\n".join([
            f"check: {self.runtime} vs torch fp32 on {self.how}",
            f"  {'verdict agreement':<22}{a.verdict_agreement:>10.1%}   must be >= {verdict:.1%}",
            f"  {'max |Δp|':<22}{a.max_abs_p_diff:>10.2e}   must be <= {MAX_P_DIFF:.0e}",
            f"  {'heatmap correlation':<22}{a.heatmap_correlation_mean:>10.5f}   mean, must be >= {corr}; worst {a.heatmap_correlation_min:.5f}",
            f"  {'result':<22}{'PASS' if self.agrees else 'FAIL':>10}",
        ])  # fmt: skip


def torch_reference(loaded: LoadedModel) -> Runner:
    """torch fp32 on the CPU, normalising exactly as the Inspector does."""
    model = loaded.model
    weights = next(model.parameters())
    if weights.device.type != "cpu" or weights.dtype != torch.float32:
        import copy

        model = copy.deepcopy(model).cpu().float()
    model.eval()
    pre = loaded.meta.preprocessing()

    def run(resized: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode(), GATE.model_call():
            feats = model.forward_features(pre.normalize(torch.from_numpy(np.ascontiguousarray(resized))))
            p = torch.softmax(model.forward_head(feats).float(), dim=1)[:, 1]
            return p.numpy(), model.cam(feats).float().numpy()

    return run


def compare(loaded: LoadedModel, exported: Runner, images: Sequence[np.ndarray], *, threshold: float | None = None) -> Agreement:
    """exported vs torch fp32 on RGB uint8 images of any size, heatmaps compared at each image's full size."""
    if not images:
        raise VisInspectError("no images to check the export on")
    pre = loaded.meta.preprocessing()
    reference = torch_reference(loaded)
    p_ref, p_exp, corrs = [], [], []
    for start in range(0, len(images), CHUNK):
        chunk = images[start : start + CHUNK]
        resized = np.stack([pre.resize(im) for im in chunk])
        (pr, cr), (pe, ce) = reference(resized), exported(resized)
        p_ref += np.asarray(pr, np.float64).tolist()
        p_exp += np.asarray(pe, np.float64).tolist()
        for im, a, b in zip(chunk, cr, ce):
            h, w = im.shape[:2]
            corrs.append(correlation(full_heatmap(a, h, w), full_heatmap(np.asarray(b, np.float32), h, w)))
    return agreement_from_scores(p_ref, p_exp, corrs, float(loaded.meta.threshold if threshold is None else threshold))


def generated_images(n: int, size: int, *, seed: int = 0) -> list[np.ndarray]:
    """n synthetic surfaces, every other one with a drawn defect, 1.5x the model's input size (the resize is exercised)."""
    from engine.data.synthetic import DEFECT_TYPES, draw_defect, make_surface

    rng = np.random.default_rng(seed)
    side = max(32, int(size * 1.5))
    images = []
    for i in range(n):
        surface = make_surface(rng, side)
        if surface.ndim == 2:
            surface = np.repeat(surface[:, :, None], 3, axis=2)
        images.append(draw_defect(surface, DEFECT_TYPES[i % len(DEFECT_TYPES)], rng).image if i % 2 else surface)
    return images


def check_images(
    loaded: LoadedModel, data: str | os.PathLike | None, n: int, *, layout: str | None = None, good_dir: str | None = None
) -> tuple[list[np.ndarray], str]:
    """Up to n images to check on and how they were chosen: the model's held-out images of data, else generated ones."""
    if n < 1:
        raise ValueError(f"the check needs at least 1 image; got {n}")
    if data is None:
        return generated_images(n, loaded.meta.input_size), f"{n} generated images (no dataset given)"
    from engine.evaluation.evaluate import evaluation_samples
    from engine.jobs.evaluate import dataset_for

    choice = evaluation_samples(loaded.meta, dataset_for(loaded.meta, data, layout=layout, good_dir=good_dir))
    images = []
    for sample in choice.samples[:n]:
        try:
            images.append(read_image(sample.path))
        except VisInspectError:
            continue  # an unreadable file is not the export's fault; the count below says how many were used
    taken = f"{len(images)} of {choice.how}" if len(images) < len(choice.samples) else choice.how
    return images, taken
