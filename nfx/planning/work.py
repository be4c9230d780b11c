"""How long runs take on a device: the model behind every time estimate.

Free of torch, so that the store and the app can estimate run times without loading the
engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nfx.planning.pyramid import scale_sizes
from nfx.settings import Settings

# Seconds per megapixel of a feed-forward render (bench/bench_feedforward.py: about 0.12 s for
# a 512 px picture on this project's 2-core CPU); not calibrated per machine: it is a second.
FEEDFORWARD_PER_MEGAPIXEL = 0.8


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
        (nfx.planning.budget.work_factors)."""
        if settings.method == "feedforward":
            return FEEDFORWARD_PER_MEGAPIXEL * final[0] * final[1] / 1e6
        return sum(settings.steps * (self.per_megapixel_iteration * w * h / 1e6
                                     * (tiling((w, h)) if tiling else 1.0)
                                     + self.per_iteration) + self.per_scale
                   for w, h in scale_sizes(final, settings.scales))

    def scaled(self, factor: float) -> "WorkModel":
        return WorkModel(self.per_megapixel_iteration * factor, self.per_iteration * factor,
                         self.per_scale * factor)
