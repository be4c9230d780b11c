"""A feed-forward job's run, recorded like an optimisation's, so that the worker, the CLI and
the gallery treat both methods alike (the PNG's settings say `method: feedforward`)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from PIL import Image

from nfx.feedforward.models import device
from nfx.feedforward.network import stylize
from nfx.run_record import RunRecord
from nfx.settings import Settings

PRECISION = "int8"  # the Magenta models' quantised weights, as shipped


def feedforward_run(content: Image.Image, styles: Sequence[Image.Image],
                    settings: Settings) -> RunRecord:
    """`content` in the style of `styles`, rendered with the settings that apply to the
    feed-forward method (size, style scale and blend, preserve colour, strength)."""
    started = time.perf_counter()
    image = stylize(content, styles, size=settings.size, style_scale=settings.style_scale,
                    blend=settings.style_blend, preserve_color=settings.preserve_color,
                    strength=settings.strength)
    seconds = time.perf_counter() - started
    return RunRecord(image=image, settings=settings, losses={}, history=[], seconds=seconds,
                     device=f"{device()} (onnxruntime)", precision=PRECISION,
                     timings={"render": seconds})
