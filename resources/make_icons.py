"""Render visinspect.svg to the PNG and multi-size ICO the app and shortcuts use: python resources/make_icons.py"""

from __future__ import annotations

import io
import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PIL import Image  # noqa: E402
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

HERE = Path(__file__).resolve().parent
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def render(svg: Path, size: int) -> Image.Image:
    """The SVG drawn at size x size with antialiasing, as a PIL RGBA image."""
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    QSvgRenderer(str(svg)).render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return Image.open(io.BytesIO(bytes(data))).convert("RGBA")


def main() -> None:
    _app = QGuiApplication.instance() or QGuiApplication([])
    svg = HERE / "visinspect.svg"
    render(svg, 256).save(HERE / "visinspect.png")
    big = render(svg, 256)
    big.save(HERE / "visinspect.ico", sizes=[(s, s) for s in ICO_SIZES])
    print(f"wrote {HERE / 'visinspect.png'} and {HERE / 'visinspect.ico'}")


if __name__ == "__main__":
    main()
