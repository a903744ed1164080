"""Draw an inspection for people: heatmap blended over the image, defect boxes with their scores."""
from __future__ import annotations

import cv2
import numpy as np

from engine.types import Inspection

BOX_COLOUR = (255, 40, 40)  # RGB


def colorize(heatmap: np.ndarray, colormap: int = cv2.COLORMAP_JET) -> np.ndarray:
    """[0, 1] float heatmap -> RGB uint8 colour image."""
    u8 = np.clip(np.nan_to_num(heatmap) * 255.0, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(u8, colormap), cv2.COLOR_BGR2RGB)


def render_overlay(
    image: np.ndarray,
    inspection: Inspection,
    *,
    opacity: float = 0.4,
    show_heatmap: bool = True,
    show_boxes: bool = True,
    colormap: int = cv2.COLORMAP_JET,
) -> np.ndarray:
    """RGB uint8 image with the heatmap blended at `opacity` and each box outlined and labelled."""
    out = image.copy()
    if show_heatmap and opacity > 0 and inspection.heatmap.shape == image.shape[:2]:
        out = cv2.addWeighted(colorize(inspection.heatmap, colormap), float(opacity), out, 1.0 - float(opacity), 0)
    if show_boxes:
        thick = max(1, round(max(image.shape[:2]) / 250))
        scale = max(0.35, max(image.shape[:2]) / 900)
        for box in inspection.boxes:
            cv2.rectangle(out, (box.x0, box.y0), (box.x1 - 1, box.y1 - 1), BOX_COLOUR, thick, cv2.LINE_AA)
            label = f"{box.score:.2f}"
            (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            y = box.y0 - 3 if box.y0 - th - 4 >= 0 else min(box.y1 + th + 3, image.shape[0] - 2)
            cv2.rectangle(out, (box.x0, y - th - 2), (box.x0 + tw + 4, y + base - 1), BOX_COLOUR, -1)
            cv2.putText(out, label, (box.x0 + 2, y - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def encode_image(path_suffix: str, image: np.ndarray, *, quality: int = 90) -> bytes:
    """Encode RGB uint8 as .jpg/.png bytes (write them with Path.write_bytes: works for any path on Windows)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path_suffix.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(path_suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"cannot encode an image as {path_suffix}")
    return buf.tobytes()
