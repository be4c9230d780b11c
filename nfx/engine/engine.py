"""The style-transfer engine: an image optimised against one objective over a pyramid of
scales.

The engine knows nothing of the database. It takes PIL images and a Settings object, reports
progress through a callback (which may cancel) and each finished scale through another (so a
caller can keep it and resume there after a crash), and returns a `RunRecord` with everything
a caller needs to store or show. Its parts: the run's plan (nfx.planning.run_plan: sizes,
memory, costs), the targets and objective of each scale (nfx.engine.targets), and the
optimisation of one scale (nfx.engine.optimize).
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from nfx.engine import color
from nfx.engine.devices import autocast, pick_device, resolve_precision
from nfx.engine.losses import vgg_features
from nfx.engine.memory import keep_freed_memory
from nfx.engine.optimize import Optimizer, optimize
from nfx.engine.targets import Keys, Targets
from nfx.engine.tensors import to_image, to_pixels
from nfx.engine.vgg import VGG19Features, load_vgg
from nfx import feedforward
from nfx.caches import BoundedCache
from nfx.errors import Canceled, InputError
from nfx.images import image_key, size_for_long_edge
from nfx.planning import budget
from nfx.planning.run_plan import ScalePlan, plan_scales
from nfx.planning.work import WorkModel
from nfx.regions import RegionInput, check as check_regions, kept_weight
from nfx.run_record import RunRecord, ScaleImage
from nfx.settings import Settings

__all__ = ["Engine", "Progress", "PREVIEW_EDGE", "downscaled", "pick_device",
           "resolve_precision"]

CALIBRATION_EDGES = (64, 256)  # small and mid-sized: fixed costs dominate one, pixels the other
CALIBRATION_ROUNDS = 3  # interleaved; the fastest of each is kept (see Engine.calibrate)

PREVIEW_EDGE = 512  # px, long edge of progress previews: for watching, not keeping
# px: `init: preview` renders the feed-forward start at most this large (a start, not the
# result: the optimiser draws the detail, and larger renders cost seconds and gigabytes)
PREVIEW_INIT_EDGE = 2048


@dataclass
class Progress:
    """One optimiser iteration, as seen by a progress callback."""

    iteration: int  # 1-based, over all scales
    total_iterations: int
    scale: int  # 0-based
    scales: int
    width: int
    height: int
    losses: dict[str, float]  # content, style, tv (unweighted) and total (weighted)
    preview: Image.Image | None = None
    # Of the whole run's work, what is done: iterations weighted by their estimated cost
    # (megapixels, times the tiling's overhead), so that time left can be read from it at
    # every scale; a 4096 px run's last scale is ~3/4 of its iterations' cost, not 1/3.
    fraction: float = 0.0
    tile: int | None = None  # this scale's tile edge (px), None when it runs untiled
    optimizer: str = "lbfgs"  # this scale's: Adam where L-BFGS's history would not fit


def downscaled(pixels: torch.Tensor, edge: int) -> torch.Tensor:
    """(1, 3, H, W) pixels with the long edge at most `edge` (area averaging): previews are
    for watching, and a full-size copy of a 4096 px image every few iterations is not."""
    height, width = pixels.shape[-2:]
    factor = max(height, width) / edge
    if factor <= 1:
        return pixels
    size = (max(1, round(height / factor)), max(1, round(width / factor)))
    return torch.nn.functional.interpolate(pixels.float(), size=size, mode="area")


class Engine:
    """Runs style transfers on one device; load once, call `stylize` many times."""

    def __init__(self, device: str = "auto", weights: str | None = None) -> None:
        self.device = pick_device(device)
        self.weights = weights
        keep_freed_memory()  # CPU buffers are reused across iterations, not page-faulted in

    @functools.cached_property
    def model(self) -> VGG19Features:
        """VGG-19, loaded at first use: a worker that only renders feed-forward previews
        never spends the memory and seconds it takes."""
        return self._model(self.weights)

    @functools.cached_property
    def targets(self) -> Targets:
        return Targets(self.model, self.device)

    @property
    def cache(self) -> BoundedCache:
        return self.targets.cache

    def _model(self, weights: str | None) -> VGG19Features:
        # A private copy: moving the process-wide model to a device would move it for all.
        model = copy.deepcopy(load_vgg(weights))
        # Module.to takes memory_format at run time; torch's overloads of it do not say so
        return model.to(self.device,  # type: ignore[call-overload]
                        memory_format=torch.channels_last)

    def _initial(self, content: Image.Image, styles: Sequence[Image.Image],
                 size: tuple[int, int], s: Settings) -> torch.Tensor:
        """The first scale's starting image, as `init` says."""
        if s.init == "content":
            pixels = self.targets.pixels(content, size)
        elif s.init == "style":
            pixels = self.targets.pixels(styles[0], size)
        elif s.init == "preview":
            # rendered at the output's size (so its brush marks are the final picture's),
            # then brought to this scale's
            preview = feedforward.stylize(content, styles, size=min(s.size, PREVIEW_INIT_EDGE),
                                          style_scale=s.style_scale, blend=s.style_blend,
                                          preserve_color=s.preserve_color)
            pixels = self.targets.pixels(preview, size)
        else:
            generator = torch.Generator().manual_seed(s.seed)
            mean = to_pixels(content).mean(dim=(2, 3), keepdim=True)
            noise = torch.randn((1, 3, size[1], size[0]), generator=generator) * 48.0
            pixels = (mean + noise).clamp(0, 255).to(self.device)
        if s.preserve_color == "luminance":
            pixels = color.luminance(pixels)
        return pixels

    def stylize(self, content: Image.Image, styles: Sequence[Image.Image], settings: Settings,
                on_progress: Callable[[Progress], bool | None] | None = None,
                preview_every: int = 10, resume: ScaleImage | None = None,
                on_scale_done: Callable[[ScaleImage], None] | None = None,
                regions: RegionInput | None = None) -> RunRecord:
        """Optimise an image with the content of `content` and the style of `styles`.

        `resume` continues a run whose first scales finished earlier (same inputs and
        settings); `on_scale_done` receives each finished scale but the last; `regions`
        gives each area of a mask its own style entry, or keeps the photo there."""
        if not styles:
            raise InputError("at least one style image is needed")
        if settings.style_blend and len(settings.style_blend) != len(styles):
            raise InputError(f"style_blend has {len(settings.style_blend)} weights for "
                             f"{len(styles)} style images")
        if regions is not None:
            check_regions(regions.mask, regions.regions, content.size, len(styles))
            if settings.init == "preview":
                raise InputError("init: preview does not take a region mask; use init: "
                                 "content")
        started = time.perf_counter()
        s = settings
        precision = resolve_precision(s.precision, self.device)
        torch.manual_seed(s.seed)
        content, styles = content.convert("RGB"), [style.convert("RGB") for style in styles]
        keys: Keys = (image_key(content), [image_key(style) for style in styles])
        final = size_for_long_edge(content.size, s.size)
        plans = plan_scales(final, s, precision, self.device)  # refuses before allocating
        history: list[dict[str, float]] = []
        timings = {"targets": 0.0, "optimise": 0.0}
        pixels: torch.Tensor | None = None
        first = 0
        if resume is not None:
            first, history = self._check_resume(resume, plans), list(resume.history)
            pixels = to_pixels(resume.image, self.device)
        resumed_history = len(history)

        for plan in plans[first:]:
            t0 = time.perf_counter()
            objective = self.targets.objective(content, styles, keys, plan.size, s, precision,
                                               plan.memory, regions)
            timings["targets"] += time.perf_counter() - t0
            if pixels is None:
                pixels = self._initial(content, styles, plan.size, s)
            else:
                pixels = torch.nn.functional.interpolate(
                    pixels, size=(plan.size[1], plan.size[0]), mode="bicubic",
                    align_corners=False).clamp(0, 255)
            pixels = pixels.detach().contiguous().requires_grad_(True)
            t0 = time.perf_counter()
            optimize(objective, pixels,
                     Optimizer(plan.memory.optimizer, plan.memory.history, s.learning_rate),
                     s.steps, lambda: autocast(self.device, precision),
                     self._recorder(plan, pixels, s.steps, history, on_progress, preview_every))
            timings["optimise"] += time.perf_counter() - t0
            pixels = pixels.detach().clamp(0, 255)
            if regions is not None:
                pixels = self._keep_photo(pixels, content, regions, plan.size, s)
            if on_scale_done is not None and plan.index < plan.count - 1:
                on_scale_done(ScaleImage(plan.index + 1, to_image(pixels), list(history)))

        assert pixels is not None
        if s.preserve_color == "luminance":
            pixels = color.recombine_chroma(pixels, self.targets.pixels(content, final))
            if regions is not None:  # the kept regions' colour is the photo's too
                pixels = self._keep_photo(pixels, content, regions, final, s, final=True)
        image = to_image(pixels)
        last = history[-1] if history else {}
        losses = {k: v for k, v in last.items() if k not in ("iteration", "scale")}
        return RunRecord(image=image, settings=s, losses=losses, history=history,
                         seconds=time.perf_counter() - started, device=str(self.device),
                         precision=precision, resumed_from_scale=first,
                         iterations_run=len(history) - resumed_history, timings=timings,
                         optimizers=[plan.memory.optimizer for plan in plans])

    def _keep_photo(self, pixels: torch.Tensor, content: Image.Image, regions: RegionInput,
                    size: tuple[int, int], s: Settings, *, final: bool = False
                    ) -> torch.Tensor:
        """The photo itself where a region keeps it, blended over the feather: the
        optimisation leaves those areas near the photo (no style term pulls them), and this
        takes out what the neighbouring regions' receptive fields still wrote there. While
        a `luminance` run optimises brightness only, the photo's brightness; at its end
        (`final`), the photo in colour."""
        keep = kept_weight(regions.mask, regions.regions, size,
                           s.region_feather * max(size) / s.size)
        if keep is None:
            return pixels
        weight = torch.from_numpy(keep).to(pixels.device, pixels.dtype)[None, None]
        photo = self.targets.pixels(content, size).to(pixels.dtype)
        if s.preserve_color == "luminance" and not final:
            photo = color.luminance(photo)
        return photo * weight + pixels * (1 - weight)

    @staticmethod
    def _recorder(plan: ScalePlan, pixels: torch.Tensor, steps: int,
                  history: list[dict[str, float]],
                  on_progress: Callable[[Progress], bool | None] | None,
                  preview_every: int) -> Callable[[int, dict[str, float]], None]:
        """What happens after each iteration: the history grows, the callback hears of it
        (with a downscaled preview now and then) and may cancel."""
        total = steps * plan.count

        def on_step(step: int, record: dict[str, float]) -> None:
            iteration = len(history) + 1
            history.append({"iteration": iteration, "scale": plan.index, **record})
            if on_progress is None:
                return
            preview = None
            if preview_every and (iteration % preview_every == 0 or step == steps - 1):
                preview = to_image(downscaled(pixels.detach(), PREVIEW_EDGE))
            progress = Progress(iteration=iteration, total_iterations=total, scale=plan.index,
                                scales=plan.count, width=plan.size[0], height=plan.size[1],
                                losses=dict(record), preview=preview, tile=plan.memory.tile,
                                optimizer=plan.memory.optimizer,
                                fraction=plan.fraction(step + 1))
            if on_progress(progress):
                raise Canceled(f"canceled at iteration {iteration} of {total}")
        return on_step

    @staticmethod
    def _check_resume(resume: ScaleImage, plans: list[ScalePlan]) -> int:
        """The scale to go on from; InputError if the checkpoint is not of this run."""
        if not 0 < resume.scales_done < len(plans):
            raise InputError(f"checkpoint after scale {resume.scales_done} does not fit a run "
                             f"of {len(plans)} scales")
        expected = plans[resume.scales_done - 1].size
        if resume.image.size != expected:
            raise InputError(f"checkpoint is {resume.image.size[0]}x{resume.image.size[1]}, "
                             f"scale {resume.scales_done} is {expected[0]}x{expected[1]}")
        return resume.scales_done

    def calibrate(self, precision: str = "auto") -> WorkModel:
        """Measure this device's `WorkModel` in a few seconds: short real runs at two sizes
        give the cost per iteration (a line in megapixels) and the setup per scale.

        Contention (the app starting beside a new worker, another job on a shared machine)
        only ever adds time, so each figure is the fastest seen over interleaved rounds, not
        a median: a median over one burst of contention once put the fixed cost per
        iteration at 1.2 s and the slope at 0, and a 512 px job's estimate at 9x its time."""
        content = Image.effect_mandelbrot((256, 256), (-2.0, -1.2, 0.8, 1.2), 60).convert("RGB")
        style = Image.radial_gradient("L").resize((128, 128)).convert("RGB")
        self.stylize(content, [style], Settings(size=32, scales=1, steps=2, precision=precision))
        steps = {edge: float("inf") for edge in CALIBRATION_EDGES}
        setup = dict(steps)
        for _ in range(CALIBRATION_ROUNDS):
            for edge in CALIBRATION_EDGES:
                settings = Settings(size=edge, scales=1, steps=5, precision=precision)
                ticks = [time.perf_counter()]
                self.stylize(content, [style], settings,
                             lambda progress: ticks.append(time.perf_counter()), preview_every=0)
                fastest = min(b - a for a, b in zip(ticks[1:], ticks[2:]))
                steps[edge] = min(steps[edge], fastest)
                setup[edge] = min(setup[edge], ticks[1] - ticks[0] - fastest)
        (e1, e2) = CALIBRATION_EDGES
        m1, m2 = e1 * e1 / 1e6, e2 * e2 / 1e6
        slope = (steps[e2] - steps[e1]) / (m2 - m1)
        if slope <= 0:  # the small size was no faster: charge everything per megapixel
            return WorkModel(per_megapixel_iteration=steps[e2] / m2,
                             per_scale=max(min(setup.values()), 0.0))
        return WorkModel(per_megapixel_iteration=slope,
                         per_iteration=max(steps[e1] - slope * m1, 0.0),
                         per_scale=max(min(setup.values()), 0.0))

    def features(self, image: Image.Image, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """{layer: fp32 activation} of an image at its own size, for judging results (the
        benchmarks' evaluator, the copy score), not for optimising."""
        with torch.no_grad():
            return vgg_features(self.model, to_pixels(image.convert("RGB"), self.device),
                                layers, "max")

    def evaluate(self, image: Image.Image, content: Image.Image, styles: Sequence[Image.Image],
                 settings: Settings, regions: RegionInput | None = None) -> dict[str, float]:
        """The objective's terms for a finished image at its own size (no optimisation);
        with `regions`, the style term is the regions' guided one."""
        precision = resolve_precision(settings.precision, self.device)
        keys: Keys = (image_key(content), [image_key(style) for style in styles])
        plan = budget.plan_run([image.size], settings, precision, self.device)[image.size]
        objective = self.targets.objective(content, styles, keys, image.size, settings,
                                           precision, plan, regions)  # in tiles if needed
        with torch.no_grad(), autocast(self.device, precision):
            total, terms = objective(to_pixels(image, self.device))
        return {**{name: float(value) for name, value in terms.items()}, "total": float(total)}
