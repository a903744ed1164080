"""Read any image file the line produces into RGB uint8, or raise one clear ImageReadError."""
from __future__ import annotations

import io
import os
import re
import stat
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.errors import ImageReadError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MAX_PIXELS = 100_000_000  # refuse decompression bombs before decoding them
MAX_FILE_BYTES = 1 << 30  # refuse to read more than this into memory (a mislabelled video, a device file)
EXIF_ORIENTATION = 0x0112

# PIL warns (on stderr) from 89 Mpx; the pixel limit above is enforced here with a clear error instead.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


def is_image_file(path: str | os.PathLike) -> bool:
    """True when the file name has an image suffix we decode."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _declared_size(data: bytes) -> tuple[int, int] | int | None:
    """Width and height the file header declares, without decoding pixels; None if PIL cannot tell.

    A header PIL itself refuses as a decompression bomb gives the declared pixel count (an int), or -1
    when its message does not say.
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Image.DecompressionBombError as exc:
        found = _BOMB_PIXELS.search(str(exc))
        return int(found.group(1)) if found else -1
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    except Exception:  # noqa: BLE001 - a malformed header must not escape a probe; cv2 decides below
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
    if image.shape[2] in (1, 2):  # grey, or grey + alpha
        return cv2.cvtColor(np.ascontiguousarray(image[:, :, 0]), cv2.COLOR_GRAY2RGB)
    if image.shape[2] > 4:  # multispectral TIFF: keep the first three (BGR) channels
        image = np.ascontiguousarray(image[:, :, :3])
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


def decode_image(data: bytes, *, name: str = "image", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes to RGB uint8, applying EXIF orientation and a pixel limit."""
    if not data:
        raise ImageReadError(f"{name}: empty file (0 bytes)")
    size = _declared_size(data)
    if isinstance(size, int) and max_pixels < 2 * (Image.MAX_IMAGE_PIXELS or 0):
        # PIL refused the header as a bomb (over 2 x its own limit), which is over ours too.
        declared = f"{size:,} pixels" if size > 0 else "more pixels than PIL allows"
        raise ImageReadError(f"{name}: declares {declared}, over the limit of {max_pixels:,}; not decoded")
    if isinstance(size, tuple) and size[0] * size[1] > max_pixels:
        raise ImageReadError(
            f"{name}: declares {size[0]}x{size[1]} pixels, over the limit of {max_pixels:,}; not decoded"
        )
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        # ANYDEPTH|ANYCOLOR keeps 16-bit and greyscale yet, unlike UNCHANGED, honours EXIF orientation.
        image = cv2.imdecode(buf, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    except cv2.error as exc:  # e.g. OpenCV's own pixel limit on a header PIL cannot read
        raise ImageReadError(f"{name}: not a readable image ({_cv_reason(exc)})") from None
    except MemoryError:
        raise ImageReadError(f"{name}: too large to decode in memory") from None
    if image is None or image.size == 0:
        raise ImageReadError(f"{name}: not a readable image (corrupt, truncated or unsupported format)")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageReadError(f"{name}: image has no pixels")
    try:
        return to_rgb8(image)
    except cv2.error as exc:
        raise ImageReadError(f"{name}: unsupported pixel layout {image.dtype} {image.shape} ({_cv_reason(exc)})") from None


def _cv_reason(exc: cv2.error) -> str:
    """The one-line gist of an OpenCV error (its message spans lines and names source files)."""
    text = " ".join(str(getattr(exc, "err", "") or exc).split())
    if "CV_IO_MAX_IMAGE_PIXELS" in text:
        return "declares more pixels than the decoder allows; not decoded"
    return text[:200] or "decoder error"


def read_image(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as RGB uint8 HxWx3; any failure is an ImageReadError naming the file."""
    return decode_image(read_bytes(path), name=str(path), max_pixels=max_pixels)


def plain_jpeg(data: bytes) -> bool:
    """True for JPEG bytes that decode to their pixels as stored (no EXIF rotation): they can be saved as they are."""
    if data[:3] != b"\xff\xd8\xff":
        return False
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.getexif().get(EXIF_ORIENTATION, 1) == 1
    except Exception:  # noqa: BLE001 - a header PIL cannot parse: not passed through, the pixels are re-encoded
        return False


def read_bytes(path: str | os.PathLike) -> bytes:
    """An image file's bytes, refusing what is not a regular file or is too large; failures are ImageReadErrors."""
    path = Path(path)
    try:
        info = path.stat()  # follows links: a dangling link is not found, a link loop an OSError
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(info.st_mode):
            raise ImageReadError(f"{path}: not a regular file (device, pipe or socket); not read")
        if info.st_size > MAX_FILE_BYTES:
            raise ImageReadError(f"{path}: {info.st_size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit; not read")
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise ImageReadError(f"{path}: grew past the {MAX_FILE_BYTES:,}-byte limit while being read; not read")
    except FileNotFoundError:
        raise ImageReadError(f"{path}: file not found") from None
    except PermissionError:
        raise ImageReadError(f"{path}: permission denied") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a folder, not an image") from None
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return data


def read_mask(path: str | os.PathLike, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a ground-truth mask as bool HxW (any non-zero pixel is defect), resized to shape if given."""
    image = read_image(path)
    mask = image.max(axis=2) > 127
    if shape is not None and mask.shape != tuple(shape):
        mask = cv2.resize(mask.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    return mask
