"""Feed-forward style transfer: one pass of Ghiasi et al. 2017's arbitrary-style network
("Exploring the structure of a real-time, arbitrary neural artistic stylization network").

A style predictor maps a painting to a 100-number style vector; a transformer network renders
the photo with it: a fraction of a second at 512 px on a CPU instead of the optimisation's
minutes, and without torch (onnxruntime and numpy alone), so the app's process may use it.

What each setting means here:
- `size`: the output's long edge, the short edge rounded as the engine does
  (`nfx.images.size_for_long_edge`). The transformer sees the whole image at that size in one
  pass (its height and width are freed in the graph): no tiles, so no seams. Its two
  stride-2 convolutions want sides that are multiples of 4, so the image is mirror-padded to
  them (and by MARGIN on every side, which hides the light line the network draws along
  an image's edges) and the result cropped back to exactly the asked size.
- `style_scale`: how big the painting's marks come out, larger values giving broader, bolder
  marks, as for the engine; but here it is the painting's size relative to the predictor's
  native 256 px input, not to the output. The painting is resized, whole (the predictor ends
  in a global mean, so any size works), to an area of (256 / style_scale)² pixels. Why: the
  transformer paints marks of about the same size in output pixels whatever the vector (its
  receptive field is fixed), so what a vector can change is which marks it asks for, and by
  eye (Tübingen x The Starry Night, the coffee cup x The Scream, chelsea x Kandinsky at
  384-512 px): a painting shown smaller gives broader, bolder marks, a larger one finer,
  grainier ones. Shown below about 128 px (style_scale > 2) the vector loses the painting's
  palette, and much above 1024 px it drifts too: a painting enlarged to
  the output's size, the engine's rule, rendered a 2048 px Tübingen in purple and teal
  instead of The Starry Night's blue and yellow. So the area is kept within
  [PREDICTOR_MIN_PIXELS, PREDICTOR_MAX_PIXELS]. As the marks do not grow with the output,
  a large output looks more finely textured than a small one at the same style_scale.
- `blend`: the styles' vectors averaged with the normalised weights (the paper's mixes).
- `strength`: the style vector interpolated with the content's own (the content treated as
  a painting), the paper's way to weaken a style: 1 is the full style.
- `preserve_color` (Gatys et al. 2016, via `nfx.color`): "luminance" keeps the rendering's
  luminance with the content's chroma; "histogram" gives each painting the content's colour
  mean and covariance before the predictor sees it.
"""

from __future__ import annotations

import typing
from typing import Sequence

import numpy as np
import numpy.typing as npt
from PIL import Image

from nfx import color
from nfx.caches import BoundedCache
from nfx.errors import InputError
from nfx.feedforward.models import (CONTENT_INPUT, PAINTING_INPUT, STYLE_INPUT, load_models)
from nfx.images import image_key, resize, size_for_area, size_for_long_edge
from nfx.settings import Settings

StyleVector = npt.NDArray[np.float32]  # (1, 1, 1, 100)
PRESERVE_COLOR = typing.get_args(Settings.model_fields["preserve_color"].annotation)
TRANSFORMER_STRIDE = 4  # two stride-2 convolutions, undone by two 2x upsamplings
MARGIN = 16  # mirrored on every side and cropped off: the network draws a light line at
# edges; it also gives the smallest image the 8 px its own mirror pads need
PREDICTOR_SIDE = 256  # the predictor's training input: style_scale 1
PREDICTOR_MIN_PIXELS, PREDICTOR_MAX_PIXELS = 128 * 128, 1024 * 1024  # where styles hold
PREDICTOR_MIN_SIDE = 32  # MobileNet's total stride: a narrower input leaves no feature map


def _network_input(pixels: color.Pixels) -> npt.NDArray[np.float32]:
    """(H, W, 3) 0-255 -> the networks' (1, H, W, 3) 0-1."""
    return np.ascontiguousarray((pixels / 255.0)[None], dtype=np.float32)


def _pixels(image: Image.Image) -> color.Pixels:
    return np.asarray(image.convert("RGB"), dtype=np.float32)


def predictor_size(painting: tuple[int, int], style_scale: float) -> tuple[int, int]:
    """The painting's (width, height) for the predictor: an area of (256 / style_scale)²,
    kept where the predictor still reads the painting's style, and sides it can take."""
    area = min(max((PREDICTOR_SIDE / style_scale) ** 2, PREDICTOR_MIN_PIXELS),
               PREDICTOR_MAX_PIXELS)
    width, height = size_for_area(painting, area)
    if min(width, height) < PREDICTOR_MIN_SIDE:
        grow = PREDICTOR_MIN_SIDE / min(width, height)
        width, height = max(PREDICTOR_MIN_SIDE, round(width * grow)), \
            max(PREDICTOR_MIN_SIDE, round(height * grow))
    return width, height


