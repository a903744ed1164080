"""The network as it is served elsewhere: uint8 RGB images in; logits, p_anomaly, the CAM and conv5_3 out."""
from __future__ import annotations

import json
from dataclasses import asdict

import torch
from torch import nn

from engine.modelfile import LoadedModel

EXPORT_FORMAT = "visinspect-export/1"
INPUT_NAME = "image"
OUTPUT_NAMES = ("logits", "p_anomaly", "cam", "conv5_3")
INPUT_DOC = (
    "uint8 RGB, NHWC (N, S, S, 3), each image already resized to S x S (square; OpenCV INTER_AREA when "
    "shrinking, bilinear when enlarging); mean/std scaling is inside the graph: (x - 255*mean) / (255*std)"
)
OUTPUT_DOC = (
    "logits (N, classes); p_anomaly (N,) = softmax(logits)[:, 1]; cam (N, S/16, S/16) raw class activation map of "
    "class 1 (upsample bilinearly to the image and scale by heat_scale, or min-max per image); conv5_3 (N, 512, S/16, S/16)"
)


class ServingNetwork(nn.Module):
    """The model with preprocessing and the CAM inside, so a server needs only a square resize before it."""

    def __init__(self, loaded: LoadedModel) -> None:
        super().__init__()
        pre = loaded.meta.preprocessing()
        self.model = loaded.model
        self.register_buffer("mean", torch.tensor(pre.mean, dtype=torch.float32).mul(255.0).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(pre.std, dtype=torch.float32).mul(255.0).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor):
        x = (image.permute(0, 3, 1, 2).float() - self.mean) / self.std
        features = self.model.forward_features(x)
        logits = self.model.forward_head(features)
        return logits, torch.softmax(logits, dim=1)[:, 1], self.model.cam(features), features


def serving_copy(loaded: LoadedModel) -> ServingNetwork:
    """A CPU fp32 eval-mode ServingNetwork over a copy of the weights (the caller's model is left as it is)."""
    import copy

    model = copy.deepcopy(loaded.model).float().cpu().eval()
    return ServingNetwork(type(loaded)(model=model, meta=loaded.meta, path=loaded.path, sha256=loaded.sha256)).eval()


def export_metadata(loaded: LoadedModel) -> dict[str, str]:
    """What a server needs beside the graph, as string key/values (ONNX metadata_props, OpenVINO rt_info)."""
    meta = loaded.meta
    pre = meta.preprocessing()
    return {
        "visinspect.format": EXPORT_FORMAT,
        "product": meta.product,
        "threshold_decision": repr(float(meta.threshold)),
        "threshold_box": repr(float(meta.box_threshold)),
        "min_area_fraction": repr(float(meta.min_area_fraction)),
        "input_size": str(pre.size),
        "input": INPUT_DOC,
        "outputs": OUTPUT_DOC,
        "mean": json.dumps(list(pre.mean)),
        "std": json.dumps(list(pre.std)),
        "class_names": json.dumps(list(meta.class_names)),
        "model_sha256": loaded.sha256,
        "source_model": loaded.path.name,
        "heat_scale": json.dumps(meta.heat_scale or {}),
        "backbone": meta.backbone,
        "engine_version": meta.engine_version,
        "visinspect_meta": json.dumps({k: v for k, v in asdict(meta).items() if k != "dataset"}, sort_keys=True),
    }
