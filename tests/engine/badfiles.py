"""A corpus of awkward and broken image files, generated on demand, with what the engine must make of each.

`make_corpus(folder)` writes the files and returns {relative name: Expect}. Every case is either
inspected (ok=True: decoded to the given height x width) or must come back as exactly one ERROR whose
one-line reason matches `reason`. Cases that need the file system's cooperation (symlinks, non-UTF-8
names, permissions) are left out where it refuses, and `SKIPPED` says why.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

BOMB_SIDE = 50_000  # the decompression bomb declares 50000 x 50000 = 2.5 Gpx in a file of ~100 bytes
EXIF_STORED_SHAPE = (30, 40)  # rows, columns as stored in the EXIF-rotated JPEG
MARKER = (255, 0, 0)  # pure red block at the stored top-left corner; upright it is at the top-right
VANISHING = "vanishing.png"  # tests delete this one after listing and before reading


@dataclass(frozen=True)
class Expect:
    """What the engine must make of one corpus file."""

    ok: bool
    shape: tuple[int, int] | None = None  # decoded (height, width) for ok files
    reason: str = ""  # regex the one-line error must match, for error files
    note: str = ""  # why the file is in the corpus


SKIPPED: dict[str, str] = {}  # case -> why it was not created here (filled by make_corpus)


def texture(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A small RGB uint8 image with some structure (not constant, so the heatmap is not flat)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = (np.sin(xx / 5.0) + np.cos(yy / 7.0)) * 40 + 128
    image = np.stack([base, base * 0.8, base * 0.6], axis=-1) + rng.normal(0, 8, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def _encode(image: np.ndarray, ext: str) -> bytes:
    """RGB (or grey / 16-bit) array -> encoded bytes via OpenCV."""
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(ext, image)
    assert ok, ext
    return buf.tobytes()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = BOMB_SIDE, height: int = BOMB_SIDE) -> bytes:
    """A valid-looking PNG whose IHDR declares width x height RGB pixels; the data is a few zero bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def bomb_pam(width: int = BOMB_SIDE, height: int = BOMB_SIDE) -> bytes:
    """A netpbm PAM header declaring a huge image: PIL cannot read it, so OpenCV's own limit must refuse it."""
    return f"P7\nWIDTH {width}\nHEIGHT {height}\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n".encode() + b"\0" * 16


def exif_rotated_jpeg() -> bytes:
    """A JPEG stored 40 wide x 30 high with EXIF Orientation=6 (rotate 90 degrees clockwise to view)."""
    stored = np.full((*EXIF_STORED_SHAPE, 3), 40, np.uint8)
    stored[:8, :8] = MARKER
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(stored).save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    return buf.getvalue()


def cmyk_jpeg() -> bytes:
    """A CMYK JPEG (as print workflows and some scanners write) of pure red: C=0 M=255 Y=255 K=0."""
    buf = io.BytesIO()
    Image.new("CMYK", (36, 28), (0, 255, 255, 0)).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def _symlink(target: str | Path, link: Path, name: str) -> bool:
    try:
        os.symlink(target, link)
        return True
    except (OSError, NotImplementedError) as exc:
        SKIPPED[name] = f"symlinks unavailable here ({exc})"
        return False


