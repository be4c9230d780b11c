"""The coarse-to-fine schedule: the sizes a run optimises at, and the work they add up to.

Free of torch, so that the store and the app can estimate run times without loading the
engine.
"""

from __future__ import annotations

from nfx.images import size_for_long_edge
from nfx.settings import Settings

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


def megapixel_iterations(final: tuple[int, int], settings: Settings) -> float:
    """The work of a run, in megapixels x iterations over its scales: what time estimates
    scale with."""
    return sum(w * h / 1e6 * settings.steps for w, h in scale_sizes(final, settings.scales))
