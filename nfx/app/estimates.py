"""Run-time estimates for planned jobs, from this machine's measured `WorkModel`.

A worker measures its device when it starts (a few seconds of real runs at two sizes), and
finished jobs correct that model, so even the first batch on a new machine gets an estimate
near the truth. Kept apart from the planning so the estimate can change on its own.
"""

from __future__ import annotations

from nfx.app.context import store
from nfx.budget import work_factors
from nfx.images import size_for_long_edge
from nfx.labels import format_duration
from nfx.scales import WorkModel
from nfx.settings import Settings

# Before any worker has measured this machine: a mid-range CPU's VGG-19 L-BFGS cost, rough.
FALLBACK = WorkModel(per_megapixel_iteration=5.0, per_iteration=0.05, per_scale=0.5)
SPREAD = (0.75, 1.3)  # the range shown around an estimate


def work_model() -> tuple[WorkModel, bool]:
    """(model, measured): this machine's once a worker has measured it or a job has run."""
    measured = store().work_model()
    return (measured, True) if measured else (FALLBACK, False)


def job_seconds(content_size: tuple[int, int], settings: Settings, model: WorkModel) -> float:
    """A job's seconds, its large scales counted in tiles where this machine's memory budget
    will make the worker tile them (a 4096 px job's last scale costs about twice as much)."""
    return model.seconds(size_for_long_edge(content_size, settings.size), settings,
                         work_factors(settings))


def estimate_range(seconds: float) -> str:
    """'2 min 10 s – 3 min 45 s' around an estimate."""
    low, high = (seconds * factor for factor in SPREAD)
    return f"{format_duration(low)} – {format_duration(high)}"


def estimate_help(measured: bool) -> str:
    if measured:
        return ("From this machine's measured speed: a worker measures it when it starts, "
                "and finished jobs refine it.")
    return "A rough guess: no worker has measured this machine's speed yet."
