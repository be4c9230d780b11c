"""Colour preservation (Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer").

Two ways to keep the content's colours:
- luminance-only transfer: style is transferred on brightness alone, then the result's
  luminance is recombined with the content's chroma;
- colour-statistics match: the style image's colours are first given the content's mean and
  covariance, so the ordinary transfer cannot bring in foreign colours.
Tensors are (1, 3, H, W) RGB in 0-255.
"""

from __future__ import annotations

import torch

# RGB <-> YIQ (NTSC); Y is luminance, I and Q carry the chroma.
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114],
                            [0.595716, -0.274453, -0.321263],
                            [0.211456, -0.522591, 0.311135]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def _apply(matrix: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", matrix.to(image), image)


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    return _apply(_RGB_TO_YIQ, image)


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    return _apply(_YIQ_TO_RGB, image)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """Grey image (3 equal channels) of the luminance, so VGG sees a normal-looking input."""
    y = rgb_to_yiq(image)[:, :1]
    return y.expand(-1, 3, -1, -1).contiguous()


def match_luminance(style_lum: torch.Tensor, content_lum: torch.Tensor) -> torch.Tensor:
    """Give the style's luminance the content's mean and spread (as the paper does)."""
    s_mean, s_std = style_lum.mean(), style_lum.std().clamp_min(1e-5)
    return (style_lum - s_mean) / s_std * content_lum.std() + content_lum.mean()


def recombine_chroma(stylised: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The stylised image's luminance with the content's chroma."""
    y = rgb_to_yiq(stylised)[:, :1]
    iq = rgb_to_yiq(content)[:, 1:]
    return yiq_to_rgb(torch.cat([y, iq], dim=1))


def match_color_statistics(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Linearly map `source`'s colours onto `reference`'s mean and covariance.

    Uses the symmetric matrix square roots of both covariances (the 'image analogies' variant
    in the paper), which keeps hues stable."""
    def stats(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = image.reshape(3, -1).double()
        mean = pixels.mean(1, keepdim=True)
        centred = pixels - mean
        cov = centred @ centred.T / pixels.shape[1] + torch.eye(3, dtype=torch.float64) * 1e-5
        return mean, cov

    def sqrtm(matrix: torch.Tensor, inverse: bool = False) -> torch.Tensor:
        values, vectors = torch.linalg.eigh(matrix)
        values = values.clamp_min(1e-8).sqrt()
        if inverse:
            values = 1.0 / values
        return vectors @ torch.diag(values) @ vectors.T

    s_mean, s_cov = stats(source)
    r_mean, r_cov = stats(reference)
    transform = sqrtm(r_cov) @ sqrtm(s_cov, inverse=True)
    pixels = source.reshape(3, -1).double()
    mapped = transform @ (pixels - s_mean) + r_mean
    return mapped.reshape(source.shape).to(source.dtype).clamp(0, 255)
