"""Colour preservation (Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer").

Two ways to keep the content's colours:
- luminance-only transfer: style is transferred on brightness alone, then the result's
  luminance is recombined with the content's chroma;
- colour-statistics match: the style image's colours are first given the content's mean and
  covariance, so the ordinary transfer cannot bring in foreign colours.

Plain numpy, so that both the optimisation engine (through the tensor adapter
`nfx.engine.color`) and the feed-forward method (`nfx.feedforward`, which must never load
torch) share one implementation. Arrays are float32 (H, W, 3) RGB in 0-255.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Pixels = npt.NDArray[np.float32]

# RGB <-> YIQ (NTSC); Y is luminance, I and Q carry the chroma.
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                        [0.595716, -0.274453, -0.321263],
                        [0.211456, -0.522591, 0.311135]], dtype=np.float64)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ).astype(np.float64)


def _apply(matrix: npt.NDArray[np.float64], image: Pixels) -> Pixels:
    """Each pixel's 3-vector multiplied by `matrix`."""
    return (image.astype(np.float64) @ matrix.T).astype(np.float32)


def rgb_to_yiq(image: Pixels) -> Pixels:
    return _apply(_RGB_TO_YIQ, image)


def yiq_to_rgb(image: Pixels) -> Pixels:
    return _apply(_YIQ_TO_RGB, image)


def luminance(image: Pixels) -> Pixels:
    """Grey image (3 equal channels) of the luminance, so VGG sees a normal-looking input."""
    y = rgb_to_yiq(image)[..., :1]
    return np.ascontiguousarray(np.repeat(y, 3, axis=-1))


def match_luminance(style_lum: Pixels, content_lum: Pixels) -> Pixels:
    """Give the style's luminance the content's mean and spread (as the paper does)."""
    s_mean, s_std = style_lum.mean(), max(float(style_lum.std(ddof=1)), 1e-5)
    matched = (style_lum - s_mean) / s_std * content_lum.std(ddof=1) + content_lum.mean()
    return matched.astype(np.float32)


def recombine_chroma(stylised: Pixels, content: Pixels) -> Pixels:
    """The stylised image's luminance with the content's chroma."""
    y = rgb_to_yiq(stylised)[..., :1]
    iq = rgb_to_yiq(content)[..., 1:]
    return yiq_to_rgb(np.concatenate([y, iq], axis=-1))


def _statistics(image: Pixels) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Mean (3, 1) and covariance (3, 3) of the pixels' colours (regularised to invert)."""
    pixels = image.reshape(-1, 3).T.astype(np.float64)
    mean = pixels.mean(axis=1, keepdims=True)
    centred = pixels - mean
    cov = centred @ centred.T / pixels.shape[1] + np.eye(3) * 1e-5
    return mean, cov


def _sqrtm(matrix: npt.NDArray[np.float64], inverse: bool = False) -> npt.NDArray[np.float64]:
    """Symmetric square root (or its inverse) of a symmetric positive matrix."""
    values, vectors = np.linalg.eigh(matrix)
    roots = np.sqrt(np.clip(values, 1e-8, None))
    if inverse:
        roots = 1.0 / roots
    result: npt.NDArray[np.float64] = vectors @ np.diag(roots) @ vectors.T
    return result


def match_color_statistics(source: Pixels, reference: Pixels) -> Pixels:
    """Linearly map `source`'s colours onto `reference`'s mean and covariance.

    Uses the symmetric matrix square roots of both covariances (the 'image analogies' variant
    in the paper), which keeps hues stable."""
    s_mean, s_cov = _statistics(source)
    r_mean, r_cov = _statistics(reference)
    transform = _sqrtm(r_cov) @ _sqrtm(s_cov, inverse=True)
    pixels = source.reshape(-1, 3).T.astype(np.float64)
    mapped = transform @ (pixels - s_mean) + r_mean
    return np.clip(mapped.T.reshape(source.shape), 0, 255).astype(np.float32)
