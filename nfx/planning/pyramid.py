"""The coarse-to-fine pyramid: the sizes a run optimises at, one per scale.

A "scale" is one level of this pyramid, and nothing else, everywhere in NFX.
"""

from __future__ import annotations

from nfx.images import size_for_long_edge

MIN_SCALE_EDGE = 32  # coarse scales smaller than this (long edge) teach nothing
MIN_SCALE_SHORT_EDGE = 16  # ... nor those whose short edge is below this


def scale_sizes(final: tuple[int, int], scales: int) -> list[tuple[int, int]]:
    """Sizes from coarse to fine, each half the next; coarse ones too small to help are left
    out (the final size is always kept)."""
    sizes = []
    for index in range(scales - 1, 0, -1):
        size = size_for_long_edge(final, round(max(final) / 2 ** index))
        if max(size) >= MIN_SCALE_EDGE and min(size) >= MIN_SCALE_SHORT_EDGE:
            sizes.append(size)
    return sizes + [final]
