"""The style-transfer engine: multi-scale optimisation of an image against one objective.

The engine knows nothing of the database. It takes PIL images and a Settings object, reports
progress through a callback (which may cancel) and each finished scale through another (so a
caller can keep it and resume there after a crash), and returns a `RunRecord` with everything
a caller needs to store or show. Style Grams and content features are cached per (image, size, mode)
so a worker running many combinations does not recompute them.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from nfx.engine import color, tiling
from nfx.planning import budget
from nfx.errors import Canceled, InputError
from nfx.images import resize, size_for_area, size_for_long_edge
from nfx.engine.losses import STYLE_LOSSES, ContentLoss, Objective, blend, style_stats, vgg_features
from nfx.engine.memory import keep_freed_memory
from nfx.run_record import RunRecord, ScaleImage
from nfx.planning.pyramid import scale_sizes
from nfx.planning.work import WorkModel
from nfx.settings import Settings
from nfx.engine.tensors import to_pil, to_tensor
from nfx.engine.vgg import VGG19Features, load_vgg

CALIBRATION_EDGES = (64, 256)  # small and mid-sized: fixed costs dominate one, pixels the other
CALIBRATION_ROUNDS = 3  # interleaved; the fastest of each is kept (see Engine.calibrate)

PREVIEW_EDGE = 512  # px, long edge of progress previews: for watching, not keeping


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


@dataclass(frozen=True)
class ScaleWork:
    """One scale of a run, and its share of the run's estimated cost (Progress.fraction)."""

    scale: int  # 0-based
    scales: int
    size: tuple[int, int]
    plan: budget.Plan
    before: float  # cost of the scales before this one
    per_step: float  # cost of one iteration at this scale
    total: float  # cost of the whole run


def downscaled(pixels: torch.Tensor, edge: int) -> torch.Tensor:
    """(1, 3, H, W) pixels with the long edge at most `edge` (area averaging): previews are
    for watching, and a full-size copy of a 4096 px image every few iterations is not."""
    height, width = pixels.shape[-2:]
    factor = max(height, width) / edge
    if factor <= 1:
        return pixels
    size = (max(1, round(height / factor)), max(1, round(width / factor)))
    return torch.nn.functional.interpolate(pixels.float(), size=size, mode="area")


def pick_device(name: str = "auto") -> torch.device:
    """'auto' prefers CUDA, then Apple's MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda asked for, but no CUDA GPU is available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError("device mps asked for, but MPS is not available")
    return device


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast runs at hardware speed here (not emulated)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_precision(requested: str, device: torch.device) -> str:
    if requested == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    if requested == "bf16" and device.type == "mps":
        raise InputError("bf16 is not supported on MPS; use precision fp32 or auto")
    return requested


def image_key(image: Image.Image) -> str:
    return hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest() + f"{image.size}"


class FeatureCache:
    """Least-recently-used cache of target tensors, bounded by count."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple, object] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: tuple, compute: Callable[[], object]) -> object:
        if key in self._items:
            self.hits += 1
            self._items.move_to_end(key)
            return self._items[key]
        self.misses += 1
        value = compute()
        self._items[key] = value
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return value


