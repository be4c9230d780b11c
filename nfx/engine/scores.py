"""Judges of a finished image that no loss optimises.

`copy_score` counts ghosts: objects of the painting copied whole into the output (issue #20).
A Gram matrix carries no positions, yet at relu5_1 (receptive field ~200 px, the size of a face
at 512 px) it carries enough to rebuild object parts; an output that has rebuilt them has
positions whose deep features are near-duplicates of some position of the painting. A
stylised photo shares the painting's manner, which moves features only part of the way there.
"""

from __future__ import annotations

import torch

COPY_LAYER = "relu5_1"
COPY_SIMILARITY = 0.7  # cosine above which an output position counts as a copy


def copy_score(output: torch.Tensor, painting: torch.Tensor,
               threshold: float = COPY_SIMILARITY) -> float:
    """The fraction of the output's positions whose features (1, C, H, W) have a cosine
    similarity above `threshold` with their nearest position of the painting's features.

    0 for a photo; near 1 for a crop of the painting. The painting should be seen at the
    output's long edge, as the style distance sees it, so that object parts are the same size
    in both."""
    def positions(features: torch.Tensor) -> torch.Tensor:
        flat = features.detach().float().flatten(2)[0].T  # (positions, channels)
        return torch.nn.functional.normalize(flat, dim=1)

    out, ref = positions(output), positions(painting)
    nearest = torch.cat([(chunk @ ref.T).amax(dim=1) for chunk in out.split(4096)])
    return float((nearest > threshold).float().mean())
