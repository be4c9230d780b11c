"""PIL images to and from the engine's tensors: the only place pixels meet torch, so that
image I/O, the store and the app never load it."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> float tensor (1, 3, H, W) in 0-1."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_pil(tensor: torch.Tensor) -> Image.Image:
    """Float tensor (1, 3, H, W) in 0-1 -> PIL RGB (clamped, rounded)."""
    array = tensor.detach().float().squeeze(0).clamp(0, 1).mul(255).round()
    return Image.fromarray(array.byte().permute(1, 2, 0).cpu().numpy(), "RGB")
