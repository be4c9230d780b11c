"""Sample content and style images drawn by code, so a fresh install has something to stylise.

Everything here is procedural (numpy + PIL, fixed seeds): no files are shipped or downloaded,
and the same call always gives the same pixels, so adding the samples twice stores them once.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


@dataclass(frozen=True)
class Sample:
    name: str
    role: str  # "content" | "style"
    draw: Callable[[], Image.Image]

    def png(self) -> bytes:
        buffer = io.BytesIO()
        self.draw().save(buffer, format="PNG", optimize=True)
        return buffer.getvalue()


def _smooth_noise(height: int, width: int, rng: np.random.Generator,
                  octaves: int = 4) -> np.ndarray:
    """Value noise in [0, 1] with structure at several scales (for skies, water, paint)."""
    total = np.zeros((height, width))
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        cells = 2 ** (octave + 2)
        grid = rng.random((cells + 1, cells + 1))
        layer = Image.fromarray((grid * 255).astype(np.uint8)).resize(
            (width, height), Image.Resampling.BICUBIC)
        total += amplitude * np.asarray(layer, dtype=float) / 255
        norm += amplitude
        amplitude /= 2
    return total / norm


def _ridge(width: int, base: float, height: float, rng: np.random.Generator) -> np.ndarray:
    """A mountain skyline: y per x column, from a sum of random sines."""
    x = np.linspace(0, 1, width)
    y = np.full(width, base)
    harmonics = range(1, 6)
    norm = sum(1 / k for k in harmonics)
    for k in harmonics:
        y -= height / k / norm * np.abs(np.sin(x * np.pi * rng.uniform(1, 3) * k
                                              + rng.uniform(0, 6)))
    return y


def landscape(width: int = 512, height: int = 384) -> Image.Image:
    """Sunset over mountains and a lake, with a few trees: the classic content picture."""
    rng = np.random.default_rng(7)
    yy = np.linspace(0, 1, height)[:, None]
    sky_top, sky_low = np.array([40, 70, 150]), np.array([250, 170, 90])
    sky = sky_top + (sky_low - sky_top) * yy ** 0.8
    clouds = _smooth_noise(height, width, rng)[..., None]
    pixels = sky[:, None, :] * np.ones((1, width, 1)) + (clouds - 0.5) * 60
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    horizon = int(height * 0.62)
    draw.ellipse([width * 0.64, height * 0.12, width * 0.76, height * 0.12 + width * 0.12],
                 fill=(255, 225, 140))
    for base, rise, colour in ((0.55, 0.30, (90, 80, 120)), (0.62, 0.18, (50, 60, 80))):
        ridge = _ridge(width, base * height, rise * height, rng)
        points = [(0, horizon)] + [(x, float(y)) for x, y in enumerate(ridge)] + [(width, horizon)]
        draw.polygon(points, fill=colour)
    water = np.asarray(image)[horizon - (height - horizon):horizon][::-1].astype(float)
    ripples = _smooth_noise(height - horizon, width, rng, octaves=3)[..., None]
    water = water * 0.6 + np.array([20, 40, 70]) * 0.4 + (ripples - 0.5) * 40
    image.paste(Image.fromarray(np.clip(water, 0, 255).astype(np.uint8)), (0, horizon))
    for _ in range(9):
        x = rng.uniform(0.02, 0.35) * width
        size = rng.uniform(0.06, 0.12) * height
        base_y = horizon + rng.uniform(0.01, 0.05) * height
        draw.rectangle([x - size * 0.06, base_y - size * 0.3, x + size * 0.06, base_y],
                       fill=(60, 40, 25))
        draw.polygon([(x, base_y - size * 1.3), (x - size * 0.35, base_y - size * 0.25),
                      (x + size * 0.35, base_y - size * 0.25)], fill=(25, 70, 40))
    return image.filter(ImageFilter.SMOOTH)


def still_life(width: int = 512, height: int = 384) -> Image.Image:
    """Geometric still life: a table, a vase, spheres and a framed window, lit from the left."""
    rng = np.random.default_rng(11)
    wall = _smooth_noise(height, width, rng, octaves=3)[..., None] * 30 + np.array([200, 190, 170])
    image = Image.fromarray(np.clip(wall, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    draw.rectangle([width * 0.58, height * 0.08, width * 0.9, height * 0.48],
                   fill=(120, 170, 220), outline=(90, 60, 40), width=8)
    draw.line([width * 0.74, height * 0.08, width * 0.74, height * 0.48], fill=(90, 60, 40),
              width=6)
    draw.polygon([(0, height * 0.68), (width, height * 0.62), (width, height), (0, height)],
                 fill=(120, 70, 40))
    for cx, cy, r, colour in ((0.22, 0.6, 0.09, (200, 40, 40)), (0.38, 0.64, 0.06, (230, 180, 40)),
                              (0.75, 0.63, 0.07, (70, 130, 60))):
        cx, cy, r = cx * width, cy * height, r * width
        for step in range(12, 0, -1):  # shaded sphere: darker rim, lighter highlight
            shade = 0.55 + 0.45 * (1 - step / 12)
            rr = r * step / 12
            offset = (r - rr) * 0.4
            draw.ellipse([cx - rr - offset, cy - rr - offset, cx + rr - offset, cy + rr - offset],
                         fill=tuple(int(c * shade + 40 * (1 - step / 12)) for c in colour))
    draw.polygon([(width * 0.5, height * 0.3), (width * 0.58, height * 0.3),
                  (width * 0.62, height * 0.62), (width * 0.46, height * 0.62)],
                 fill=(40, 80, 140))
    draw.ellipse([width * 0.47, height * 0.26, width * 0.61, height * 0.33], fill=(30, 60, 110))
    return image.filter(ImageFilter.SMOOTH_MORE)


def swirls(size: int = 384) -> Image.Image:
    """Short strokes following a swirling flow field on deep blue: night-sky brushwork."""
    rng = np.random.default_rng(3)
    image = Image.new("RGB", (size, size), (20, 30, 80))
    draw = ImageDraw.Draw(image)
    palette = [(30, 60, 140), (60, 100, 180), (230, 200, 80), (250, 240, 170), (20, 40, 100)]
    centres = rng.uniform(0, size, (4, 2))
    for _ in range(2600):
        x, y = rng.uniform(0, size, 2)
        dx, dy = 0.0, 0.0
        for cx, cy in centres:  # sum of vortices gives the flow direction
            rx, ry = x - cx, y - cy
            d = rx * rx + ry * ry + 200
            dx, dy = dx - ry / d * 400, dy + rx / d * 400
        norm = max(np.hypot(dx, dy), 1e-6)
        length = rng.uniform(6, 14)
        end = (x + dx / norm * length, y + dy / norm * length)
        draw.line([(x, y), end], fill=palette[rng.integers(len(palette))], width=3)
    return image


def mosaic(size: int = 384) -> Image.Image:
    """Voronoi tiles in warm colours with dark grout: stained glass."""
    rng = np.random.default_rng(5)
    points = rng.uniform(0, size, (90, 2))
    colours = rng.choice(np.array([[200, 50, 40], [240, 170, 40], [40, 90, 160], [60, 140, 90],
                                   [230, 220, 190], [120, 40, 110]]), len(points))
    yy, xx = np.mgrid[0:size, 0:size]
    dist = (xx[..., None] - points[:, 0]) ** 2 + (yy[..., None] - points[:, 1]) ** 2
    order = np.sort(dist, axis=-1)
    nearest = np.argmin(dist, axis=-1)
    edge = (np.sqrt(order[..., 1]) - np.sqrt(order[..., 0])) < 3
    shading = 0.85 + 0.15 * _smooth_noise(size, size, rng, octaves=2)[..., None]
    pixels = colours[nearest].astype(float) * shading
    pixels[edge] = (25, 20, 20)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def brushstrokes(size: int = 384) -> Image.Image:
    """Broad layered strokes of an earthy palette at a few angles: impasto."""
    rng = np.random.default_rng(9)
    image = Image.new("RGB", (size, size), (180, 150, 110))
    draw = ImageDraw.Draw(image)
    palette = [(150, 60, 30), (210, 160, 70), (90, 110, 60), (60, 50, 40), (230, 210, 170)]
    for _ in range(700):
        x, y = rng.uniform(-20, size + 20, 2)
        angle = rng.choice([0.4, 0.9, 2.3]) + rng.normal(0, 0.15)
        length = rng.uniform(15, 40)
        end = (x + np.cos(angle) * length, y + np.sin(angle) * length)
        draw.line([(x, y), end], fill=palette[rng.integers(len(palette))],
                  width=int(rng.uniform(4, 10)))
    return image.filter(ImageFilter.SMOOTH)


def waves(size: int = 384) -> Image.Image:
    """Interfering sine bands in blue and white: a woodblock-print sea."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    field = np.sin(xx * 18 + np.sin(yy * 9) * 2.5) + np.sin(yy * 22 + np.cos(xx * 7) * 2)
    bands = (np.floor((field + 2) * 2.5) % 3)[..., None]
    palette = np.array([[20, 50, 110], [90, 150, 200], [240, 240, 230]])
    return Image.fromarray(palette[bands[..., 0].astype(int)].astype(np.uint8), "RGB")


SAMPLES: tuple[Sample, ...] = (
    Sample("sample-landscape.png", "content", landscape),
    Sample("sample-still-life.png", "content", still_life),
    Sample("sample-swirls.png", "style", swirls),
    Sample("sample-mosaic.png", "style", mosaic),
    Sample("sample-brushstrokes.png", "style", brushstrokes),
    Sample("sample-waves.png", "style", waves),
)
