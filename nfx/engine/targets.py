"""What a run is optimised towards: the content's features and the styles' moments at each
size, cached, and the objective they make.

Targets are cached per (image, size, mode) so that a worker running many combinations of the
same pictures computes each once (a bounded LRU: a target of a large image is big).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from nfx.caches import BoundedCache
from nfx.engine import color, tiling
from nfx.engine.devices import autocast
from nfx.engine.ghosts import GhostLoss, painting_rows
from nfx.engine.guided import GuidedStyleLoss
from nfx.engine.losses import (STYLE_LOSSES, ContentLoss, LayeredStyleLoss, Moments, blend,
                               raw_moments, vgg_features)
from nfx.engine.objective import Objective
from nfx.engine.tensors import to_pixels
from nfx.engine.vgg import VGG19Features
from nfx.images import resize, size_for_area
from nfx.layers import in_order
from nfx.planning import budget
from nfx.regions import RegionInput, weights as region_weights
from nfx.settings import Settings

Keys = tuple[str, list[str]]  # the content's and each style's image_key


def ghost_layer(s: Settings) -> str:
    """The ghost term's layer: the deepest style layer, where object parts live."""
    return in_order(s.style_layers)[-1]


class Targets:
    """Targets and objectives for one network on one device."""

    def __init__(self, model: VGG19Features, device: torch.device) -> None:
        self.model, self.device = model, device
        self.cache = BoundedCache()

    def pixels(self, image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
        """An image at `size`, as the engine's 0-255 pixels on its device."""
        return to_pixels(resize(image, size), self.device)

    def _features(self, pixels: torch.Tensor, layer: str, s: Settings, precision: str,
                  tile: int | None) -> torch.Tensor:
        """One layer's features in the run's precision (bf16 halves an 8192 px content
        target), computed in tiles if `tile`."""
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        with torch.no_grad(), autocast(self.device, precision):
            if tile:
                found = tiling.features(self.model, pixels, layer, s.pooling, tile)
            else:
                found = vgg_features(self.model, pixels, [layer], s.pooling)[layer]
        return found.to(dtype)

    def _moments(self, pixels: torch.Tensor, s: Settings, precision: str,
                 tile: int | None) -> dict[str, Moments]:
        """Each style layer's raw moments, computed in tiles if `tile`."""
        with torch.no_grad(), autocast(self.device, precision):
            if tile:
                return tiling.raw_moments(self.model, pixels, s.style_layers, s.pooling, tile)
            features = vgg_features(self.model, pixels, s.style_layers, s.pooling)
        return {layer: raw_moments(features[layer]) for layer in s.style_layers}

    @staticmethod
    def _tile(pixels: torch.Tensor, s: Settings, precision: str,
              plan: budget.MemoryPlan | None) -> int | None:
        """The tile for a target's forward pass (no gradient): the plan's, as its estimate
        assumes; untiled plans tile only a target that would not fit whole (a style image
        enlarged by style_scale)."""
        if plan is None or plan.tile:
            return None if plan is None else plan.tile
        height, width = pixels.shape[2:]
        return budget.forward_tile(width, height, s, precision,
                                   plan.estimate - budget.PROCESS_BYTES)

    def content(self, content: Image.Image, key: str, size: tuple[int, int], s: Settings,
                precision: str, plan: budget.MemoryPlan | None = None) -> torch.Tensor:
        def compute() -> torch.Tensor:
            pixels = self.pixels(content, size)
            if s.preserve_color == "luminance":
                pixels = color.luminance(pixels)
            return self._features(pixels, s.content_layer, s, precision,
                                  self._tile(pixels, s, precision, plan))

        return self.cache.get(("content", key, size, s.content_layer, s.pooling, precision,
                               s.preserve_color == "luminance"), compute)

    def _style_pixels(self, style: Image.Image, content: Image.Image,
                      out_size: tuple[int, int], s: Settings) -> torch.Tensor:
        """A style image as its targets see it: at the output's area times style_scale²,
        its colours matched to the content's if the run preserves them."""
        area = out_size[0] * out_size[1] * s.style_scale ** 2
        pixels = self.pixels(style, size_for_area(style.size, area))
        if s.preserve_color == "histogram":
            pixels = color.match_color_statistics(pixels, self.pixels(content, out_size))
        elif s.preserve_color == "luminance":
            content_lum = color.luminance(self.pixels(content, out_size))
            pixels = color.match_luminance(color.luminance(pixels), content_lum)
        return pixels

    @staticmethod
    def _style_key(kind: str, style: Image.Image, style_key: str, content_key: str,
                   out_size: tuple[int, int], s: Settings, precision: str) -> tuple:
        area = out_size[0] * out_size[1] * s.style_scale ** 2
        # Colour-preserving modes make the style depend on the content too.
        depends_on_content = s.preserve_color != "none"
        return (kind, style_key, size_for_area(style.size, area), tuple(s.style_layers),
                s.pooling, precision, s.preserve_color,
                content_key if depends_on_content else None,
                out_size if depends_on_content else None)

    def style(self, style: Image.Image, style_key: str, content: Image.Image,
              content_key: str, out_size: tuple[int, int], s: Settings, precision: str,
              plan: budget.MemoryPlan | None = None) -> dict[str, Moments]:
        """A style image's raw moments at the output's area times style_scale²."""
        def compute() -> dict[str, Moments]:
            pixels = self._style_pixels(style, content, out_size, s)
            return self._moments(pixels, s, precision, self._tile(pixels, s, precision, plan))

        return self.cache.get(self._style_key("style", style, style_key, content_key,
                                              out_size, s, precision), compute)

    def ghost_rows(self, style: Image.Image, style_key: str, content: Image.Image,
                   content_key: str, out_size: tuple[int, int], s: Settings,
                   precision: str, plan: budget.MemoryPlan | None = None) -> torch.Tensor:
        """A style image's positions at the ghost term's layer (nfx.engine.ghosts.
        painting_rows), seen as its moments are."""
        def compute() -> torch.Tensor:
            pixels = self._style_pixels(style, content, out_size, s)
            found = self._features(pixels, ghost_layer(s), s, precision,
                                   self._tile(pixels, s, precision, plan))
            return painting_rows(found, found.dtype)

        return self.cache.get(self._style_key("ghost", style, style_key, content_key,
                                              out_size, s, precision), compute)

    def objective(self, content: Image.Image, styles: Sequence[Image.Image], keys: Keys,
                  size: tuple[int, int], s: Settings, precision: str,
                  plan: budget.MemoryPlan | None = None, regions: RegionInput | None = None
                  ) -> Objective | tiling.TiledObjective:
        """The objective at one size; evaluated in tiles (nfx.engine.tiling) if the plan
        says so; with `regions`, each region's style term over its own positions."""
        content_key, style_keys = keys
        content_loss = ContentLoss(s.content_layer, self.content(
            content, content_key, size, s, precision, plan))
        moments = [self.style(style, key, content, content_key, size, s, precision, plan)
                   for style, key in zip(styles, style_keys)]
        style_loss: LayeredStyleLoss | GuidedStyleLoss
        if regions is None:
            style_loss = STYLE_LOSSES[s.style_loss](blend(moments, s.style_blend),
                                                    s.style_layer_weights)
        else:
            style_loss = self._guided(moments, size, s, regions)
        weights = {"content": s.content_weight, "style": s.style_weight, "tv": s.tv_weight,
                   "ghost": s.ghost_weight}
        ghost = None
        if s.ghost_weight > 0:  # against every painting the run uses
            rows = [self.ghost_rows(style, key, content, content_key, size, s, precision, plan)
                    for style, key in zip(styles, style_keys)]
            ghost = GhostLoss(ghost_layer(s), torch.cat(rows))
        objective = Objective(self.model, s.pooling, content_loss, style_loss, weights, ghost)
        if plan is not None and plan.tile:
            return tiling.TiledObjective(objective, plan.tile)
        return objective

    def _guided(self, moments: list[dict[str, Moments]], size: tuple[int, int], s: Settings,
                regions: RegionInput) -> GuidedStyleLoss:
        """One style loss per styled region, against its entry's blend of the styles, guided
        by the region's soft mask at this size (the feather scaled from the output's)."""
        feather = s.region_feather * max(size) / s.size
        soft = region_weights(regions.mask, regions.regions, size, feather)
        blend_weights = s.style_blend or (1.0,) * len(moments)
        losses, masks = [], []
        for region, weight in zip(regions.regions.regions, soft):
            if region.keeps_photo:
                continue
            chosen = [i - 1 for i in region.styles]
            target = blend([moments[i] for i in chosen], [blend_weights[i] for i in chosen])
            losses.append(STYLE_LOSSES[s.style_loss](target, s.style_layer_weights))
            masks.append(torch.from_numpy(weight))
        return GuidedStyleLoss(losses, torch.stack(masks).to(self.device))
