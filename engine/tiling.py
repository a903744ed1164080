"""The tile grid of tiled inspection (ModelMeta.tile): plain arithmetic, importable without torch (training options)."""
from __future__ import annotations

from dataclasses import dataclass

MIN_TILE = 32


@dataclass(frozen=True)
class Tile:
    """One tile's place in its image, in image pixels."""

    y: int
    x: int
    height: int
    width: int


def check_tiling(tile: int, overlap: int) -> None:
    """Raise ValueError naming the allowed values unless tile and overlap make a grid."""
    if tile < MIN_TILE:
        raise ValueError(f"tile side must be at least {MIN_TILE} px; got {tile}")
    if not 0 <= overlap <= tile // 2:
        raise ValueError(f"tile overlap must be within 0..{tile // 2} px (half the tile side); got {overlap}")


def axis_starts(length: int, size: int, overlap: int) -> list[int]:
    """Tile starts along one axis: every size - overlap pixels, the last one flush with the end."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size, size - overlap))
    return starts + [length - size]


def tile_grid(height: int, width: int, size: int, overlap: int) -> tuple[Tile, ...]:
    """Tiles covering an image, row by row; a side shorter than the tile is one tile as long as that side."""
    check_tiling(size, overlap)
    th, tw = min(size, height), min(size, width)
    return tuple(
        Tile(y, x, th, tw) for y in axis_starts(height, size, overlap) for x in axis_starts(width, size, overlap)
    )
