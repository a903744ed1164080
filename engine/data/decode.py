"""Read any image file the line produces into RGB uint8, or raise one clear ImageReadError."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.errors import ImageReadError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MAX_PIXELS = 100_000_000  # refuse decompression bombs before decoding them


def is_image_file(path: str | os.PathLike) -> bool:
    """True when the file name has an image suffix we decode."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """Width and height the file header declares, without decoding pixels; None if PIL cannot tell."""
    import io

    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """Convert a decoded OpenCV array (grey, BGR, BGRA; 8/16-bit or float) to contiguous RGB uint8."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.nan_to_num(image.astype(np.float32))
        lo, hi = float(image.min()), float(image.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        image = ((image - lo) * scale).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


def decode_image(data: bytes, *, name: str = "image", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes to RGB uint8, applying EXIF orientation and a pixel limit."""
    if not data:
        raise ImageReadError(f"{name}: empty file (0 bytes)")
    size = _declared_size(data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise ImageReadError(
            f"{name}: declares {size[0]}x{size[1]} pixels, over the limit of {max_pixels:,}; not decoded"
        )
    buf = np.frombuffer(data, dtype=np.uint8)
    # ANYDEPTH|ANYCOLOR keeps 16-bit and greyscale yet, unlike UNCHANGED, honours EXIF orientation.
    image = cv2.imdecode(buf, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if image is None or image.size == 0:
        raise ImageReadError(f"{name}: not a readable image (corrupt, truncated or unsupported format)")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageReadError(f"{name}: image has no pixels")
    return to_rgb8(image)


def read_image(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as RGB uint8 HxWx3; any failure is an ImageReadError naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError(f"{path}: file not found") from None
    except PermissionError:
        raise ImageReadError(f"{path}: permission denied") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a folder, not an image") from None
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return decode_image(data, name=str(path), max_pixels=max_pixels)


def read_mask(path: str | os.PathLike, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a ground-truth mask as bool HxW (any non-zero pixel is defect), resized to shape if given."""
    image = read_image(path)
    mask = image.max(axis=2) > 127
    if shape is not None and mask.shape != tuple(shape):
        mask = cv2.resize(mask.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    return mask
