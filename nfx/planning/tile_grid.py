"""Where the blocks of a tiled evaluation lie: pure geometry, free of torch.

Blocks must start on the pooling grid (multiples of the deepest layer's stride) and carry a
margin of at least that layer's receptive-field reach, so that their interior features equal
the untiled ones (see nfx.engine.tiling). Kept apart from the evaluation so that the memory
plan and the app's time estimates can lay out blocks without loading torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nfx.layers import layer

if TYPE_CHECKING:  # for annotations only: this module must not load torch
    import torch


def grid(layers: Sequence[str]) -> tuple[int, int]:
    """(alignment, margin) in pixels for these layers: blocks start on multiples of the
    deepest stride, and carry a margin of at least the deepest reach, rounded up to it."""
    align = max(layer(name).stride for name in layers)
    reach = max(layer(name).reach for name in layers)
    return align, -(-reach // align) * align


def _spans(length: int, step: int, margin: int) -> list[tuple[slice, slice]]:
    return [(slice(max(0, start - margin), min(length, start + step + margin)),
             slice(start, min(length, start + step)))
            for start in range(0, length, step)]


@dataclass(frozen=True)
class Block:
    """Pixel rows and columns computed (`region`: the interior and its margins) and owned
    (`interior`, at most the settings' `tile` edge)."""

    region: tuple[slice, slice]
    interior: tuple[slice, slice]

    def local(self, stride: int) -> tuple[slice, slice]:
        """The interior in this block's feature coordinates at a layer of this stride."""
        def span(t: slice, i: slice) -> slice:
            return slice((i.start - t.start) // stride, -(-(i.stop - t.start) // stride))

        return span(self.region[0], self.interior[0]), span(self.region[1], self.interior[1])

    def world(self, stride: int) -> tuple[slice, slice]:
        """The interior in the whole image's feature coordinates."""
        def span(i: slice) -> slice:
            return slice(i.start // stride, -(-i.stop // stride))

        return span(self.interior[0]), span(self.interior[1])

    def pixels(self, image: torch.Tensor) -> torch.Tensor:
        """The block's computed region of an (…, H, W) image tensor."""
        return image[..., self.region[0], self.region[1]]


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _steps(height: int, width: int, tile: int, align: int, margin: int) -> tuple[int, int]:
    """Interior (rows, columns) per block: the fewest blocks (then the least recomputed margin)
    whose interior is at most tile² and computed region at most (tile + 2·margin)² in area,
    so that slabs across a side are used where they need fewer blocks than squares."""
    tile = _round_up(max(tile, align), align)
    room = (tile + 2 * margin) ** 2
    best = None
    for count in range(1, -(-height // align) + 1):
        rows = _round_up(-(-height // count), align)
        tall = min(height, rows + 2 * margin)
        cols = min(room // tall - 2 * margin, tile * tile // rows) // align * align
        if cols < align:
            continue
        cols = _round_up(-(-width // -(-width // cols)), align)  # even split of the width
        blocks = count * -(-width // cols)
        area = blocks * tall * min(width, cols + 2 * margin)
        if best is None or (blocks, area) < best[0]:
            best = ((blocks, area), (rows, cols))
    return best[1] if best else (align, align)


def blocks(height: int, width: int, tile: int, layers: Sequence[str]) -> list[Block]:
    """Blocks whose interiors cover the image, each computed region (interior and margins)
    at most the area of a square `tile` with its margins; interiors on the pooling grid."""
    align, margin = grid(layers)
    rows, cols = _steps(height, width, tile, align, margin)
    return [Block((outer_rows, outer_cols), (inner_rows, inner_cols))
            for outer_rows, inner_rows in _spans(height, rows, margin)
            for outer_cols, inner_cols in _spans(width, cols, margin)]


def largest_block(height: int, width: int, tile: int, layers: Sequence[str]) -> tuple[int, int]:
    """(height, width) of the largest computed region: what a tile's memory scales with."""
    regions = [(b.region[0].stop - b.region[0].start, b.region[1].stop - b.region[1].start)
               for b in blocks(height, width, tile, layers)]
    return max(regions, key=lambda r: r[0] * r[1])
