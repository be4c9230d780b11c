"""Run-time estimates for planned jobs, from this machine's measured `WorkModel`.

A worker measures its device when it starts (a few seconds of real runs at two sizes), and
finished jobs correct that model, so even the first batch on a new machine gets an estimate
near the truth. While the first worker is still measuring, the page says so rather than show
a guess that could be ten times off. Kept apart from the planning so the estimate can change
on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nfx.app.context import queue
from nfx.queue.jobs import DEFAULT_POLL_SECONDS
from nfx.planning.budget import work_factors
from nfx.images import size_for_long_edge
from nfx.labels import format_span
from nfx.planning.work import WorkModel
from nfx.settings import Settings

if TYPE_CHECKING:  # annotations only: this module itself needs no pandas
    import pandas as pd

SPREAD = (0.75, 1.3)  # the range shown around an estimate
# A job's time outside the engine: claiming it, loading its pictures, encoding and storing
# the PNG and thumbnail, the progress writes (bench/bench_estimate.py prints it)
JOB_OVERHEAD = 0.3
ESTIMATED = ("From this machine's measured speed: a worker measures it when it starts, and "
             "finished jobs refine it.")
MEASURING = ("The worker measures this machine's speed when it starts (a few seconds, once "
             "per machine); the estimate follows. A guess before that was up to 9x off.")


@dataclass(frozen=True)
class Estimate:
    """What the New batch page shows as the batch's time."""

    seconds: float | None  # None while the first worker measures this machine
    text: str
    help: str


def work_model() -> WorkModel | None:
    """This machine's model once a worker has measured it or a job has run, else None."""
    return queue().work_model()


def job_seconds(content_size: tuple[int, int], settings: Settings, model: WorkModel) -> float:
    """A job's seconds, its large scales counted in tiles where this machine's memory budget
    will make the worker tile them (a 4096 px job's last scale costs about twice as much),
    and the queue's own time for it."""
    return model.seconds(size_for_long_edge(content_size, settings.size), settings,
                         work_factors(settings)) + JOB_OVERHEAD


def batch_estimate(plan: pd.DataFrame) -> Estimate:
    """The batch's time from its plan (nfx.app.new_batch.plan_frame), or "measuring"."""
    seconds = plan["estimate (s)"]
    if not len(plan):
        return Estimate(None, "—", ESTIMATED)
    if seconds.isna().any():
        return Estimate(None, "measuring…", MEASURING)
    total = float(seconds.sum()) + DEFAULT_POLL_SECONDS / 2  # until an idle worker looks
    return Estimate(total, estimate_range(total), ESTIMATED)


def estimate_range(seconds: float) -> str:
    """'2–4 min' around an estimate: short enough for its box."""
    low, high = (seconds * factor for factor in SPREAD)
    return format_span(low, high)



