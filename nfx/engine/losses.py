"""Loss terms as small modules, composed into one objective.

Style and content terms are *relative* errors, each divided by its target's own magnitude, so
that a weight means the same balance for every painting and at every image size (a muted,
low-contrast painting has small activations; with absolute errors it got little style at the
same weight as a vivid one):
- content: ‖F − Fₜ‖² / ‖Fₜ‖² at the content layer (Gatys et al. 2016, eq. 1, normalised);
- style, `gram`: per layer ‖G − Gₜ‖² / ‖Gₜ‖², Grams divided by H*W (Gatys et al. 2016,
  eq. 3-5, normalised per layer instead of by 4N²M²); the benchmark's evaluator scores
  style distance with the same formula;
- style, `wasserstein`: per layer the squared Wasserstein-2 distance between Gaussian fits of
  the features, divided by the target's second moment tr(Gₜ) (see WassersteinStyleLoss);
- total variation: mean squared difference of neighbouring pixels (0-255 units).
The style layers' terms are averaged with the layer weights (a weighted mean), so the number
of style layers does not change what `style_weight` means either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from nfx.engine.vgg import preprocess

# autograd's context object: torch adds saved_tensors to it, and the functions here their own
# attributes (a floor), none of which its stubs declare
AutogradContext = Any


def tensor_sum(terms: Sequence[torch.Tensor]) -> torch.Tensor:
    """The sum of one or more tensors, added in order (as sum() does, without its int 0)."""
    result = terms[0]
    for term in terms[1:]:
        result = result + term
    return result


def feature_rows(features: torch.Tensor) -> torch.Tensor:
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
    def forward(ctx: AutogradContext, features: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(features)
        rows = feature_rows(features)
        return (rows.T @ rows).float() / rows.shape[0]

    @staticmethod
    def backward(ctx: AutogradContext, grad: torch.Tensor) -> torch.Tensor:
        (features,) = ctx.saved_tensors
        channels, pixels = features.shape[1], features.shape[2] * features.shape[3]
        weight = ((grad + grad.T) / pixels).to(features.dtype).view(channels, channels, 1, 1)
        return nn.functional.conv2d(features, weight)


class _CentredMoments(torch.autograd.Function):
    """(Σ, μ): the covariance (the Gram of the centred features, divided by H*W) and the
    channel means of (1, C, H, W) features, with one fused backward.

    Σ is computed from centred features, not as G − μμᵀ: ReLU features have means large
    against their spread, and in bf16 the difference of two large matrices (and of their
    gradients) was noise that stalled L-BFGS. The centred copy is freed after the forward:
    the backward needs only the features and μ, since
        ∂L/∂F = conv1x1(F − μ, W) + g_μ/n = conv1x1(F, W) + (g_μ/n − Wμ),  W = (g_Σ + g_Σᵀ)/n
    (Σ's gradient through μ vanishes, centred features summing to zero) — one convolution
    with a bias. Autograd's own graph for the mean materialised a full-size fp32 gradient,
    converted it and added it to the Gram's: that was most of the Wasserstein loss's cost
    per iteration."""

    @staticmethod
    def forward(ctx: AutogradContext, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = features.mean((0, 2, 3), dtype=torch.float32)
        centre = mean.to(features.dtype)  # what is subtracted, exactly, in the features' dtype
        rows = feature_rows(features - centre.view(1, -1, 1, 1))
        cov = (rows.T @ rows).float() / rows.shape[0]
        ctx.save_for_backward(features, centre)
        return cov, mean

    @staticmethod
    def backward(ctx: AutogradContext, grad_cov: torch.Tensor, grad_mean: torch.Tensor
                 ) -> torch.Tensor:
        features, centre = ctx.saved_tensors
        channels, pixels = features.shape[1], features.shape[2] * features.shape[3]
        weight = (grad_cov + grad_cov.T) / pixels
        bias = grad_mean / pixels - weight @ centre.float()
        return nn.functional.conv2d(features, weight.to(features.dtype).view(
            channels, channels, 1, 1), bias.to(features.dtype))


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix (C, C) of (1, C, H, W) features, divided by H*W, returned in fp32."""
    with torch.autocast(features.device.type, enabled=False):
        return _Gram.apply(features)


class Moments(NamedTuple):
    """A style layer's statistics, both averages over positions: `second` a second moment
    (the Gram, or for a loss that centres the features the covariance) and `mean` the
    channel means (None where a loss needs none).

    A style image's targets are raw moments (the Gram and the mean), which blend linearly
    across styles; a style term is a function of the optimised image's moments alone, which
    is what lets nfx.engine.tiling sum them block by block."""

    second: torch.Tensor
    mean: torch.Tensor | None


def raw_moments(features: torch.Tensor) -> Moments:
    """The Gram and channel means of (1, C, H, W) features, in fp32: a style target."""
    with torch.autocast(features.device.type, enabled=False):
        return Moments(_Gram.apply(features), features.mean((0, 2, 3), dtype=torch.float32))


def blend(targets: Sequence[dict[str, Moments]], weights: Sequence[float]) -> dict[str, Moments]:
    """One target per layer from several style images' raw moments (weights normalised)."""
    weights = list(weights) or [1.0] * len(targets)
    weight_sum = sum(weights) or 1.0
    shares = [w / weight_sum for w in weights]

    def mix(layer: str, part: int) -> torch.Tensor:
        values = [t[layer][part] for t in targets]
        assert all(v is not None for v in values), "raw moments always have their means"
        return tensor_sum([s * v for s, v in zip(shares, values) if v is not None])

    return {layer: Moments(mix(layer, 0), mix(layer, 1)) for layer in targets[0]}


class ContentLoss(nn.Module):
    """‖F − Fₜ‖² / ‖Fₜ‖² at one layer.

    The target is kept in the precision it was computed in: in bf16 it is the features'
    own rounding, and half the memory (relu4_2 of an 8192×6144 image is 0.75 GiB in bf16).
    The difference is taken in fp32."""

    target: torch.Tensor  # a buffer (registered in __init__)

    def __init__(self, layer: str, target: torch.Tensor) -> None:
        super().__init__()
        self.layer = layer
        self.register_buffer("target", target)
        norm = torch.linalg.vector_norm(target, dtype=torch.float32)
        self.normaliser = 1.0 / max(float(norm) ** 2, 1e-12)  # 1/‖Fₜ‖²

    def difference(self, features: torch.Tensor, rows: slice = slice(None),
                   cols: slice = slice(None)) -> torch.Tensor:
        """F − Fₜ in fp32, for features covering the target's `rows` and `cols` (all of it,
        or one block's interior in a tiled evaluation)."""
        return features.float() - self.target[..., rows, cols].float()

    def feature_gradient(self, difference: torch.Tensor, weight: float) -> torch.Tensor:
        """d(weight · loss)/dF = 2 · weight · (F − Fₜ) / ‖Fₜ‖²."""
        return 2 * weight * self.normaliser * difference

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        # square().sum(), not mse_loss: its backward materialises a contiguous (NCHW)
        # gradient, and mixed with the channels_last ones it slowed every op it met.
        with torch.autocast(self.target.device.type, enabled=False):
            return self.difference(features[self.layer]).square().sum() * self.normaliser


class LayeredStyleLoss(nn.Module):
    """Weighted mean over style layers of a per-layer term against fixed targets.

    Each term is `distance(moments(features))`: the features enter only through their
    Moments, so a tiled evaluation (nfx.engine.tiling) can gather the Moments over blocks and get
    the loss, and its gradient with respect to them, from the small problem."""

    centred = False  # whether `moments` centres the features (its `second` is a covariance)

    def __init__(self, targets: dict[str, Moments], layer_weights: Sequence[float]) -> None:
        super().__init__()
        self.layers = list(targets)
        total = sum(layer_weights) or 1.0
        self.weights = [w / total for w in layer_weights]
        for index, layer in enumerate(self.layers):
            for name, tensor in self.prepare(targets[layer]).items():
                self.register_buffer(f"{name}_{index}", tensor)

    def prepare(self, target: Moments) -> dict[str, torch.Tensor]:
        """Buffers precomputed once from a layer's target."""
        raise NotImplementedError

    def moments(self, features: torch.Tensor) -> Moments:
        raise NotImplementedError

    def distance(self, moments: Moments, index: int) -> torch.Tensor:
        raise NotImplementedError

    @property
    def weighted_layers(self) -> list[str]:
        return [layer for layer, weight in zip(self.layers, self.weights) if weight]

    def from_moments(self, moments: dict[str, Moments]) -> torch.Tensor:
        """The loss from each weighted layer's Moments."""
        terms = [weight * self.distance(moments[layer], index)
                 for index, (layer, weight) in enumerate(zip(self.layers, self.weights))
                 if weight]
        if not terms:  # every layer weighted 0: still a tensor, which the optimiser detaches
            return next(self.buffers()).new_zeros(())
        return tensor_sum(terms)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.from_moments({layer: self.moments(features[layer])
                                  for layer in self.weighted_layers})

    # The region interface (nfx.engine.guided.GuidedStyleLoss has several regions): an
    # unguided loss has one region, every position weighing 1.

    def region_weights(self, layer: str, height: int, width: int) -> list[torch.Tensor | None]:
        return [None]

    def from_region_moments(self, moments: dict[str, list[Moments]]) -> torch.Tensor:
        return self.from_moments({layer: found[0] for layer, found in moments.items()})


class GramStyleLoss(LayeredStyleLoss):
    """‖G − Gₜ‖² / ‖Gₜ‖² per layer (Gatys et al. 2016, normalised by the target)."""

    def prepare(self, target: Moments) -> dict[str, torch.Tensor]:
        g = target.second.float()
        return {"gram": g, "normaliser": 1.0 / g.square().sum().clamp_min(1e-12)}

    def moments(self, features: torch.Tensor) -> Moments:
        return Moments(gram(features), None)

    def distance(self, moments: Moments, index: int) -> torch.Tensor:
        target = getattr(self, f"gram_{index}")
        return (moments.second - target).square().sum() * getattr(self, f"normaliser_{index}")


class _TraceSqrtWhitened(torch.autograd.Function):
    """tr((R Σ R)^½) for a symmetric PSD Σ and a fixed symmetric R (the target's Σₜ^½), from
    the eigendecomposition R Σ R = V diag(λ) Vᵀ.

    Eigenvalues that rounding made slightly negative are clamped to 0. The gradient,
    ½ R (RΣR)^{-½} R = W diag(1 / (2√λ)) Wᵀ with W = R V, uses the eigenvalues only, so it
    stays defined when eigenvalues repeat (the eigenvector gradient, which divides by their
    gaps, is never needed); `floor` bounds it where RΣR has no spread in some direction.
    Four C×C products in all, where autograd's graph of the same made five."""

    @staticmethod
    def forward(ctx: AutogradContext, cov: torch.Tensor, root: torch.Tensor, floor: float
                ) -> torch.Tensor:
        inner = root @ cov @ root
        values, vectors = torch.linalg.eigh((inner + inner.T) / 2)
        values = values.clamp_min(0)
        ctx.save_for_backward(values, root @ vectors)
        ctx.floor = floor
        return values.sqrt().sum()

    @staticmethod
    def backward(ctx: AutogradContext, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        values, whitened = ctx.saved_tensors
        factor = grad / (2 * values.clamp_min(ctx.floor).sqrt())
        return (whitened * factor) @ whitened.T, None, None


class WassersteinStyleLoss(LayeredStyleLoss):
    """Squared Wasserstein-2 distance between Gaussian fits N(μ, Σ) of the features and of the
    target, per layer:

        W2² = ‖μ − μₜ‖² + tr(Σ) + tr(Σₜ) − 2 tr((Σₜ^½ Σ Σₜ^½)^½)

    (the closed form for Gaussians, Dowson & Landau 1982; as a style loss in
    crowsonkb/style-transfer-pytorch), divided by tr(Gₜ) = tr(Σₜ) + ‖μₜ‖², the target's
    second moment, as the Gram loss is by its target. Both covariances get a ridge εI with
    ε = RIDGE · tr(Σₜ)/C (the distance stays 0 when they are equal), which keeps the square
    roots' gradients finite on nearly low-rank VGG features; the C×C work is in fp64. Why
    both, with the measurements: docs/benchmarks.md, "Wasserstein style loss"."""

    centred = True
    RIDGE = 1e-2

    def prepare(self, target: Moments) -> dict[str, torch.Tensor]:
        assert target.mean is not None, "a style target's raw moments have their means"
        mean = target.mean.double()
        cov = target.second.double() - torch.outer(mean, mean)
        ridge = self.RIDGE * cov.trace().clamp_min(1e-12) / cov.shape[0]
        cov = (cov + cov.T) / 2 + ridge * torch.eye(cov.shape[0], dtype=cov.dtype,
                                                   device=cov.device)
        values, vectors = torch.linalg.eigh(cov)
        root = (vectors * values.clamp_min(0).sqrt()) @ vectors.T
        return {"mean": target.mean.float(), "root": root,
                "trace": cov.trace().float().reshape(()), "ridge": ridge.float().reshape(()),
                "normaliser": 1.0 / (target.second.float().trace()).clamp_min(1e-12)}

    def moments(self, features: torch.Tensor) -> Moments:
        with torch.autocast(features.device.type, enabled=False):
            return Moments(*_CentredMoments.apply(features))

    def distance(self, moments: Moments, index: int) -> torch.Tensor:
        cov, mean = moments
        root, ridge = getattr(self, f"root_{index}"), getattr(self, f"ridge_{index}")
        cov = cov.to(root.dtype) + torch.diag(ridge.to(root.dtype).expand(cov.shape[0]))
        # The ridge bounds R Σ R's eigenvalues below by about ε²: the floor is a guard only.
        floor = float(ridge) ** 2 * 1e-2
        distance = ((mean - getattr(self, f"mean_{index}")).square().sum()
                    + cov.trace().float() + getattr(self, f"trace_{index}")
                    - 2 * _TraceSqrtWhitened.apply(cov, root, floor).float())
        return distance * getattr(self, f"normaliser_{index}")


STYLE_LOSSES: dict[str, type[LayeredStyleLoss]] = {
    "gram": GramStyleLoss,
    "wasserstein": WassersteinStyleLoss,
}


class _TotalVariation(torch.autograd.Function):
    """mean(Δx²) + mean(Δy²) of (N, C, H, W) pixels, forward and backward a channel at a
    time: autograd's graph of the same kept Δx, Δy and their squares, and its backward made
    as many again, each as large as the image (0.56 GiB apiece at 8192×6144). Here the only
    image-sized tensor is the gradient itself."""

    @staticmethod
    def forward(ctx: AutogradContext, image: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(image)
        total = image.new_zeros(())
        with torch.autocast(image.device.type, enabled=False):
            for channel in image.split(1, dim=1):
                for dim, count in _differences(image):
                    total += channel.diff(dim=dim).square_().sum() / count
        return total

    @staticmethod
    def backward(ctx: AutogradContext, grad: torch.Tensor) -> torch.Tensor:
        (image,) = ctx.saved_tensors
        gradient = torch.zeros_like(image)
        with torch.autocast(image.device.type, enabled=False):
            for channel, out in zip(image.split(1, dim=1), gradient.split(1, dim=1)):
                for dim, count in _differences(image):
                    # Δᵢ = pᵢ₊₁ − pᵢ: its square's gradient 2Δᵢ/n goes to pᵢ₊₁, minus it to pᵢ.
                    step = channel.diff(dim=dim).mul_(2 * grad / count)
                    length = image.shape[dim] - 1
                    out.narrow(dim, 1, length).add_(step)
                    out.narrow(dim, 0, length).sub_(step)
                    del step  # before the next one: a third of an image apiece
        return gradient


def _differences(image: torch.Tensor) -> list[tuple[int, int]]:
    """(dimension, number of neighbour differences along it) for width and height."""
    n, c, h, w = image.shape
    return [(3, n * c * h * (w - 1)), (2, n * c * (h - 1) * w)]


class TVLoss(nn.Module):
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return _TotalVariation.apply(image)


def vgg_features(model: nn.Module, image: torch.Tensor, layers: Sequence[str],
                 pooling: str) -> dict[str, torch.Tensor]:
    """{layer: activation} of RGB 0-255 pixels (N, 3, H, W), channels_last."""
    x = preprocess(image).contiguous(memory_format=torch.channels_last)
    return model(x, layers, pooling)
