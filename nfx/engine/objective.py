"""The objective: named, weighted loss terms over one pass of the network.

As in pystiche's composable losses, each term is a module with its own weight; the objective
is their weighted sum, and it says which features the pass must produce. A tiled evaluation
(nfx.engine.tiling) works term by term through the same names.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nfx.engine.ghosts import GhostLoss
from nfx.engine.guided import GuidedStyleLoss
from nfx.engine.losses import ContentLoss, LayeredStyleLoss, TVLoss, tensor_sum, vgg_features
from nfx.layers import in_order

TERMS = ("content", "style", "tv", "ghost")


@dataclass(frozen=True)
class WeightedTerm:
    name: str  # one of TERMS
    weight: float
    loss: nn.Module | None  # None: a term left out (the ghost term at weight 0)


class Objective(nn.Module):
    """Σ weight · term; `forward` returns (total, {term: unweighted value})."""

    def __init__(self, model: nn.Module, pooling: str, content: ContentLoss,
                 style: LayeredStyleLoss | GuidedStyleLoss, weights: dict[str, float],
                 ghost: GhostLoss | None = None) -> None:
        super().__init__()
        self.model, self.pooling = model, pooling
        self.content, self.style, self.tv = content, style, TVLoss()  # registered modules
        self.ghost = ghost  # None where its weight is 0: the term is then 0, not computed
        self.terms = {name: WeightedTerm(name, weights[name], loss)
                      for name, loss in zip(TERMS, (content, style, self.tv, ghost))}
        self.layers = in_order([content.layer, *style.layers,
                                *([ghost.layer] if ghost is not None else [])])

    def weight(self, name: str) -> float:
        return self.terms[name].weight

    def total(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """The weighted sum of the terms' values."""
        return tensor_sum([self.terms[name].weight * value for name, value in terms.items()])

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        features = vgg_features(self.model, image, self.layers, self.pooling)
        terms = {"content": self.content(features), "style": self.style(features),
                 "tv": self.tv(image),
                 "ghost": (self.ghost(features) if self.ghost is not None
                           else image.new_zeros((), dtype=torch.float32))}
        return self.total(terms), terms
