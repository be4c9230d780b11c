"""The coarse-to-fine schedule: the sizes a run optimises at, and the time they take.

Free of torch, so that the store and the app can estimate run times without loading the
engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class WorkModel:
    """How long the engine takes on one device: seconds per megapixel-iteration (the network's
    passes), per iteration (what does not grow with the image: the optimiser step, progress,
    small kernels) and per scale (targets, setup). Measured by `Engine.calibrate` when a worker
    starts, so the first estimate on a new machine is already near the truth; small images
    are dominated by the fixed costs, which megapixels alone would miss."""

    per_megapixel_iteration: float
    per_iteration: float = 0.0
    per_scale: float = 0.0

    def seconds(self, final: tuple[int, int], settings: Settings,
                 tiling: Callable[[tuple[int, int]], float] | None = None) -> float:
        """A run's seconds; `tiling` gives each scale's time factor where it runs in tiles
        (nfx.budget.work_factors)."""
        return sum(settings.steps * (self.per_megapixel_iteration * w * h / 1e6
                                     * (tiling((w, h)) if tiling else 1.0)
                                     + self.per_iteration) + self.per_scale
                   for w, h in scale_sizes(final, settings.scales))

    def scaled(self, factor: float) -> "WorkModel":
        return WorkModel(self.per_megapixel_iteration * factor, self.per_iteration * factor,
                         self.per_scale * factor)
