"""VGG-19's layer layout, in one place: names, channels, where it pools, each layer's stride
and receptive field. Torch-free (as pystiche's multi-layer encoder keeps its layer list apart
from the network), so that the settings, the memory plan, the tile geometry and the network
itself all read the same table.

VGG-19 ("E" configuration, Simonyan & Zisserman 2015) is five blocks of 3×3 convolutions,
each convolution followed by a ReLU, each block but the last followed by a 2×2 pooling of
stride 2. A layer is named after its ReLU: "relu3_1" is block 3's first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

BLOCKS: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))
"""(channels, convolutions) of each block."""


@dataclass(frozen=True)
class VGGLayer:
    """One ReLU output of the stack."""

    name: str  # "relu3_1"
    index: int  # its place in the stack, 0-based
    block: int  # 1-based
    conv: int  # 1-based, within its block
    channels: int

    @property
    def stride(self) -> int:
        """Pixels per position (the poolings before it halve the grid): relu3_1 is 4."""
        return 2 ** (self.block - 1)

    @property
    def weights_name(self) -> str:
        """The name of its convolution in the original (Keras) weight files."""
        return f"block{self.block}_conv{self.conv}"

    @property
    def reach(self) -> int:
        """How far (pixels) a position's receptive field reaches beyond its own stride cell:
        the input interval feeding position 0, walked back through every convolution (±1)
        and pooling (×2) before it."""
        low, high = 0, 0
        for layer in reversed(LAYERS[:self.index + 1]):
            low, high = low - 1, high + 1  # its 3×3 convolution
            if layer.conv == 1 and layer.block > 1:  # the pooling that ends the block before
                low, high = 2 * low, 2 * high + 1
        return max(-low, high - (self.stride - 1))

    @property
    def last_of_block(self) -> bool:
        """A pooling follows it (except after the last block)."""
        return self.conv == BLOCKS[self.block - 1][1]


LAYERS: tuple[VGGLayer, ...] = tuple(
    VGGLayer(f"relu{block}_{conv}", index, block, conv, channels)
    for index, (block, conv, channels) in enumerate(
        (block, conv, channels) for block, (channels, count) in enumerate(BLOCKS, 1)
        for conv in range(1, count + 1)))
LAYER_NAMES: tuple[str, ...] = tuple(layer.name for layer in LAYERS)
BY_NAME: dict[str, VGGLayer] = {layer.name: layer for layer in LAYERS}
Layer = Literal[LAYER_NAMES]  # type: ignore[valid-type]


def layer(name: str) -> VGGLayer:
    return BY_NAME[name]


def deepest(names: Iterable[str]) -> VGGLayer:
    """The deepest of these layers: how far a forward pass must run."""
    return max((BY_NAME[name] for name in names), key=lambda found: found.index)


def in_order(names: Iterable[str]) -> list[str]:
    """Layer names, each once, shallowest first."""
    return sorted(set(names), key=lambda name: BY_NAME[name].index)
