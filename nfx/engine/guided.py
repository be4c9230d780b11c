"""Guided style terms: each region's style statistics over the positions inside it (Gatys et
al., "Controlling Perceptual Factors in Neural Style Transfer", CVPR 2017, eq. 5-6).

A region's moments weight every position by the region's soft mask m (the mask brought to the
layer's grid by area averaging, so edges are soft and deep layers see mixed cells):

    G_r = Σₚ mₚ fₚ fₚᵀ / Σₚ mₚ,   μ_r = Σₚ mₚ fₚ / Σₚ mₚ

and, for the Wasserstein loss, the weighted covariance about μ_r. With m = 1 everywhere these
are the unguided moments exactly. Departures from the paper: the paper multiplies the
features by the mask before an ordinary Gram (so a soft edge counts m², and the Gram is
divided by all positions, not the region's); here the weights enter once and each region is
normalised by its own mass, so a region's term is its style's relative error as in an
unmasked run, and the objective weights each region by its share of the picture (a
one-colour mask gives the unmasked objective). Regions assigned `photo` have no style term.

The work is done on the positions with m > 0 only (gathered rows), so hard regions cost one
Gram in all, whatever their number; feathered edges add their band.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from nfx.engine.losses import AutogradContext, LayeredStyleLoss, Moments, feature_rows, tensor_sum
from nfx.layers import layer as vgg_layer


class RegionRows(NamedTuple):
    """The positions of (1, C, H, W) features a region weighs, and their weights."""

    positions: torch.Tensor | None  # (n_r,) row numbers; None: every position
    weight: torch.Tensor  # (n_r,) fp32, > 0
    total: torch.Tensor  # Σ weight, fp32 scalar


def region_rows(weight: torch.Tensor) -> RegionRows:
    """A region's rows from its (H, W) weight map at the features' grid."""
    flat = weight.reshape(-1).float()
    inside = flat > 0
    if bool(inside.all()):
        return RegionRows(None, flat, flat.sum())
    index = inside.nonzero().squeeze(1)
    chosen = flat.index_select(0, index)
    return RegionRows(index, chosen, chosen.sum())


def _gather(rows: torch.Tensor, region: RegionRows) -> torch.Tensor:
    return rows if region.positions is None else rows.index_select(0, region.positions)


def _wide(values: torch.Tensor) -> torch.Tensor:
    """fp32, or fp64 kept (bf16 products are rounded once, in fp32, as nfx.engine.losses)."""
    return values if values.dtype == torch.float64 else values.float()


def second_dtype(features: torch.Tensor) -> torch.dtype:
    return torch.float64 if features.dtype == torch.float64 else torch.float32


def weighted_moments(features: torch.Tensor, region: RegionRows, centred: bool
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(second, mean, centre) of (1, C, H, W) features over a region's weighted positions,
    fp32: the covariance about the weighted mean if `centred`, else the raw Gram; `centre`
    is what was subtracted (in the features' dtype; None if not centred). No gradient."""
    total = region.total.clamp_min(1e-12)
    with torch.no_grad(), torch.autocast(features.device.type, enabled=False):
        selected = _gather(feature_rows(features), region)
        centre = None
        if centred:
            mean = _wide(region.weight.to(features.dtype) @ selected) / total
            centre = mean.to(features.dtype)
            selected = selected - centre
        else:  # a Gram loss never reads it: Σ m f would cost another pass over the rows
            mean = torch.zeros(features.shape[1], dtype=second_dtype(features),
                               device=features.device)
        scaled = selected * region.weight.sqrt().to(features.dtype).unsqueeze(1)
        second = _wide(scaled.T @ scaled) / total
    return second, mean, centre


def add_feature_gradient(out_rows: torch.Tensor, features: torch.Tensor, region: RegionRows,
                         grad_second: torch.Tensor | None, grad_mean: torch.Tensor | None,
                         centre: torch.Tensor | None, total: torch.Tensor | float | None = None
                         ) -> None:
    """Add d(loss)/d(features) of one region's moments into `out_rows` (the rows of a
    gradient shaped like the features): mₚ [(S + Sᵀ)(fₚ − c) + g_μ] / Σm, with S the
    gradient of the second moment and c the centre (the covariance's gradient through μ
    vanishes: weighted centred features sum to zero). `total` is Σm over the whole image
    when the features are one block of it (nfx.engine.tiling); by default the region's."""
    if grad_second is None and grad_mean is None:
        return  # neither moment reached the loss
    total = region.total.clamp_min(1e-12) if total is None else total
    with torch.no_grad(), torch.autocast(features.device.type, enabled=False):
        selected = _gather(feature_rows(features), region)
        step = torch.zeros((), dtype=torch.float32, device=features.device)
        if grad_second is not None:
            weight = ((grad_second + grad_second.T) / total).to(features.dtype)
            step = (selected if centre is None else selected - centre) @ weight
        if grad_mean is not None:
            step = step + (grad_mean / total).to(features.dtype)
        step = (step * region.weight.to(features.dtype).unsqueeze(1)).to(out_rows.dtype)
        if region.positions is None:
            out_rows += step
        else:
            out_rows.index_add_(0, region.positions, step)


