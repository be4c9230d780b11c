"""The optimisation of one scale: L-BFGS (or Adam) steps on the image's pixels."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from nfx.engine.objective import Objective
from nfx.engine.tiling import TiledObjective


@dataclass(frozen=True)
class Optimizer:
    """Which optimiser a scale runs, as its memory plan chose it (Adam where L-BFGS's history
    cannot fit), with its parameters."""

    name: str  # "lbfgs" | "adam"
    history: int  # L-BFGS pairs
    learning_rate: float  # Adam's, in 0-255 pixel units


def optimize(objective: Objective | TiledObjective, pixels: torch.Tensor, optimizer: Optimizer,
             steps: int, autocast: Callable[[], contextlib.AbstractContextManager],
             on_step: Callable[[int, dict[str, float]], None]) -> None:
    """`steps` iterations on `pixels` (a leaf tensor of 0-255 values, changed in place);
    after each, on_step(step, {content, style, tv, total}) (it may raise to stop)."""
    # The terms are relative errors of order 1, whose per-pixel gradients are tiny: scaled by
    # the number of values (the gain) they keep one size per pixel at any image size, and
    # L-BFGS's curvature pairs clear its yᵀs > 1e-10 test.
    gain = float(pixels.numel())
    lbfgs = optimizer.name == "lbfgs"
    if lbfgs:
        # L-BFGS's first step has an L1 norm of lr. At lr=1 it moved each value by ~1e-5 of a
        # grey level, below bf16's resolution: its curvature pair was noise, and on some
        # pairs the next step diverged. lr=numel moves values by about one grey level on
        # average; later steps use lr=1, i.e. the quasi-Newton step itself.
        step_rule: torch.optim.Optimizer = torch.optim.LBFGS(
            [pixels], lr=gain, max_iter=1, history_size=optimizer.history, tolerance_grad=0.0,
            tolerance_change=0.0)
    else:
        # Fused: one pass over the moments, none of the unfused step's image-sized
        # temporaries (two, 1.1 GiB at 8192×6144).
        step_rule = torch.optim.Adam([pixels], lr=optimizer.learning_rate,
                                     fused=pixels.device.type in ("cpu", "cuda"))
    record: dict[str, float] = {}

    def closure() -> torch.Tensor:
        step_rule.zero_grad(set_to_none=True)
        with autocast():
            loss, terms = objective(pixels)
        (loss * gain).backward()
        record.clear()
        record.update({name: float(value.detach()) for name, value in terms.items()})
        record["total"] = float(loss.detach())
        return loss.detach() * gain

    for step in range(steps):
        # both optimisers take a closure returning a tensor (L-BFGS float()s it); the stubs
        # say float
        step_rule.step(closure)  # type: ignore[arg-type]
        step_rule.param_groups[0]["lr"] = 1.0 if lbfgs else optimizer.learning_rate
        if not lbfgs:
            with torch.no_grad():
                pixels.clamp_(0, 255)
        on_step(step, dict(record))
