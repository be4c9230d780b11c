"""Feed-forward style transfer (Ghiasi et al. 2017, "Exploring the structure of a real-time,
arbitrary neural artistic stylization network"): any painting as a style, in one pass of a
network instead of an optimisation, on onnxruntime. Never imports torch, so the app's process
may use it.

    from nfx.feedforward import stylize
    image = stylize(content, [painting], size=1024, style_scale=1.0, strength=0.8)
"""

from nfx.feedforward.models import check_models, device
from nfx.feedforward.network import render, style_vector, stylize

__all__ = ["check_models", "device", "render", "style_vector", "stylize"]
