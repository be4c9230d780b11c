"""Shared fixtures: small real images made in code, and a fresh SQLite database file."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image


def make_image(width: int, height: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A smooth random picture with structure at several scales (a real test input)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(2, 12, size=3)
        channels.append(np.sin(fx * x * 6.28 + phase) * np.cos(fy * y * 6.28) * 0.5 + 0.5)
    array = (np.stack(channels, axis=-1) * 255).astype(np.uint8)
    return Image.fromarray(array, "RGB").convert(mode)


def image_bytes(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def synthetic_run(claim, *, total: float = 1.0, seconds: float = 0.5, size=(32, 24),
                  history=None):
    """A finished run of a claimed job with a made-up picture (for testing the store and the
    queue without the engine): the arguments of `queue.finish` after the claim."""
    from nfx.images import thumbnail_bytes
    from nfx.run_record import RunRecord, run_png

    picture = make_image(*size, seed=claim.job_id)
    run = RunRecord(image=picture, settings=claim.settings,
                    losses={"content": 1.0, "style": 2.0, "tv": 0.1, "total": total},
                    history=history if history is not None else [{"iteration": 1,
                                                                   "total": total}],
                    seconds=seconds, device="cpu", precision="fp32")
    return run, run_png(run, claim.content, claim.styles), thumbnail_bytes(picture, 64)


@pytest.fixture
def content_image() -> Image.Image:
    return make_image(48, 32, seed=1)


@pytest.fixture
def style_image() -> Image.Image:
    return make_image(40, 40, seed=2)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'nfx.db'}"
