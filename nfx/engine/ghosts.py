"""The ghost term: keeps the painting's objects from being rebuilt in the output (issue #20).

Why it is needed. A Gram matrix has no positions, but at the deepest style layer (relu5_1,
receptive field ~200 px) of a 512 px picture there are about as many positions as channels
(768 against 512). A close match of its Gram, F_outᵀF_out = F_pᵀF_p with F (positions ×
channels), then leaves F_out = Q F_p for an orthogonal Q, and since both are non-negative
(ReLU) Q is close to a permutation: the output's deep features become a shuffle of the
painting's, and whole parts of it (a face, a sail, the moon) come back. Lowering relu5_1's
weight loosens that for every painting, including those that copy nothing and need their
deep statistics matched to keep their look (docs/benchmarks.md, "Ghosts").

What it does. For each output position, the cosine similarity of its deepest-layer features
to the nearest of the painting's positions; the term is the mean over positions of
max(0, similarity − GHOST_SIMILARITY)². It is zero while the output only shares the
painting's manner, and pushes back only positions that have become near-duplicates of one
place in the painting, so the Gram match stays as close as the rest allows. It is the copy
score of nfx.engine.scores made smooth, with a lower threshold (0.5 against the score's 0.7)
so that copies are pushed well clear of what counts as one, not parked at its edge.

It is a sum over positions, like the content term, so a tiled evaluation adds each block's
share and gets the same value and gradient (nfx.engine.tiling). The nearest painting position
is found without gradient (the max's gradient flows through its argmax only).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

GHOST_SIMILARITY = 0.5  # cosine above which an output position is pushed away
MAX_PAINTING_POSITIONS = 16384  # a random subset beyond this (8192 px: 196k positions)
SEARCH_ENTRIES = 1 << 24  # similarities computed at once while searching (64 MB in fp32)


def _unit_rows(features: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) features as unit-length rows (positions, C), in fp32."""
    return F.normalize(features.float().flatten(2)[0].T, dim=1)


def painting_rows(features: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A painting's positions at the ghost layer as unit rows, at most
    MAX_PAINTING_POSITIONS of them (a fixed random subset: neighbouring positions' features
    overlap in most of their receptive field, so a copied part still finds a close one).
    Small enough to cache: the whole layer at 8192 px is 200 MB, its rows at most 16 MB."""
    rows = _unit_rows(features)
    if rows.shape[0] > MAX_PAINTING_POSITIONS:
        chosen = torch.randperm(rows.shape[0], generator=torch.Generator().manual_seed(0))
        rows = rows[chosen[:MAX_PAINTING_POSITIONS].to(rows.device)]
    return rows.to(dtype)


class GhostLoss(nn.Module):
    """mean over output positions of max(0, cos(f, nearest painting row) − threshold)²."""

    painting: torch.Tensor  # a buffer: painting_rows(...), (positions, channels)

    def __init__(self, layer: str, painting: torch.Tensor,
                 threshold: float = GHOST_SIMILARITY) -> None:
        super().__init__()
        self.layer, self.threshold = layer, threshold
        self.register_buffer("painting", painting)  # painting_rows of each painting, stacked

    def penalty(self, features: torch.Tensor) -> tuple[torch.Tensor, int]:
        """(the sum of the per-position penalties in fp32, the number of positions) of one
        image's or one block's features (1, C, H, W)."""
        with torch.autocast(features.device.type, enabled=False):
            rows = _unit_rows(features)
            with torch.no_grad():
                found = rows.to(self.painting.dtype)
                step = max(1, SEARCH_ENTRIES // self.painting.shape[0])
                nearest = torch.cat([(chunk @ self.painting.T).argmax(dim=1)
                                     for chunk in found.split(step)])
            similarity = (rows * self.painting[nearest].float()).sum(dim=1)
            return F.relu(similarity - self.threshold).square().sum(), rows.shape[0]

    def feature_gradient(self, features: torch.Tensor, scale: float) -> torch.Tensor:
        """scale · d(penalty sum)/d(features), for a tiled evaluation's block."""
        with torch.enable_grad():
            leaf = features.detach().requires_grad_(True)
            total, _ = self.penalty(leaf)
            (gradient,) = torch.autograd.grad(total * scale, leaf)
        return gradient

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        total, count = self.penalty(features[self.layer])
        return total / count
