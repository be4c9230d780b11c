"""One record of a run, from the engine to the PNG and the gallery.

The engine returns a `RunRecord`; the CLI and the worker write its PNG through `run_png`, which
embeds the settings and the inputs' names and sha256, so that `nfx rerun` can find the inputs
of any NFX PNG in a gallery by hash. The store keeps the same fields in a result row.
Torch-free: the app and the store read these without loading the engine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from nfx.errors import InputError
from nfx.images import color_profile, png_bytes, read_png_info, read_png_settings
from nfx.regions import RegionInput, RegionMap
from nfx.settings import Settings


@dataclass(frozen=True)
class InputRef:
    """A content or style picture as a run names it: by name and by the sha256 of its bytes
    (the gallery's key for it), and by its file path when the run read it from a file."""

    name: str
    sha256: str  # "" when unknown (PNGs written before inputs were hashed)
    path: str | None = None
    # the embedded colour profile its pixels were converted from to sRGB ("Display P3"),
    # None when it had none (or sRGB): nfx.images.load_image does the conversion
    profile: str | None = None

    @classmethod
    def of_bytes(cls, name: str, data: bytes, path: str | None = None) -> InputRef:
        return cls(name=name, sha256=hashlib.sha256(data).hexdigest(), path=path,
                   profile=color_profile(data))

    @classmethod
    def of_file(cls, path: str | Path) -> InputRef:
        file = Path(path)
        if not file.is_file():
            raise InputError(f"{path}: file not found")
        return cls.of_bytes(file.name, file.read_bytes(), str(file.resolve()))

    @property
    def short(self) -> str:
        return f"{self.name} (sha256 {self.sha256[:12]}…)" if self.sha256 else self.name


@dataclass
class RunRecord:
    """What one run produced and how."""

    image: Image.Image
    settings: Settings
    losses: dict[str, float]  # final: content, style, tv (unweighted), total (weighted)
    history: list[dict[str, float]]  # per iteration: iteration, scale, the losses
    seconds: float  # this attempt's wall time
    device: str
    precision: str
    resumed_from_scale: int = 0  # 0: from the start; k: scales before k came from a checkpoint
    iterations_run: int = 0  # optimiser iterations this attempt ran (resumed runs run fewer)
    timings: dict[str, float] = field(default_factory=dict)
    # The optimiser of each scale, as this attempt planned it: `settings.optimizer`, or Adam
    # at a scale where L-BFGS's history could not fit the memory budget (nfx.planning.budget.plan).
    optimizers: list[str] = field(default_factory=list)

    @property
    def facts(self) -> dict[str, Any]:
        """The run's facts for the PNG's info block; the scales' optimisers only where one
        differs from the settings'."""
        facts = {"losses": self.losses, "seconds": round(self.seconds, 2),
                 "device": self.device, "precision": self.precision,
                 "resumed_from_scale": self.resumed_from_scale,
                 "iterations_run": self.iterations_run}
        if any(name != self.settings.optimizer for name in self.optimizers):
            facts["optimizers"] = list(self.optimizers)
        return facts


@dataclass(frozen=True)
class ScaleImage:
    """The image after a finished scale of a multi-scale run, with the history so far: what
    a worker keeps so that a crashed job resumes at the next scale instead of starting over.
    Pixels are kept as 8-bit RGB, a rounding far below what the next scale changes."""

    scales_done: int  # 1: the first (coarsest) scale is finished
    image: Image.Image
    history: list[dict[str, float]] = field(default_factory=list)


def mask_ref(regions: RegionInput) -> InputRef:
    """A run's mask as the run names it, like its other inputs."""
    return InputRef(name=regions.name, sha256=regions.sha256, path=regions.path)


def run_png(run: RunRecord, content: InputRef, styles: Sequence[InputRef],
            regions: RegionInput | None = None, **extra: Any) -> bytes:
    """The output PNG of a run: pixels, settings, inputs (name + sha256), the mask and its
    assignments if it had regions, and run facts."""
    info: dict[str, Any] = {"content": asdict(content), "styles": [asdict(s) for s in styles]}
    if regions is not None:
        info.update(mask=asdict(mask_ref(regions)), regions=regions.regions.as_json())
    return png_bytes(run.image, run.settings, {**info, **run.facts, **extra})


@dataclass(frozen=True)
class StoredRun:
    """What an NFX PNG says about the run that made it."""

    settings: Settings
    content: InputRef | None  # None: not recorded (PNGs from before inputs were embedded)
    styles: tuple[InputRef, ...]
    mask: InputRef | None = None  # a run with regions: its mask, and what each colour got
    regions: RegionMap | None = None


def read_run_png(source: str | Path | bytes) -> StoredRun:
    """Settings and inputs embedded in an NFX PNG; InputError if it is not one."""
    settings = read_png_settings(source)
    info = read_png_info(source)
    content, styles = info.get("content"), info.get("styles") or []
    if not content or not isinstance(styles, list):
        return StoredRun(settings, None, ())
    mask, regions = info.get("mask"), info.get("regions")
    if mask and isinstance(regions, list):
        return StoredRun(settings, _ref(content), tuple(_ref(s) for s in styles), _ref(mask),
                         RegionMap.from_json(regions))
    return StoredRun(settings, _ref(content), tuple(_ref(s) for s in styles))


def _ref(data: dict[str, Any] | str) -> InputRef:  # Any: parsed JSON
    """An input as recorded: {name, sha256, path}, or a bare path (CLI PNGs of NFX 0.1)."""
    if isinstance(data, str):
        return InputRef(name=Path(data).name, sha256="", path=data)
    path, profile = data.get("path"), data.get("profile")
    return InputRef(name=str(data.get("name", "")), sha256=str(data.get("sha256", "")),
                    path=str(path) if path else None, profile=str(profile) if profile else None)