_VECTORS = BoundedCache(64)  # 400 bytes each: a grid's paintings and photos many times over


def forget_style_vectors() -> None:
    """Drop the kept style vectors (a benchmark times a first rendering with this)."""
    _VECTORS.clear()


def style_vector(painting: Image.Image, style_scale: float = 1.0,
                 match_colors_of: Image.Image | None = None) -> StyleVector:
    """The painting's style vector (1, 1, 1, 100); see the module's note on style_scale.

    `match_colors_of` (the content) first gives the painting that image's colour mean and
    covariance ("histogram" colour preservation).

    Vectors are kept by the pictures' hashes (a bounded LRU): a preview grid renders every
    photo with the same few paintings, and a batch of preview jobs reuses them too; hashing a
    painting costs a few milliseconds, the predictor tens."""
    def compute() -> StyleVector:
        pixels = _pixels(resize(painting.convert("RGB"),
                                predictor_size(painting.size, style_scale)))
        if match_colors_of is not None:
            pixels = color.match_color_statistics(pixels, _pixels(match_colors_of))
        vector: StyleVector = load_models().predictor.run(
            None, {PAINTING_INPUT: _network_input(pixels)})[0]
        return vector

    key = (image_key(painting), painting.mode, style_scale,
           None if match_colors_of is None else image_key(match_colors_of))
    vector: StyleVector = _VECTORS.get(key, compute)
    return vector


def render(content: Image.Image, vector: StyleVector) -> color.Pixels:
    """The content rendered with `vector` at its own size, in one pass: (H, W, 3) 0-255."""
    pixels = _pixels(content)
    height, width = pixels.shape[:2]
    padded_height, padded_width = (-(-(side + 2 * MARGIN) // TRANSFORMER_STRIDE)
                                   * TRANSFORMER_STRIDE for side in (height, width))
    padded = np.pad(pixels, ((MARGIN, padded_height - height - MARGIN),
                             (MARGIN, padded_width - width - MARGIN), (0, 0)), mode="reflect")
    rendered = load_models().transformer.run(
        None, {CONTENT_INPUT: _network_input(padded), STYLE_INPUT: vector})[0]
    crop = rendered[0, MARGIN:MARGIN + height, MARGIN:MARGIN + width]
    result: color.Pixels = (crop * 255.0).astype(np.float32)
    return result


def _weights(blend: Sequence[float], count: int) -> list[float]:
    """The styles' normalised weights (equal when `blend` is empty)."""
    if not blend:
        return [1.0 / count] * count
    if len(blend) != count:
        raise InputError(f"blend has {len(blend)} weights for {count} style images")
    if any(weight < 0 for weight in blend) or sum(blend) <= 0:
        raise InputError("blend weights must be non-negative and not all zero")
    return [weight / sum(blend) for weight in blend]


def _check(styles: Sequence[Image.Image], size: int, style_scale: float,
           preserve_color: str, strength: float) -> None:
    if not styles:
        raise InputError("at least one style image is needed")
    if size < 1:
        raise InputError(f"size must be at least 1 pixel, got {size}")
    if style_scale <= 0:
        raise InputError(f"style_scale must be positive, got {style_scale}")
    if preserve_color not in PRESERVE_COLOR:
        raise InputError(f"preserve_color must be one of {', '.join(PRESERVE_COLOR)}, "
                         f"got {preserve_color!r}")
    if not 0.0 <= strength <= 1.0:
        raise InputError(f"strength must be between 0 and 1, got {strength}")


def stylize(content: Image.Image, styles: Sequence[Image.Image], *, size: int,
            style_scale: float = 1.0, blend: Sequence[float] = (),
            preserve_color: str = "none", strength: float = 1.0) -> Image.Image:
    """`content` rendered in the style of `styles` (mixed by `blend`), long edge `size`.

    Raises InputError for invalid arguments or missing or changed model files."""
    _check(styles, size, style_scale, preserve_color, strength)
    weights = _weights(blend, len(styles))
    output = size_for_long_edge(content.size, size)
    photo = resize(content.convert("RGB"), output)
    reference = photo if preserve_color == "histogram" else None
    vector = sum((weight * style_vector(style, style_scale, reference)
                  for style, weight in zip(styles, weights) if weight > 0),
                 np.zeros((1, 1, 1, 1), np.float32))
    if strength < 1.0:  # the content as its own painting, at the same scale
        vector = strength * vector + (1.0 - strength) * style_vector(photo, style_scale)
    rendered = render(photo, vector.astype(np.float32))
    if preserve_color == "luminance":
        rendered = color.recombine_chroma(rendered, _pixels(photo))
    return Image.fromarray(np.clip(rendered, 0, 255).round().astype(np.uint8), "RGB")
