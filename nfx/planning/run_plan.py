"""A run's plan, scale by scale: the pyramid's sizes, how each fits the memory budget, and
its share of the run's estimated cost. Pure arithmetic (as pystiche keeps its image pyramid
apart from the optimisation loop): the engine runs it, and the same numbers say how far along
a run is (`Progress.fraction`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nfx.planning import budget
from nfx.planning.pyramid import scale_sizes
from nfx.settings import Settings

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ScalePlan:
    """One scale of a run."""

    index: int  # 0-based
    count: int  # scales in the run
    size: tuple[int, int]
    memory: budget.MemoryPlan  # untiled or in tiles; L-BFGS, or Adam where it cannot fit
    before: float  # estimated cost of the scales before this one
    per_step: float  # of one iteration at this scale (megapixels × the tiling's overhead)
    total: float  # of the whole run

    def fraction(self, steps_done: int) -> float:
        """The share of the run's cost done after `steps_done` iterations of this scale."""
        return (self.before + steps_done * self.per_step) / self.total


def plan_scales(final: tuple[int, int], s: Settings, precision: str,
                device: torch.device | None) -> list[ScalePlan]:
    """The plan of a run to `final` (width, height); InputError (one line) before anything is
    allocated if its largest scale cannot fit the memory budget."""
    sizes = scale_sizes(final, s.scales)
    memory = budget.plan_run(sizes, s, precision, device)
    costs = [w * h * budget.work_factor(w, h, s, memory[(w, h)].tile) for w, h in sizes]
    total = s.steps * sum(costs)
    return [ScalePlan(index, len(sizes), size, memory[size], s.steps * sum(costs[:index]),
                      costs[index], total) for index, size in enumerate(sizes)]