class Engine:
    """Runs style transfers on one device; load once, call `stylize` many times."""

    def __init__(self, device: str = "auto", weights: str | None = None) -> None:
        self.device = pick_device(device)
        keep_freed_memory()  # CPU buffers are reused across iterations, not page-faulted in
        self.model: VGG19Features = self._model(weights)
        self.cache = FeatureCache()

    def _model(self, weights: str | None) -> VGG19Features:
        # A private copy: moving the process-wide model to a device would move it for all.
        model = copy.deepcopy(load_vgg(weights))
        return model.to(self.device, memory_format=torch.channels_last)

    # --- targets ------------------------------------------------------------------------

    def _autocast(self, precision: str):
        return torch.autocast(self.device.type, dtype=torch.bfloat16,
                              enabled=precision == "bf16")

    def _features(self, pixels: torch.Tensor, layer: str, s: Settings, precision: str,
                  tile: int | None) -> torch.Tensor:
        """One layer's features in the run's precision (bf16 halves an 8192 px content
        target), computed in tiles if `tile`."""
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        with torch.no_grad(), self._autocast(precision):
            if tile:
                found = tiling.features(self.model, pixels, layer, s.pooling, tile)
            else:
                found = vgg_features(self.model, pixels, [layer], s.pooling)[layer]
        return found.to(dtype)

    def _stats(self, pixels: torch.Tensor, s: Settings, precision: str,
               tile: int | None) -> dict:
        """Each style layer's StyleStats, computed in tiles if `tile`."""
        with torch.no_grad(), self._autocast(precision):
            if tile:
                return tiling.style_stats(self.model, pixels, s.style_layers, s.pooling, tile)
            features = vgg_features(self.model, pixels, s.style_layers, s.pooling)
        return {layer: style_stats(features[layer]) for layer in s.style_layers}

    @staticmethod
    def _target_tile(pixels: torch.Tensor, s: Settings, precision: str,
                     plan: budget.Plan | None) -> int | None:
        """The tile for a target's forward pass (no gradient): the plan's, as its estimate
        assumes; untiled plans tile only a target that would not fit whole (a style image
        enlarged by style_scale)."""
        if plan is None or plan.tile:
            return plan and plan.tile
        height, width = pixels.shape[2:]
        return budget.forward_tile(width, height, s, precision,
                                   plan.estimate - budget.PROCESS_BYTES)

    def _pixels(self, image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
        return (to_tensor(resize(image, size)) * 255.0).to(self.device)

    def _content_target(self, content: Image.Image, key: str, size: tuple[int, int],
                        s: Settings, precision: str,
                        plan: budget.Plan | None = None) -> torch.Tensor:
        def compute() -> torch.Tensor:
            pixels = self._pixels(content, size)
            if s.preserve_color == "luminance":
                pixels = color.luminance(pixels)
            tile = self._target_tile(pixels, s, precision, plan)
            return self._features(pixels, s.content_layer, s, precision, tile)

        return self.cache.get(("content", key, size, s.content_layer, s.pooling, precision,
                               s.preserve_color == "luminance"), compute)

    def _style_grams(self, style: Image.Image, style_key: str, content: Image.Image,
                     content_key: str, out_size: tuple[int, int], s: Settings,
                     precision: str, plan: budget.Plan | None = None) -> dict:
        area = out_size[0] * out_size[1] * s.style_scale ** 2
        size = size_for_area(style.size, area)
        # Colour-preserving modes make the style depend on the content too.
        depends_on_content = s.preserve_color != "none"

        def compute() -> dict[str, torch.Tensor]:
            pixels = self._pixels(style, size)
            if s.preserve_color == "histogram":
                pixels = color.match_color_statistics(pixels, self._pixels(content, out_size))
            elif s.preserve_color == "luminance":
                content_lum = color.luminance(self._pixels(content, out_size))
                pixels = color.match_luminance(color.luminance(pixels), content_lum)
            return self._stats(pixels, s, precision,
                               self._target_tile(pixels, s, precision, plan))

        return self.cache.get(("style", style_key, size, tuple(s.style_layers), s.pooling,
                               precision, s.preserve_color,
                               content_key if depends_on_content else None,
                               out_size if depends_on_content else None), compute)

    def _objective(self, content: Image.Image, styles: Sequence[Image.Image],
                   keys: tuple[str, list[str]], size: tuple[int, int], s: Settings,
                   precision: str, plan: budget.Plan | None = None) -> Objective:
        """The objective at one size; evaluated in tiles (nfx.engine.tiling) if the plan says so."""
        content_key, style_keys = keys
        content_loss = ContentLoss(s.content_layer, self._content_target(
            content, content_key, size, s, precision, plan))
        stats = [self._style_grams(style, key, content, content_key, size, s, precision, plan)
                 for style, key in zip(styles, style_keys)]
        style_loss = STYLE_LOSSES[s.style_loss](blend(stats, s.style_blend),
                                                s.style_layer_weights)
        weights = {"content": s.content_weight, "style": s.style_weight, "tv": s.tv_weight}
        objective = Objective(self.model, s.pooling, content_loss, style_loss, weights)
        if plan is not None and plan.tile:
            return tiling.TiledObjective(objective, plan.tile)
        return objective

    # --- optimisation -------------------------------------------------------------------

    def _initial(self, content: Image.Image, styles: Sequence[Image.Image],
                 size: tuple[int, int], s: Settings) -> torch.Tensor:
        if s.init == "content":
            pixels = self._pixels(content, size)
        elif s.init == "style":
            pixels = self._pixels(styles[0], size)
        else:
            generator = torch.Generator().manual_seed(s.seed)
            mean = to_tensor(content).mean(dim=(2, 3), keepdim=True) * 255.0
            noise = torch.randn((1, 3, size[1], size[0]), generator=generator) * 48.0
            pixels = (mean + noise).clamp(0, 255).to(self.device)
        if s.preserve_color == "luminance":
            pixels = color.luminance(pixels)
        return pixels

    def stylize(self, content: Image.Image, styles: Sequence[Image.Image], settings: Settings,
                on_progress: Callable[[Progress], bool | None] | None = None,
                preview_every: int = 10, resume: ScaleImage | None = None,
                on_scale_done: Callable[[ScaleImage], None] | None = None) -> RunRecord:
        """Optimise an image with the content of `content` and the style of `styles`.

        `resume` continues a run whose first scales finished earlier (same inputs and
        settings); `on_scale_done` receives each finished scale but the last."""
        if not styles:
            raise InputError("at least one style image is needed")
        if settings.style_blend and len(settings.style_blend) != len(styles):
            raise InputError(f"style_blend has {len(settings.style_blend)} weights for "
                             f"{len(styles)} style images")
        started = time.perf_counter()
        s = settings
        precision = resolve_precision(s.precision, self.device)
        torch.manual_seed(s.seed)
        content, styles = content.convert("RGB"), [style.convert("RGB") for style in styles]
        keys = (image_key(content), [image_key(style) for style in styles])
        final = size_for_long_edge(content.size, s.size)
        sizes = scale_sizes(final, s.scales)
        plans = budget.plan_run(sizes, s, precision, self.device)  # refuses before allocating
        total = s.steps * len(sizes)
        costs = [w * h * budget.work_factor(w, h, s, plans[(w, h)].tile) for w, h in sizes]
        history: list[dict[str, float]] = []
        timings = {"targets": 0.0, "optimise": 0.0}
        pixels: torch.Tensor | None = None
        first = 0
        if resume is not None:
            first, history = self._check_resume(resume, sizes), list(resume.history)
            pixels = to_tensor(resume.image).to(self.device) * 255.0
        resumed_history = len(history)

        for scale in range(first, len(sizes)):
            size = sizes[scale]
            t0 = time.perf_counter()
            objective = self._objective(content, styles, keys, size, s, precision, plans[size])
            timings["targets"] += time.perf_counter() - t0
            if pixels is None:
                pixels = self._initial(content, styles, size, s)
            else:
                pixels = torch.nn.functional.interpolate(
                    pixels, size=(size[1], size[0]), mode="bicubic", align_corners=False
                ).clamp(0, 255)
            pixels = pixels.detach().contiguous().requires_grad_(True)
            t0 = time.perf_counter()
            work = ScaleWork(scale, len(sizes), size, plans[size],
                             before=s.steps * sum(costs[:scale]), per_step=costs[scale],
                             total=s.steps * sum(costs))
            self._optimise(objective, pixels, s, precision, work, total, history, on_progress,
                           preview_every)
            timings["optimise"] += time.perf_counter() - t0
            pixels = pixels.detach().clamp(0, 255)
            if on_scale_done is not None and scale < len(sizes) - 1:
                on_scale_done(ScaleImage(scale + 1, to_pil(pixels / 255.0), list(history)))

        assert pixels is not None
        if s.preserve_color == "luminance":
            pixels = color.recombine_chroma(pixels, self._pixels(content, final)).clamp(0, 255)
        image = to_pil(pixels / 255.0)
        last = history[-1] if history else {}
        losses = {k: v for k, v in last.items() if k not in ("iteration", "scale")}
        return RunRecord(image=image, settings=s, losses=losses, history=history,
                         seconds=time.perf_counter() - started, device=str(self.device),
                         precision=precision, resumed_from_scale=first,
                         iterations_run=len(history) - resumed_history, timings=timings,
                         optimizers=[plans[size].optimizer for size in sizes])

    @staticmethod
    def _check_resume(resume: ScaleImage, sizes: list[tuple[int, int]]) -> int:
        """The scale to go on from; InputError if the checkpoint is not of this run."""
        if not 0 < resume.scales_done < len(sizes):
            raise InputError(f"checkpoint after scale {resume.scales_done} does not fit a run "
                             f"of {len(sizes)} scales")
        expected = sizes[resume.scales_done - 1]
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

    def evaluate(self, image: Image.Image, content: Image.Image, styles: Sequence[Image.Image],
                 settings: Settings) -> dict[str, float]:
        """The objective's terms for a finished image at its own size (no optimisation)."""
        precision = resolve_precision(settings.precision, self.device)
        keys = (image_key(content), [image_key(style) for style in styles])
        plan = budget.plan_run([image.size], settings, precision, self.device)[image.size]
        objective = self._objective(content, styles, keys, image.size, settings, precision,
                                    plan)  # in tiles (no gradient, one pass) if it needs them
        with torch.no_grad(), self._autocast(precision):
            total, terms = objective((to_tensor(image) * 255.0).to(self.device))
        return {**{name: float(value) for name, value in terms.items()}, "total": float(total)}

    def _optimise(self, objective: Objective | tiling.TiledObjective, pixels: torch.Tensor,
                  s: Settings, precision: str, work: ScaleWork, total: int, history: list,
                  on_progress, preview_every: int) -> None:
        # The terms are relative errors of order 1, whose per-pixel gradients are tiny: scaled
        # by the number of values they keep one size per pixel at any image size, and
        # L-BFGS's curvature pairs clear its yᵀs > 1e-10 test.
        loss_scale = float(pixels.numel())
        lbfgs = work.plan.optimizer == "lbfgs"  # the plan's: Adam where L-BFGS cannot fit
        if lbfgs:
            # L-BFGS's first step has an L1 norm of lr. At lr=1 it moved each value by ~1e-5
            # of a grey level, below bf16's resolution: its curvature pair was noise, and on
            # some pairs the next step diverged. lr=numel moves values by about one grey
            # level on average; later steps use lr=1, i.e. the quasi-Newton step itself.
            optimizer: torch.optim.Optimizer = torch.optim.LBFGS(
                [pixels], lr=loss_scale, max_iter=1, history_size=work.plan.history,
                tolerance_grad=0.0, tolerance_change=0.0)
        else:
            # Fused: one pass over the moments, none of the unfused step's image-sized
            # temporaries (two, 1.1 GiB at 8192×6144).
            optimizer = torch.optim.Adam([pixels], lr=s.learning_rate,
                                         fused=self.device.type in ("cpu", "cuda"))
        record: dict[str, float] = {}

        def closure() -> torch.Tensor:
            optimizer.zero_grad(set_to_none=True)
            with self._autocast(precision):
                loss, terms = objective(pixels)
            (loss * loss_scale).backward()
            record.clear()
            record.update({name: float(value.detach()) for name, value in terms.items()})
            record["total"] = float(loss.detach())
            return loss.detach() * loss_scale

        for step in range(s.steps):
            optimizer.step(closure)
            optimizer.param_groups[0]["lr"] = 1.0 if lbfgs else s.learning_rate
            if not lbfgs:
                with torch.no_grad():
                    pixels.clamp_(0, 255)
            iteration = len(history) + 1
            history.append({"iteration": iteration, "scale": work.scale, **record})
            if on_progress is None:
                continue
            last_of_scale = step == s.steps - 1
            preview = None
            if preview_every and (iteration % preview_every == 0 or last_of_scale):
                preview = to_pil(downscaled(pixels.detach(), PREVIEW_EDGE) / 255.0)
            progress = Progress(iteration=iteration, total_iterations=total, scale=work.scale,
                                scales=work.scales, width=work.size[0], height=work.size[1],
                                losses=dict(record), preview=preview, tile=work.plan.tile,
                                optimizer=work.plan.optimizer,
                                fraction=(work.before + (step + 1) * work.per_step) / work.total)
            if on_progress(progress):
                raise Canceled(f"cancelled at iteration {iteration} of {total}")
