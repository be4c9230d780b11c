"""Image input and output: decoding anything users throw at us into RGB, and PNGs that carry
their full settings so any result can be re-run from the file alone."""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageOps, PngImagePlugin, UnidentifiedImageError

from nfx.errors import InputError
from nfx.settings import Settings

MAX_PIXELS = 64_000_000  # far above any useful input; stops decompression bombs early
SETTINGS_KEY = "nfx:settings"
INFO_KEY = "nfx:info"


def _flatten_alpha(image: Image.Image) -> Image.Image:
    """Composite transparent images on white: what a user sees in a viewer."""
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # 16-bit/float greyscale: scale the real range to 8 bits (convert() would clip).
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        array = np.clip(array / top * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(array, "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        return _flatten_alpha(image)
    return image.convert("RGB")


SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _embedded_profile(image: Image.Image) -> ImageCms.ImageCmsProfile | None:
    """The picture's embedded ICC profile where it is not sRGB and fits its pixels (an RGB
    profile on RGB pixels, CMYK on CMYK); None otherwise, including for a broken profile,
    which leaves the pixels read as sRGB, as viewers do."""
    data = image.info.get("icc_profile")
    if not data:
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
        space = profile.profile.xcolor_space.strip()
        description = ImageCms.getProfileDescription(profile) or ""
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None
    if "srgb" in description.lower().replace(" ", ""):
        return None
    wanted = {"RGB": ("RGB", "RGBA", "P", "LA", "L"), "CMYK": ("CMYK",)}.get(space, ())
    return profile if image.mode in wanted and (space != "RGB" or image.mode != "L") else None


def _to_srgb(image: Image.Image, profile: ImageCms.ImageCmsProfile) -> Image.Image:
    """Pixels in `profile` converted to sRGB (perceptual intent): a Display P3 or Adobe RGB
    photo read as sRGB comes out with shifted colours."""
    try:
        converted = ImageCms.profileToProfile(image, profile, SRGB, outputMode="RGB")
        assert converted is not None, "not in place: it returns the new image"
        return converted
    except ImageCms.PyCMSError:
        return image.convert("RGB")


def color_profile(source: str | Path | bytes) -> str | None:
    """The name of the embedded colour profile `load_image` converts to sRGB ("Display
    P3"), or None: what a run's record says of its input."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else Path(source)
    try:
        with Image.open(stream) as image:
            profile = _embedded_profile(image)
            return (ImageCms.getProfileDescription(profile).strip() or "embedded profile"
                    ) if profile is not None else None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


def load_image(source: str | Path | bytes, name: str | None = None) -> Image.Image:
    """Decode a file path or bytes into an upright RGB image in sRGB (an embedded colour
    profile is converted), or raise InputError naming it."""
    label = name or (str(source) if not isinstance(source, bytes) else "image")
    if isinstance(source, bytes):
        stream: io.BytesIO | Path = io.BytesIO(source)
    else:
        stream = Path(source)
        if not stream.is_file():
            raise InputError(f"{label}: file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise InputError(f"{label}: {width}x{height} is too large "
                                     f"(more than {MAX_PIXELS // 1_000_000} megapixels)")
                image.load()
                profile = _embedded_profile(image)
                image = ImageOps.exif_transpose(image) or image
                if profile is not None and image.mode == "CMYK":
                    rgb = _to_srgb(image, profile)
                else:
                    rgb = _to_rgb(image)
                    if profile is not None:
                        rgb = _to_srgb(rgb, profile)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{label}: image is too large; the limit is "
                         f"{MAX_PIXELS // 1_000_000} megapixels") from None
    except UnidentifiedImageError:
        raise InputError(f"{label}: not an image file (or a format Pillow cannot read)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{label}: cannot read image ({exc})") from None
    if min(rgb.size) < 1:
        raise InputError(f"{label}: image is empty")
    return rgb


def size_for_long_edge(size: tuple[int, int], long_edge: int) -> tuple[int, int]:
    """(width, height) with the given long edge and the same aspect ratio."""
    width, height = size
    scale = long_edge / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def size_for_area(size: tuple[int, int], area: float) -> tuple[int, int]:
    """(width, height) covering about `area` pixels with the same aspect ratio."""
    width, height = size
    scale = (area / (width * height)) ** 0.5
    return max(1, round(width * scale)), max(1, round(height * scale))


def image_key(image: Image.Image) -> str:
    """A decoded picture's identity for in-process caches (the engine's targets, the
    feed-forward style vectors): a hash of its pixels and its size."""
    return hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest() + f"{image.size}"


def resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    if image.size == size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


PNG_COMPRESS_LEVEL = 1


def png_bytes(image: Image.Image, settings: Settings, extra: dict[str, Any] | None = None
              ) -> bytes:  # Any: JSON facts of any type
    """PNG with the full settings (and optional run facts) in text chunks."""
    meta = PngImagePlugin.PngInfo()
    meta.add_text(SETTINGS_KEY, settings.to_json())
    if extra:
        meta.add_text(INFO_KEY, json.dumps(extra, sort_keys=True, default=str))
    buffer = io.BytesIO()
    # zlib level 1: a third of level 6's time for files ~7% larger; at level 6 the encoding
    # was half a feed-forward job's time outside the network (bench/bench_previews.py)
    image.save(buffer, format="PNG", pnginfo=meta, compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def _png_text(source: str | Path | bytes) -> dict[str, str]:
    label = str(source) if not isinstance(source, bytes) else "image"
    stream = io.BytesIO(source) if isinstance(source, bytes) else Path(source)
    if isinstance(stream, Path) and not stream.is_file():
        raise InputError(f"{label}: file not found")
    try:
        with Image.open(stream) as image:
            return dict(getattr(image, "text", {}) or {})
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InputError(f"{label}: not a PNG image") from None


def read_png_settings(source: str | Path | bytes) -> Settings:
    """The settings embedded by png_bytes, or InputError if the file has none."""
    text = _png_text(source).get(SETTINGS_KEY)
    if text is None:
        label = str(source) if not isinstance(source, bytes) else "image"
        raise InputError(f"{label}: no NFX settings embedded (not made by NFX?)")
    return Settings.from_json(text, strict=False)


def read_png_info(source: str | Path | bytes) -> dict[str, Any]:  # Any: parsed JSON
    """The run facts embedded by png_bytes (content/style names, losses, ...), or {}."""
    text = _png_text(source).get(INFO_KEY)
    try:
        return json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}


def thumbnail_bytes(image: Image.Image, size: int = 256) -> bytes:
    """A small JPEG for gallery grids (kilobytes, not megabytes)."""
    thumb = image.convert("RGB")
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    thumb.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
