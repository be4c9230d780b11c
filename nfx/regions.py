"""Regions: a mask maps areas of the photo to styles, or keeps the photo there (issue #23).

The method is Gatys et al., "Controlling Perceptual Factors in Neural Style Transfer" (CVPR
2017), section 4: guided Gram matrices, each region's style statistics taken over the
positions inside it. Here a mask is a picture of flat colours (at most `MAX_REGIONS`) with the
photo's aspect ratio; each colour is assigned a *style entry*, one painting by its 1-based
position among the run's styles or a mix (`1+2`, weighted by `style_blend`), or `photo`: no
style term there, the photo is kept.

This module is the mask as a record: parsing assignments, snapping a painted or
anti-aliased mask to its flat colours, refusing bad masks in one line, and the soft weight
of every region at any size (the `region_feather` blend). Torch-free, so the CLI, the app and
the store check a mask before anything is queued; the engine turns the weights into guided
style terms (nfx.engine.guided).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from nfx.errors import InputError

MAX_REGIONS = 8
ASPECT_TOLERANCE = 0.01  # a mask's width/height may differ from the photo's by 1%
PHOTO = "photo"  # the assignment that keeps the photo
# A flat colour has at least this share of the mask's pixels (and 4 of them) whose four
# neighbours have the same colour: anti-aliased edges and stray pixels have none.
FLAT_SHARE = 1e-4

_HEX = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")


def parse_colour(text: str) -> str:
    """'#FF0000', 'ff0000' or '#f00' -> '#ff0000'."""
    found = _HEX.fullmatch(text.strip())
    if not found:
        raise InputError(f"region colour {text.strip()!r} is not a hex colour like #ff0000")
    digits = found.group(1).lower()
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return "#" + digits


def colour_hex(rgb: Iterable[int]) -> str:
    return "#" + "".join(f"{int(c):02x}" for c in rgb)


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


@dataclass(frozen=True)
class Region:
    """One mask colour and what it gets: style positions (1-based), or () to keep the photo."""

    colour: str  # '#rrggbb'
    styles: tuple[int, ...]

    @property
    def keeps_photo(self) -> bool:
        return not self.styles

    @property
    def assignment(self) -> str:
        """As typed: '1', '1+2' or 'photo'."""
        return "+".join(str(i) for i in self.styles) if self.styles else PHOTO


def parse_assignment(text: str) -> tuple[int, ...]:
    """'2' -> (2,), '1+2' -> (1, 2), 'photo' -> ()."""
    text = text.strip().lower()
    if text in (PHOTO, "keep", "none"):
        return ()
    try:
        styles = tuple(int(part) for part in text.split("+"))
    except ValueError:
        raise InputError(f"region assignment {text!r} is not a style number (1, 2, 1+2) "
                         f"or {PHOTO!r}") from None
    if any(i < 1 for i in styles):
        raise InputError(f"region assignment {text!r}: style numbers start at 1")
    return tuple(dict.fromkeys(styles))


def parse_region(text: str) -> Region:
    """'#ff0000=1' (the CLI's --region) -> Region."""
    colour, sep, assignment = text.partition("=")
    if not sep:
        raise InputError(f"region {text!r} must look like '#ff0000=1', '#00ff00=1+2' or "
                         f"'#000000={PHOTO}'")
    return Region(parse_colour(colour), parse_assignment(assignment))


@dataclass(frozen=True)
class RegionMap:
    """Every mask colour's assignment, in a canonical order (by colour): a run's identity
    and its record do not depend on the order they were typed in."""

    regions: tuple[Region, ...]

    @classmethod
    def of(cls, regions: Iterable[Region]) -> RegionMap:
        by_colour: dict[str, Region] = {}
        for region in regions:
            if region.colour in by_colour and by_colour[region.colour] != region:
                raise InputError(f"region colour {region.colour} is assigned twice")
            by_colour[region.colour] = region
        return cls(tuple(by_colour[c] for c in sorted(by_colour)))

    @classmethod
    def parse(cls, texts: Iterable[str]) -> RegionMap:
        return cls.of(parse_region(text) for text in texts)

    def as_json(self) -> list[list[str]]:
        """[["#ff0000", "1"], ["#000000", "photo"]]: the database's and the PNG's form."""
        return [[r.colour, r.assignment] for r in self.regions]

    @classmethod
    def from_json(cls, data: Sequence[Sequence[str]]) -> RegionMap:
        return cls.of(Region(parse_colour(c), parse_assignment(a)) for c, a in data)

    @property
    def colours(self) -> tuple[str, ...]:
        return tuple(r.colour for r in self.regions)

    @property
    def style_positions(self) -> tuple[int, ...]:
        """The style positions any region uses, in order."""
        return tuple(sorted({i for r in self.regions for i in r.styles}))

    def text(self) -> str:
        """'#000000=photo #ff0000=1': for labels and tables."""
        return " ".join(f"{r.colour}={r.assignment}" for r in self.regions)


@dataclass(frozen=True)
class Mask:
    """A mask snapped to its flat colours: each pixel's index into `palette`."""

    labels: np.ndarray  # (H, W) uint8
    palette: tuple[str, ...]  # '#rrggbb', the flat colours, in order of first appearance

    @property
    def size(self) -> tuple[int, int]:
        return self.labels.shape[1], self.labels.shape[0]

    def shares(self) -> dict[str, float]:
        """Each colour's share of the mask's area."""
        counts = np.bincount(self.labels.ravel(), minlength=len(self.palette))
        return {c: float(n) / self.labels.size for c, n in zip(self.palette, counts)}

    def picture(self) -> Image.Image:
        """The snapped mask as an RGB picture (what the engine sees)."""
        colours = np.array([_rgb(c) for c in self.palette], dtype=np.uint8)
        return Image.fromarray(colours[self.labels], "RGB")


def snap(image: Image.Image) -> Mask:
    """The mask's flat colours, every other pixel (an anti-aliased edge, a stray dot) snapped
    to the nearest of them; InputError if more than MAX_REGIONS remain or none is flat."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    codes = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) \
        | rgb[..., 2]
    flat = np.ones(codes.shape, dtype=bool)
    flat[1:, :] &= codes[1:, :] == codes[:-1, :]
    flat[:-1, :] &= codes[:-1, :] == codes[1:, :]
    flat[:, 1:] &= codes[:, 1:] == codes[:, :-1]
    flat[:, :-1] &= codes[:, :-1] == codes[:, 1:]
    values, counts = np.unique(codes[flat], return_counts=True)
    keep = counts >= max(4, FLAT_SHARE * codes.size)
    palette_codes = values[keep]
    if len(palette_codes) == 0:
        raise InputError("mask has no flat colour areas; paint regions in flat colours")
    if len(palette_codes) > MAX_REGIONS:
        raise InputError(f"mask has {len(palette_codes)} colours after snapping its edges; "
                         f"at most {MAX_REGIONS} regions are allowed")
    # order of first appearance (row by row), so a palette reads top to bottom
    first = [int(np.argmax(codes.ravel() == code)) for code in palette_codes]
    palette_codes = palette_codes[np.argsort(first)]
    labels = np.full(codes.shape, 255, dtype=np.uint8)
    for index, code in enumerate(palette_codes):
        labels[codes == code] = index
    loose = labels == 255
    if loose.any():  # the nearest flat colour, in RGB
        centres = np.array([[(c >> 16) & 255, (c >> 8) & 255, c & 255] for c in palette_codes],
                           dtype=np.float32)
        pixels = rgb[loose].astype(np.float32)
        distances = ((pixels[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
        labels[loose] = distances.argmin(1).astype(np.uint8)
    palette = tuple(colour_hex(((c >> 16) & 255, (c >> 8) & 255, c & 255))
                    for c in palette_codes)
    return Mask(labels, palette)


def identity(mask_sha256: str, regions: RegionMap) -> list[object]:
    """What a run's identity (nfx.planning.batch.input_digest) adds for its regions: the
    mask's bytes, by sha256, and every colour's assignment."""
    return [mask_sha256, regions.as_json()]


def check_aspect(mask: Mask, photo_size: tuple[int, int]) -> None:
    """Refuse, in one line, a mask whose aspect ratio is not the photo's."""
    (mw, mh), (pw, ph) = mask.size, photo_size
    ratio = (mw / mh) / (pw / ph)
    if abs(ratio - 1) > ASPECT_TOLERANCE:
        raise InputError(f"mask is {mw}×{mh} but the photo is {pw}×{ph}: their aspect ratios "
                         f"differ by {abs(ratio - 1):.1%} (at most {ASPECT_TOLERANCE:.0%})")


def check(mask: Mask, regions: RegionMap, photo_size: tuple[int, int], style_count: int
          ) -> None:
    """Refuse, in one line, a mask and assignments that cannot make a run."""
    check_aspect(mask, photo_size)
    unassigned = [c for c in mask.palette if c not in regions.colours]
    if unassigned:
        has = "has" if len(unassigned) == 1 else "have"
        raise InputError(f"mask colour {', '.join(unassigned)} {has} no assignment; add "
                         f"--region '{unassigned[0]}=1' (a style number) or "
                         f"'{unassigned[0]}={PHOTO}'")
    absent = [c for c in regions.colours if c not in mask.palette]
    if absent:
        raise InputError(f"region colour {', '.join(absent)} is not in the mask (its colours: "
                         f"{', '.join(mask.palette)})")
    if all(r.keeps_photo for r in regions.regions):
        raise InputError("every region keeps the photo; assign at least one colour a style")
    wrong = [i for i in regions.style_positions if i > style_count]
    if wrong:
        raise InputError(f"region style {wrong[0]} is out of range: the run has "
                         f"{style_count} style image{'s' if style_count != 1 else ''}")


def read_mask(image: Image.Image, regions: RegionMap, photo_size: tuple[int, int],
              style_count: int) -> Mask:
    """Snap and check a mask picture against its assignments and the photo."""
    mask = snap(image)
    check(mask, regions, photo_size, style_count)
    return mask


def weights(mask: Mask, regions: RegionMap, size: tuple[int, int], feather: float
            ) -> np.ndarray:
    """Each region's soft weight at `size` (width, height), as (len(regions), H, W) float32
    summing to 1 at every pixel: area-averaged from the mask (so a small size sees mixed
    edges, not jagged ones), then blurred with a Gaussian of standard deviation feather / 2
    pixels, so one region gives way to the next over about `feather` pixels."""
    layers = []
    for region in regions.regions:
        index = mask.palette.index(region.colour)
        one = Image.fromarray((mask.labels == index).astype(np.float32), "F")
        layers.append(gaussian_blur(np.asarray(one.resize(size, Image.Resampling.BOX)),
                                    feather / 2))
    stack = np.stack(layers)
    total = stack.sum(0, keepdims=True)
    # where rounding left no weight at all (far from any edge it cannot), the nearest label
    stack = np.where(total > 0, stack / np.maximum(total, 1e-6), 1.0 / len(layers))
    return stack.astype(np.float32)


def kept_weight(mask: Mask, regions: RegionMap, size: tuple[int, int], feather: float
                ) -> np.ndarray | None:
    """How much of each pixel is the photo's own (H, W): the soft weight of the regions that
    keep the photo; None when none does."""
    keep = [i for i, r in enumerate(regions.regions) if r.keeps_photo]
    if not keep:
        return None
    return weights(mask, regions, size, feather)[keep].sum(0)


def gaussian_blur(values: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of a 2-D float array, as three box blurs (their variance adds up to
    sigma², a close Gaussian at O(pixels) whatever sigma); edges repeat their values."""
    width = int(round((4 * sigma * sigma + 1) ** 0.5))
    if sigma <= 0 or width < 2:
        return values.astype(np.float32)
    out = values.astype(np.float64)
    for _ in range(3):
        for axis in (0, 1):
            out = _box(out, width, axis)
    return out.astype(np.float32)


def _box(values: np.ndarray, width: int, axis: int) -> np.ndarray:
    """The mean over a window of `width` along `axis` (edges repeated), by cumulative sums."""
    before, after = width // 2, width - 1 - width // 2
    pad = [(0, 0), (0, 0)]
    pad[axis] = (before + 1, after)
    sums = np.cumsum(np.pad(values, pad, mode="edge"), axis=axis)
    length = values.shape[axis]
    upper = np.take(sums, np.arange(width, width + length), axis=axis)
    lower = np.take(sums, np.arange(0, length), axis=axis)
    return (upper - lower) / width


@dataclass(frozen=True)
class RegionInput:
    """A run's regions: the mask (snapped), what each colour gets, and the mask file's
    identity: its name, the sha256 of its bytes (the gallery's key for it, as for a photo),
    and its path when it was read from a file."""

    mask: Mask
    regions: RegionMap
    sha256: str
    name: str = "mask.png"
    path: str | None = None

    @classmethod
    def of(cls, picture: Image.Image, data: bytes, regions: RegionMap,
           photo_size: tuple[int, int], style_count: int, name: str = "mask.png",
           path: str | None = None) -> RegionInput:
        """The regions of a mask file's bytes (`picture` decoded from them), checked."""
        return cls.checked(picture, hashlib.sha256(data).hexdigest(), regions, photo_size,
                           style_count, name, path)

    @classmethod
    def checked(cls, picture: Image.Image, sha256: str, regions: RegionMap,
                photo_size: tuple[int, int], style_count: int, name: str = "mask.png",
                path: str | None = None) -> RegionInput:
        """The regions of a mask known by its sha256 (from the gallery), checked."""
        return cls(read_mask(picture, regions, photo_size, style_count), regions, sha256,
                   name, path)