class _GuidedMoments(torch.autograd.Function):
    """Every region's (second, mean) of one layer's features, with one backward writing a
    single gradient (not one image-sized tensor per region)."""

    @staticmethod
    def forward(ctx: AutogradContext, features: torch.Tensor, centred: bool,
                *regions: Any) -> tuple[torch.Tensor, ...]:  # regions: RegionRows
        ctx.set_materialize_grads(False)  # a Gram loss never uses the means: no zero gradients
        out: list[torch.Tensor] = []
        centres = []
        for region in regions:
            second, mean, centre = weighted_moments(features, region, centred)
            out += [second, mean]
            centres.append(centre)
        ctx.save_for_backward(features)
        ctx.regions, ctx.centres = regions, centres
        return tuple(out)

    @staticmethod
    def backward(ctx: AutogradContext, *grads: torch.Tensor | None) -> Any:
        (features,) = ctx.saved_tensors
        gradient, rows = zero_gradient(features, features.dtype)
        for index, (region, centre) in enumerate(zip(ctx.regions, ctx.centres)):
            add_feature_gradient(rows, features, region, grads[2 * index],
                                 grads[2 * index + 1], centre)
        return (gradient, None, *[None] * len(ctx.regions))


def zero_gradient(features: torch.Tensor, dtype: torch.dtype
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """A zero (1, C, H, W) channels_last tensor shaped like `features`, and its (H*W, C) rows
    as a view: what gradients are added into, region by region. The tensor owns its memory
    (it is no view), so autograd adds the gradient from the layers above into it in place."""
    _, channels, height, width = features.shape
    gradient = torch.empty((1, channels, height, width), dtype=dtype, device=features.device,
                           memory_format=torch.channels_last).zero_()
    return gradient, gradient.permute(0, 2, 3, 1).view(-1, channels)


def grid(layer: str, height: int, width: int) -> tuple[int, int]:
    """A layer's feature grid for an image (VGG pools with ceil_mode)."""
    stride = vgg_layer(layer).stride
    return -(-height // stride), -(-width // stride)


class GuidedStyleLoss(nn.Module):
    """Σ over styled regions of share_r · (that region's style loss on its guided moments).

    `weights` (k, H, W) are the styled regions' soft masks at the image's size (the
    optimised image's pixels); `shares` each one's mean weight over the whole picture."""

    weights: torch.Tensor  # a buffer (registered in __init__)

    def __init__(self, losses: Sequence[LayeredStyleLoss], weights: torch.Tensor) -> None:
        super().__init__()
        assert losses and len(losses) == weights.shape[0], "one loss per styled region"
        self.losses = nn.ModuleList(losses)  # registered: they move with the module
        self._losses = list(losses)  # the same, typed
        self.register_buffer("weights", weights.float())
        self.shares = [float(w.mean()) for w in weights]
        first = losses[0]
        self.layers, self.centred = list(first.layers), first.centred
        self._grids: dict[tuple[str, int, int], torch.Tensor] = {}
        self._rows: dict[str, list[RegionRows]] = {}

    @property
    def weighted_layers(self) -> list[str]:
        return self._losses[0].weighted_layers

    def _grid(self, layer: str, height: int, width: int) -> torch.Tensor:
        """The styled regions' weights (k, h, w) at the layer's grid of an image."""
        key = (layer, height, width)
        if key not in self._grids:
            self._grids[key] = nn.functional.interpolate(
                self.weights.unsqueeze(0), size=grid(layer, height, width),
                mode="area")[0]
        return self._grids[key]

    def region_weights(self, layer: str, height: int, width: int) -> list[torch.Tensor | None]:
        """Each styled region's weight map at the layer's grid of an (height, width) image."""
        return list(self._grid(layer, height, width))

    def _region_rows(self, layer: str) -> list[RegionRows]:
        """The regions' rows at a layer of the whole image: found once, used every iteration."""
        if layer not in self._rows:
            height, width = self.weights.shape[1:]
            self._rows[layer] = [region_rows(w) for w in self._grid(layer, height, width)]
        return self._rows[layer]

    def from_region_moments(self, moments: dict[str, list[Moments]]) -> torch.Tensor:
        """The loss from each weighted layer's Moments, one per styled region."""
        return tensor_sum([
            share * loss.from_moments({layer: found[index] for layer, found in moments.items()})
            for index, (share, loss) in enumerate(zip(self.shares, self._losses))])

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        moments = {}
        for layer in self.weighted_layers:
            found = features[layer]
            regions = self._region_rows(layer)
            values = _GuidedMoments.apply(found, self.centred, *regions)
            moments[layer] = [Moments(values[2 * i], values[2 * i + 1] if self.centred else None)
                              for i in range(len(regions))]
        return self.from_region_moments(moments)
