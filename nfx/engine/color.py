"""Colour preservation on the engine's pixel tensors: a thin adapter over `nfx.color`.

The concept (YIQ luminance and chroma, colour-statistics matching, after Gatys et al. 2016,
"Preserving Color in Neural Artistic Style Transfer") lives once, in numpy, in `nfx.color`,
where the feed-forward method uses it too. These functions keep the engine's signatures:
(1, 3, H, W) RGB tensors in 0-255 in, the same dtype and device out. None of them is on the
optimisation's gradient path (targets, the first image and the final recombination only), so
the round trip through numpy costs one copy and loses nothing.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from nfx import color
from nfx.color import Pixels


def _to_arrays(image: torch.Tensor) -> list[Pixels]:
    """(N, 3, H, W) tensor -> N float32 (H, W, 3) arrays."""
    batch = image.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).numpy()
    return [np.ascontiguousarray(item) for item in batch]


def _to_tensor(arrays: list[Pixels], like: torch.Tensor) -> torch.Tensor:
    """N (H, W, 3) arrays -> (N, 3, H, W) tensor with `like`'s dtype and device."""
    stacked = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return stacked.to(dtype=like.dtype, device=like.device)


def _map(function: Callable[..., Pixels], *images: torch.Tensor) -> torch.Tensor:
    """`function` (from nfx.color) applied image by image along the batch."""
    results = [function(*items) for items in zip(*(_to_arrays(image) for image in images))]
    return _to_tensor(results, images[0])


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    return _map(color.rgb_to_yiq, image)


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    return _map(color.yiq_to_rgb, image)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """Grey image (3 equal channels) of the luminance, so VGG sees a normal-looking input."""
    return _map(color.luminance, image)


def match_luminance(style_lum: torch.Tensor, content_lum: torch.Tensor) -> torch.Tensor:
    """Give the style's luminance the content's mean and spread (as the paper does)."""
    return _map(color.match_luminance, style_lum, content_lum)


def recombine_chroma(stylised: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The stylised image's luminance with the content's chroma."""
    return _map(color.recombine_chroma, stylised, content)


def match_color_statistics(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Linearly map `source`'s colours onto `reference`'s mean and covariance.

    Uses the symmetric matrix square roots of both covariances (the 'image analogies' variant
    in the paper), which keeps hues stable."""
    return _map(color.match_color_statistics, source, reference)
