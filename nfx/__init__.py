"""NFX: neural style transfer (Gatys et al.) with a gallery, a batch queue and an app."""

__version__ = "0.3.0"
