"""PIL images to and from the engine's pixel tensors: the one place pixels meet torch, so
that image I/O, the store and the app never load it. The engine works in 0-255 RGB pixels
(the Caffe weights' own range), (1, 3, H, W) float32."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def to_pixels(image: Image.Image, device: torch.device | str | None = None) -> torch.Tensor:
    """PIL RGB -> float tensor (1, 3, H, W) in 0-255, on `device`."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32)
    pixels = torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()
    return pixels if device is None else pixels.to(device)


def to_image(pixels: torch.Tensor) -> Image.Image:
    """Float tensor (1, 3, H, W) in 0-255 -> PIL RGB (clamped, rounded)."""
    array = pixels.detach().float().squeeze(0).clamp(0, 255).round()
    return Image.fromarray(array.byte().permute(1, 2, 0).cpu().numpy(), "RGB")
