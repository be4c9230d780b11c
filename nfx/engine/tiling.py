"""Exact tiled evaluation of the objective and its gradient: memory set by a tile, not the image.

The method of Galerne, Raad, Lezama & Morel, "Scaling Painting Style Transfer" (2024), who
observe that the style loss depends on the image only through averages over positions (the
Gram; for the Wasserstein loss also the mean), and that its gradient at a position depends only
on that position's features and those global averages. So one iteration can run block by block
and still give the untiled loss and gradient:

1. pass 1, without gradient: per block, the features of the block's interior add their share
   to each style layer's Moments and to the content error. Summed, they give the loss, and
   autograd on the small (C×C) problem gives dLoss/dMoments;
2. pass 2: per block, the features are recomputed with gradient and the closed-form feature
   gradient (a linear map of dLoss/dMoments, plus the content error's own) is
   backpropagated; the block's pixel gradient is added into the image's.
The last block of pass 1 is computed with gradient and kept for pass 2, which saves one
block's forward per iteration at no extra peak memory.

A block's features equal the untiled ones where the deepest layer's receptive field stays
inside the block: blocks carry a margin at least that reach (70 px for relu5_1), and start on
the pooling grid (multiples of the deepest layer's stride, 16 px), so that their pooling
windows are the untiled ones. Only interior features are used; interiors partition each
layer's positions, so every feature's gradient is counted once. Pixels in the margin get the
gradient of the interior features they feed, so the whole block's pixel gradient is added.

The Wasserstein loss needs the covariance: each block's features are centred at the block's
own mean (accurate in bf16) and blocks are combined in fp64 (the parallel variance formula),
never as G − μμᵀ of rounded Grams. The content term is local and tiles like the features; total
variation is computed on the whole pixel image (three channels, small beside any activation).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from nfx.engine.guided import (RegionRows, add_feature_gradient, region_rows,
                               weighted_moments, zero_gradient)
from nfx.engine.losses import AutogradContext, Moments, gram, vgg_features
from nfx.engine.objective import Objective
from nfx.layers import layer as vgg_layer
from nfx.planning.tile_grid import Block, blocks


def interior(features: torch.Tensor, block: Block, layer: str) -> torch.Tensor:
    rows, cols = block.local(vgg_layer(layer).stride)
    return features[..., rows, cols]


class _MomentSums:
    """A layer's first and second moments summed over blocks, in fp64."""

    def __init__(self) -> None:
        self.count: float = 0
        self.first: torch.Tensor | float = 0.0  # a tensor once a block is added
        self.second: torch.Tensor | float = 0.0

    def add(self, features: torch.Tensor, centred: bool, region: RegionRows | None = None
            ) -> None:
        """Add a block's features; `region`: a region's weighted positions among them
        (nfx.engine.guided), None: every position weighs 1."""
        if region is not None:
            if region.weight.numel() == 0:
                return
            second, mean, _ = weighted_moments(features, region, centred)
            if centred:
                second = second + torch.outer(mean, mean)
            self.count += float(region.total)
            self.first = self.first + float(region.total) * mean.double()
            self.second = self.second + float(region.total) * second.double()
            return
        count = features.shape[2] * features.shape[3]
        with torch.autocast(features.device.type, enabled=False):
            mean = features.mean((0, 2, 3), dtype=torch.float32)
            if centred:  # the block's covariance, then its second moment in fp64
                second = (gram(features - mean.to(features.dtype).view(1, -1, 1, 1)).double()
                          + torch.outer(mean, mean).double())
            else:
                second = gram(features).double()
        self.count += count
        self.first = self.first + count * mean.double()
        self.second = self.second + count * second

    def _averages(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(first, second) moments averaged over the positions of every block added."""
        assert isinstance(self.first, torch.Tensor) and isinstance(self.second, torch.Tensor), \
            "every image has at least one block, every region weight somewhere"
        return self.first / self.count, self.second / self.count

    def moments(self, centred: bool) -> Moments:
        mean, second = self._averages()
        if centred:
            return Moments((second - torch.outer(mean, mean)).float(), mean.float())
        return Moments(second.float(), None)

    def raw(self) -> Moments:
        """The raw moments (Gram and mean): a style target, as nfx.engine.losses.raw_moments."""
        return Moments(self.moments(False).second, self._averages()[0].float())


def _interiors(model: nn.Module, image: torch.Tensor, tiles: list[Block],
               layers: Sequence[str], pooling: str
               ) -> Iterator[tuple[Block, dict[str, torch.Tensor]]]:
    for block in tiles:
        features = vgg_features(model, block.pixels(image), layers, pooling)
        yield block, {layer: interior(features[layer], block, layer) for layer in layers}


def raw_moments(model: nn.Module, image: torch.Tensor, layers: Sequence[str], pooling: str,
                tile: int) -> dict[str, Moments]:
    """nfx.engine.losses.raw_moments of each layer, computed block by block (no gradient)."""
    sums = {layer: _MomentSums() for layer in layers}
    height, width = image.shape[2:]
    with torch.no_grad():
        for _, features in _interiors(model, image, blocks(height, width, tile, layers),
                                      layers, pooling):
            for layer in layers:
                sums[layer].add(features[layer], centred=False)
    return {layer: sums[layer].raw() for layer in layers}


def features(model: nn.Module, image: torch.Tensor, layer: str, pooling: str,
             tile: int) -> torch.Tensor:
    """One layer's features of the whole image, in the precision they are computed in,
    assembled from block interiors."""
    out = None
    height, width = image.shape[2:]
    with torch.no_grad():
        for block, found in _interiors(model, image, blocks(height, width, tile, [layer]),
                                       [layer], pooling):
            if out is None:
                stride = vgg_layer(layer).stride
                size = [-(-n // stride) for n in image.shape[2:]]
                out = image.new_zeros((1, found[layer].shape[1], *size),
                                      dtype=found[layer].dtype)
            rows, cols = block.world(vgg_layer(layer).stride)
            out[..., rows, cols] = found[layer]
    assert out is not None, "every image has at least one block"
    return out


class _Known(torch.autograd.Function):
    """A value whose gradient with respect to `image` is already known.

    The gradient is handed over, scaled in place, not copied: it is as large as the image
    (0.56 GiB at 8192×6144). So the backward can run once only, as the engine's does."""

    @staticmethod
    def forward(ctx: AutogradContext, image: torch.Tensor, value: torch.Tensor,
                gradient: torch.Tensor) -> torch.Tensor:
        ctx.gradient = gradient
        return value.clone()

    @staticmethod
    def backward(ctx: AutogradContext, grad: torch.Tensor
                 ) -> tuple[torch.Tensor, None, None]:
        gradient, ctx.gradient = ctx.gradient, None
        if gradient is None:
            raise RuntimeError("a tiled objective's gradient can be taken once only")
        return gradient.mul_(grad), None, None


class TiledObjective(nn.Module):
    """An Objective evaluated block by block: the same (total, terms) and, through autograd,
    the same gradient, with peak memory set by `tile` (interior edge in pixels)."""

    def __init__(self, objective: Objective, tile: int) -> None:
        super().__init__()
        self.objective, self.tile = objective, tile
        # a guided loss's regions in each block, found once (the blocks stay put)
        self._block_rows: dict[tuple[str, int, tuple[int, int, int, int]], RegionRows] = {}

    def _rows(self, layer: str, index: int, block: Block, weight: torch.Tensor) -> RegionRows:
        """Region `index`'s weighted positions among a block's interior features."""
        rows, cols = block.world(vgg_layer(layer).stride)
        key = (layer, index, (rows.start, rows.stop, cols.start, cols.stop))
        if key not in self._block_rows:
            self._block_rows[key] = region_rows(weight[rows, cols])
        return self._block_rows[key]

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        o = self.objective
        tiles = blocks(image.shape[2], image.shape[3], self.tile, o.layers)
        want_grad = torch.is_grad_enabled() and image.requires_grad
        source, image = image, image.detach()
        style_layers = o.style.weighted_layers
        content = o.content
        height, width = image.shape[2:]
        # each layer's regions' weights at its grid (one None region: unguided)
        guides = {layer: o.style.region_weights(layer, height, width) for layer in style_layers}
        sums = {layer: [_MomentSums() for _ in guides[layer]] for layer in style_layers}
        content_error = torch.zeros((), dtype=torch.float64, device=image.device)
        ghost_sum, ghost_count = torch.zeros((), dtype=torch.float64, device=image.device), 0
        kept = None
        for index, block in enumerate(tiles):  # pass 1: the loss's sums
            keep = want_grad and index == len(tiles) - 1
            pixels = block.pixels(image).clone().requires_grad_(keep)
            with torch.set_grad_enabled(keep):
                found = vgg_features(o.model, pixels, o.layers, o.pooling)
            with torch.no_grad():
                for layer in style_layers:
                    inner = interior(found[layer], block, layer)
                    for index, (region_sums, weight) in enumerate(zip(sums[layer],
                                                                      guides[layer])):
                        region_sums.add(inner, o.style.centred,
                                        None if weight is None
                                        else self._rows(layer, index, block, weight))
                content_error += self._content_difference(found, block).square().sum()
                if o.ghost is not None:
                    penalty, count = o.ghost.penalty(interior(found[o.ghost.layer], block,
                                                              o.ghost.layer))
                    ghost_sum, ghost_count = ghost_sum + penalty, ghost_count + count
            if keep:
                kept = (block, pixels, found)
            del found

        def as_leaves(m: Moments) -> Moments:
            return Moments(m.second.requires_grad_(want_grad),
                           m.mean.requires_grad_(want_grad) if m.mean is not None else None)

        moments = {layer: [as_leaves(region.moments(o.style.centred)) for region in sums[layer]]
                   for layer in style_layers}
        pixels = image.detach().requires_grad_(want_grad)  # an alias: TV copies nothing
        with torch.enable_grad():
            style = (o.style.from_region_moments(moments) if style_layers
                     else image.new_zeros(()))
            tv = o.tv(pixels)
        terms = {"content": (content_error * content.normaliser).float(), "style": style,
                 "tv": tv, "ghost": (ghost_sum / max(ghost_count, 1)).float()}
        total = o.total(terms)
        terms = {name: value.detach() for name, value in terms.items()}
        if not want_grad:
            return total.detach(), terms

        leaves = [t for regions in moments.values() for m in regions for t in m if t is not None]
        found_grads = torch.autograd.grad(total, [pixels, *leaves], allow_unused=True)
        gradient = found_grads[0]
        style_grads: dict[str, list[tuple[torch.Tensor, ...]]] = {}
        position, size = 1, 1 + o.style.centred
        for layer in style_layers:
            style_grads[layer] = []
            for _ in moments[layer]:
                style_grads[layer].append(found_grads[position:position + size])
                position += size
        assert kept is not None, "with gradient, pass 1 kept its last block"
        order: list[tuple[Block, torch.Tensor | None, dict[str, torch.Tensor] | None]] = [
            kept, *[(block, None, None) for block in tiles[:-1]]]
        kept = None
        while order:  # pass 2: backpropagate block by block, holding one block's graph
            block, block_pixels, block_found = order.pop(0)
            if block_pixels is None or block_found is None:
                block_pixels = block.pixels(image).clone().requires_grad_(True)
                with torch.enable_grad():
                    block_found = vgg_features(o.model, block_pixels, o.layers, o.pooling)
            outputs, grads = self._feature_gradients(block_found, block, moments, style_grads,
                                                     sums, guides, ghost_count)
            torch.autograd.backward(outputs, grads)
            assert block_pixels.grad is not None, "the block's features depend on its pixels"
            gradient[..., block.region[0], block.region[1]] += block_pixels.grad
            del block_found, outputs, grads
        return _Known.apply(source, total.detach(), gradient), terms

    def _content_difference(self, found: dict[str, torch.Tensor], block: Block
                            ) -> torch.Tensor:
        """The content term's F − Fₜ over the block's interior."""
        content = self.objective.content
        rows, cols = block.world(vgg_layer(content.layer).stride)
        return content.difference(interior(found[content.layer], block, content.layer),
                                  rows, cols)

    def _feature_gradients(self, found: dict[str, torch.Tensor], block: Block,
                           moments: dict[str, list[Moments]],
                           style_grads: dict[str, list[tuple[torch.Tensor, ...]]],
                           sums: dict[str, list[_MomentSums]],
                           guides: dict[str, list[torch.Tensor | None]], ghost_count: int
                           ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The closed-form gradient of the total with respect to each used layer's features in
        this block: zero in the margin; in the interior, for G = Σ f fᵀ / N (or Σ the
        covariance about μ), (S + Sᵀ)(f − μ)/N + dμ/N with S = dLoss/dG and dμ = dLoss/dμ,
        plus the content error's 2 w (F − Fₜ) / ‖Fₜ‖² and the ghost term's own (a sum over
        positions, divided by their number in the image); a guided region's the same over its
        positions, weighted by them (nfx.engine.guided.add_feature_gradient)."""
        o = self.objective
        outputs: list[torch.Tensor] = []
        grads: list[torch.Tensor] = []
        ghost = [o.ghost.layer] if o.ghost is not None else []
        for layer in sorted({*o.style.weighted_layers, o.content.layer, *ghost}):
            feature = found[layer]
            inner = interior(feature, block, layer)
            with torch.no_grad(), torch.autocast(feature.device.type, enabled=False):
                grad = torch.zeros((), dtype=torch.float32, device=feature.device)
                if layer in style_grads and guides[layer][0] is not None:
                    grad = self._guided_gradient(inner, block, layer, moments[layer],
                                                 style_grads[layer], sums[layer], guides[layer])
                elif layer in style_grads:
                    second, *rest = style_grads[layer][0]
                    n = sums[layer][0].count
                    weight = ((second + second.T) / n).to(feature.dtype)
                    centre = inner
                    if rest:
                        mean = moments[layer][0].mean
                        assert mean is not None, "a centred loss's moments have their means"
                        centre = inner - mean.detach().to(
                            feature.dtype).view(1, -1, 1, 1)
                    grad = nn.functional.conv2d(centre, weight.view(*weight.shape, 1, 1))
                    if rest and rest[0] is not None:
                        grad = grad + (rest[0] / n).to(feature.dtype).view(1, -1, 1, 1)
                if layer == o.content.layer:
                    grad = grad + o.content.feature_gradient(
                        self._content_difference(found, block), o.weight("content"))
                if o.ghost is not None and layer == o.ghost.layer:
                    grad = grad + o.ghost.feature_gradient(inner,
                                                           o.weight("ghost") / ghost_count)
                full = torch.zeros_like(feature)
                rows, cols = block.local(vgg_layer(layer).stride)
                full[..., rows, cols] = grad.to(feature.dtype)
            outputs.append(feature)
            grads.append(full)
        return outputs, grads

    def _guided_gradient(self, inner: torch.Tensor, block: Block, layer: str,
                         moments: list[Moments], style_grads: list[tuple[torch.Tensor, ...]],
                         sums: list[_MomentSums], guides: list[torch.Tensor | None]
                         ) -> torch.Tensor:
        """The style gradient at a block's interior features from every region's moments,
        each over the region's positions in the block, divided by its mass in the image."""
        gradient, out_rows = zero_gradient(inner, torch.float32)
        for index, (found, grads, region_sums, weight) in enumerate(zip(moments, style_grads,
                                                                        sums, guides)):
            assert weight is not None, "a guided loss weighs every region"
            region = self._rows(layer, index, block, weight)
            if region.weight.numel() == 0:
                continue
            second, *rest = grads
            centre = None if found.mean is None else found.mean.detach().to(inner.dtype)
            add_feature_gradient(out_rows, inner, region, second,
                                 rest[0] if rest else None, centre, region_sums.count)
        return gradient
