"""The New batch page's regions: a mask per photo, painted in the browser or uploaded, and
each of its colours assigned a style entry of the batch or "keep photo" (nfx.regions).

A painted mask is the canvas's strokes over an unpainted background (`UNPAINTED`), at the
canvas's size (the photo's aspect ratio); it is stored like an upload, as a picture with the
role "mask", so the gallery keeps it by hash and a re-run finds it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from nfx.app.context import blob, store
from nfx.errors import InputError, NFXError
from nfx.images import load_image, thumbnail_bytes
from nfx.labels import stem
from nfx.limits import limits_from_environment
from nfx.planning.batch import MaskPlan
from nfx.regions import Mask, PHOTO, Region, RegionMap, check, check_aspect, snap
from nfx.store.records import ImageRecord

__all__ = ["PALETTE", "UNPAINTED", "KEEP_PHOTO", "CANVAS_EDGE", "MaskChoice", "add_mask",
           "painted_mask", "is_blank", "mask_colours", "canvas_size", "overlay", "mask_plan",
           "mask_plans", "mask_record", "photo_picture", "default_assignments", "colour_name",
           "stem", "InputError"]

# The brush colours offered (distinct at a glance, none white): name, hex
PALETTE = (("Red", "#e6194b"), ("Blue", "#4363d8"), ("Green", "#3cb44b"),
           ("Yellow", "#ffe119"), ("Magenta", "#f032e6"), ("Cyan", "#42d4f4"),
           ("Orange", "#f58231"))
UNPAINTED = "#ffffff"  # what a painted mask has where no stroke went
KEEP_PHOTO = PHOTO  # an assignment: no style there
CANVAS_EDGE = 512  # px: the canvas's long edge in the page


def colour_name(colour: str) -> str:
    """'Red' for a palette colour, 'unpainted' for the background, else the hex."""
    names = {hex_: name for name, hex_ in PALETTE} | {UNPAINTED: "Unpainted"}
    return names.get(colour, colour)


@dataclass(frozen=True)
class MaskChoice:
    """A photo's mask in the form: the stored mask and each colour's assignment, a 1-based
    style entry number, KEEP_PHOTO, or None (not chosen yet)."""

    mask_id: int
    assignments: Mapping[str, int | str | None]


def add_mask(name: str, data: bytes, photo: ImageRecord) -> ImageRecord:
    """Store an uploaded or painted mask for `photo`, checked now: not an image, more than
    eight colours, no flat colour, or the wrong aspect ratio, each in one line (nothing is
    stored then)."""
    limits_from_environment().check_upload(name, data)
    mask = snap(load_image(data, name))
    check_aspect(mask, (photo.width, photo.height))  # assignments come later, in the form
    try:
        return store().add_image(data, name=name, role="mask")
    except NFXError as exc:
        raise InputError(str(exc) if name in str(exc) else f"{name}: {exc}") from None


def canvas_size(photo: ImageRecord, edge: int = CANVAS_EDGE) -> tuple[int, int]:
    """The canvas's (width, height): the photo's aspect ratio, the long edge `edge`."""
    scale = edge / max(photo.width, photo.height)
    return max(1, round(photo.width * scale)), max(1, round(photo.height * scale))


def painted_mask(rgba: np.ndarray) -> bytes:
    """The canvas's RGBA strokes over the unpainted background, as a PNG."""
    strokes = Image.fromarray(np.asarray(rgba, dtype=np.uint8), "RGBA")
    background = Image.new("RGBA", strokes.size, UNPAINTED)
    out = io.BytesIO()
    Image.alpha_composite(background, strokes).convert("RGB").save(out, "PNG")
    return out.getvalue()


def is_blank(rgba: np.ndarray | None) -> bool:
    """Whether the canvas has no stroke yet."""
    return rgba is None or not bool(np.asarray(rgba)[..., 3].any())


def mask_record(mask_id: int) -> ImageRecord:
    return store().get_image(mask_id)


def photo_picture(photo: ImageRecord, edge: int = CANVAS_EDGE) -> Image.Image:
    """The photo at most `edge` px: the canvas's background."""
    picture = load_image(blob(photo.sha256))
    picture.thumbnail((edge, edge), Image.Resampling.LANCZOS)
    return picture


@lru_cache(maxsize=64)
def _snapped(sha256: str) -> Mask:
    return snap(load_image(blob(sha256)))


def mask_colours(mask: ImageRecord) -> list[tuple[str, float]]:
    """A mask's colours after snapping and each one's share of the picture, largest first."""
    shares = _snapped(mask.sha256).shares()
    return sorted(shares.items(), key=lambda item: -item[1])


def overlay(photo: ImageRecord, mask: ImageRecord, edge: int = 384) -> bytes:
    """The photo with its mask's colours laid over at half strength: what each region is."""
    picture = load_image(blob(photo.sha256))
    colours = _snapped(mask.sha256).picture().resize(picture.size, Image.Resampling.NEAREST)
    return thumbnail_bytes(Image.blend(picture, colours, 0.5), edge)


def mask_plan(choice: MaskChoice, mask: ImageRecord, photo: ImageRecord, entry_count: int
              ) -> MaskPlan:
    """The batch's plan of a masked photo; InputError in one line for a colour with no
    assignment, an entry that is no longer in the batch, or a mask every colour of which
    keeps the photo."""
    colours = [colour for colour, _ in mask_colours(mask)]
    regions = []
    for colour in colours:
        value = choice.assignments.get(colour)
        if value is None:
            raise InputError(f"{photo.name}: mask colour {colour_name(colour)} ({colour}) has "
                             "no assignment; choose a style or “Keep photo”")
        if value == KEEP_PHOTO:
            regions.append(Region(colour, ()))
        elif isinstance(value, int) and 1 <= value <= entry_count:
            regions.append(Region(colour, (value,)))
        else:
            raise InputError(f"{photo.name}: mask colour {colour_name(colour)} is assigned "
                             f"style {value}, which is not in the batch (it has "
                             f"{entry_count})")
    region_map = RegionMap.of(regions)
    check(_snapped(mask.sha256), region_map, (photo.width, photo.height), entry_count)
    return MaskPlan(mask.id, region_map)


def default_assignments(colours: Sequence[str], entry_count: int) -> dict[str, int | str | None]:
    """A first guess: the unpainted background keeps the photo, the painted colours take the
    batch's style entries in turn; beyond them, nothing (the user chooses)."""
    guess: dict[str, int | str | None] = {}
    entry = 1
    for colour in colours:
        if colour == UNPAINTED:
            guess[colour] = KEEP_PHOTO
        elif entry <= entry_count:
            guess[colour], entry = entry, entry + 1
        else:
            guess[colour] = None
    return guess


def mask_plans(choices: Mapping[int, MaskChoice], photos: Sequence[ImageRecord],
               entry_count: int) -> dict[int, MaskPlan]:
    """The plans of the chosen photos' masks (InputError in one line for the first bad one)."""
    by_id = {p.id: p for p in photos}
    return {photo_id: mask_plan(choice, mask_record(choice.mask_id), by_id[photo_id],
                                entry_count)
            for photo_id, choice in choices.items() if photo_id in by_id}
