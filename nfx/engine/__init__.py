"""The style-transfer engine (PyTorch): VGG-19, the loss terms, the optimisation over a
pyramid of scales, tiling. Knows nothing of the database; `nfx.queue.worker` joins the two."""

from nfx.engine.engine import (PREVIEW_EDGE, Engine, Progress, downscaled, pick_device,
                               resolve_precision)

__all__ = ["Engine", "Progress", "PREVIEW_EDGE", "downscaled", "pick_device",
           "resolve_precision"]
