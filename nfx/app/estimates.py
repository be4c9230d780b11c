"""Run-time estimates for planned jobs: megapixel-iterations times a measured rate.

Kept apart from the planning so the estimate's calibration can change on its own.
"""

from __future__ import annotations

from nfx.app.context import store
from nfx.images import size_for_long_edge
from nfx.scales import megapixel_iterations
from nfx.settings import Settings

# Before anything has run on this machine: a mid-range CPU's VGG-19 L-BFGS cost, rough.
FALLBACK_SECONDS_PER_MEGAPIXEL_ITERATION = 3.0


def seconds_per_megapixel_iteration() -> tuple[float, bool]:
    """(rate, measured): measured on this machine once anything has run, else a fallback."""
    measured = store().seconds_per_megapixel_iteration()
    if measured:
        return measured, True
    return FALLBACK_SECONDS_PER_MEGAPIXEL_ITERATION, False


def job_seconds(content_size: tuple[int, int], settings: Settings, rate: float) -> float:
    return rate * megapixel_iterations(size_for_long_edge(content_size, settings.size), settings)