def make_corpus(folder: str | os.PathLike, *, unreadable: bool = True) -> dict[str, Expect]:
    """Write the bad-input corpus into folder (created if needed); {name relative to folder: Expect}."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    SKIPPED.clear()
    cases: dict[str, Expect] = {}

    def put(name: str, data: bytes, expect: Expect) -> None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        cases[name] = expect

    good = texture()
    jpeg = _encode(good, ".jpg")
    png = _encode(good, ".png")

    # -- files that must be inspected ---------------------------------------------------------
    put("good.png", png, Expect(True, (48, 64), note="plain RGB PNG"))
    put("good_jpeg.jpg", jpeg, Expect(True, (48, 64), note="plain JPEG"))
    put("tiny_1x1.png", _encode(np.full((1, 1, 3), 200, np.uint8), ".png"), Expect(True, (1, 1), note="1x1 image"))
    put("grey.png", _encode(good[:, :, 0], ".png"), Expect(True, (48, 64), note="greyscale PNG"))
    deep = good[:, :, 0].astype(np.uint16) * 257
    put("deep16.png", _encode(deep, ".png"), Expect(True, (48, 64), note="16-bit greyscale PNG"))
    deep_rgb = cv2.cvtColor(good, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257
    ok, buf = cv2.imencode(".png", deep_rgb)
    put("deep16_rgb.png", buf.tobytes(), Expect(True, (48, 64), note="16-bit RGB PNG"))
    rgba = cv2.cvtColor(good, cv2.COLOR_RGB2BGRA)
    rgba[:, :, 3] = 0  # fully transparent: the colour must still be used, not black
    ok, buf = cv2.imencode(".png", rgba)
    put("rgba.png", buf.tobytes(), Expect(True, (48, 64), note="RGBA PNG, fully transparent"))
    put("cmyk.jpg", cmyk_jpeg(), Expect(True, (28, 36), note="CMYK JPEG"))
    put("exif_rot6.jpg", exif_rotated_jpeg(), Expect(True, EXIF_STORED_SHAPE[::-1], note="EXIF Orientation=6"))
    put("wrong_suffix.png", jpeg, Expect(True, (48, 64), note="a JPEG named .png"))
    put("Ünïcödé 日本 名前.png", png, Expect(True, (48, 64), note="non-ASCII file name"))
    put("sub dir with spaces/a b  c.jpg", jpeg, Expect(True, (48, 64), note="spaces in folder and file name"))
    put(VANISHING, png, Expect(False, reason="file not found", note="deleted between listing and reading"))

    # -- files that must be one ERROR each -----------------------------------------------------
    put("zero.jpg", b"", Expect(False, reason="empty file", note="zero bytes"))
    put("truncated_jpeg.jpg", jpeg[: len(jpeg) // 2], Expect(False, reason="not a readable image", note="JPEG cut in half"))
    put("truncated.png", png[: len(png) // 2], Expect(False, reason="not a readable image", note="PNG cut in half"))
    put("png_header_only.png", png[:33], Expect(False, reason="not a readable image", note="PNG signature + IHDR only"))
    noise = np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    put("random.png", noise, Expect(False, reason="not a readable image", note="random bytes named .png"))
    put("text.jpg", b"this is a text file, not a JPEG\n" * 20, Expect(False, reason="not a readable image", note="text named .jpg"))
    put("bomb.png", bomb_png(), Expect(False, reason=r"declares .*over the limit.*not decoded", note="IHDR declares 50000x50000"))
    put("bomb_pam.png", bomb_pam(), Expect(False, reason="not decoded", note="PAM header PIL cannot read, declares 50000x50000"))
    (root / "folder.png").mkdir(exist_ok=True)  # a folder with an image suffix: never listed as a file

    if _symlink("loop_b.png", root / "loop_a.png", "loop_a.png") and _symlink("loop_a.png", root / "loop_b.png", "loop_b.png"):
        for name in ("loop_a.png", "loop_b.png"):
            cases[name] = Expect(False, reason="cannot be read", note="symlink loop (ELOOP)")
    if _symlink("nowhere/missing.png", root / "dangling.png", "dangling.png"):
        cases["dangling.png"] = Expect(False, reason="file not found", note="dangling symlink")
    loop_dir = root / "loop dir"
    loop_dir.mkdir(exist_ok=True)
    _symlink("..", loop_dir / "up", "loop dir/up")  # a folder link back up: listing must not follow it forever

    try:  # a name that is not valid UTF-8, as files copied from old cameras or Windows shares can have
        raw = os.path.join(os.fsencode(root), b"caf\xe9 latin1.png")
        with open(raw, "wb") as f:
            f.write(png)
        cases[os.fsdecode(b"caf\xe9 latin1.png")] = Expect(True, (48, 64), note="file name not valid UTF-8")
    except (OSError, UnicodeError, ValueError) as exc:
        SKIPPED["caf\\xe9 latin1.png"] = f"the file system refuses non-UTF-8 names ({exc})"

    if unreadable:
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            SKIPPED["locked.png"] = "running as root, which reads files whatever their permissions"
        else:
            put("locked.png", png, Expect(False, reason="permission denied", note="chmod 000"))
            (root / "locked.png").chmod(0)
    return cases


def unlock(folder: str | os.PathLike) -> None:
    """Give the chmod-000 file its permissions back, so the test's temporary folder can be removed."""
    locked = Path(folder) / "locked.png"
    if locked.exists():
        locked.chmod(0o644)
