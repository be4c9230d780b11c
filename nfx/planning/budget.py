"""A run's peak memory, estimated before it starts, and the plan that keeps it in a budget.

Memory grows with the image: the activations that one forward-backward pass through VGG-19
keeps, and the optimiser's full-size vectors (for L-BFGS, two per history pair). Over the
budget, the run is optimised in tiles (nfx.engine.tiling: the same result, activations of one
tile at a time; Galerne, Raad, Lezama & Morel, "Scaling Painting Style Transfer", 2024), so
only the image-sized vectors still grow with the image. A run that cannot fit even in the
smallest tile is refused with one line naming the size that would fit, before anything is
allocated, rather than being killed by the OOM killer mid-run (and its worker with it).

The L-BFGS history is capped in bytes (HISTORY_BYTES): 20 pairs at 4096×3072 would be 6 GB of
fp32 vectors. The cap depends on the image size only, never on the machine, so the same
settings still give the same image everywhere; it leaves every run up to 2048×1536 its full
20 pairs. Where even MIN_HISTORY pairs cannot fit the budget in the smallest tile (8192×6144
in 12 GiB), that scale runs with Adam, whose two moments replace the history: the one switch
that changes the image with the machine's memory, so the plan, the progress and the run's
record name the optimiser.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nfx import host_memory
from nfx.errors import InputError
from nfx.images import size_for_long_edge
from nfx.planning.pyramid import scale_sizes
from nfx.layers import LAYERS, deepest, in_order
from nfx.settings import Settings
from nfx.planning.tile_grid import blocks, largest_block

if TYPE_CHECKING:
    import torch

GIB = 2**30
LBFGS_HISTORY = 20  # longer histories cost memory bandwidth for no visible gain here
MIN_HISTORY = 5
HISTORY_BYTES = 3 * GIB // 2
BUDGET_FRACTION = 0.7  # of the memory free when a run starts, when no budget is set
PROCESS_BYTES = 600 * 2**20  # the interpreter, torch, the model and its bf16 copy (measured)
# Image-sized fp32 vectors (3·W·H·4 bytes), as measured with torch's own allocation trace
# at 512-1024 px (docs/benchmarks.md): the pixels and their gradient; the optimiser's state
# (ADAM_VECTORS, or the L-BFGS history's 2 per pair plus its direction and previous
# gradient); during an evaluation, the objective's own temporaries besides the network's
# activations; during L-BFGS's step, its flat gradient copy, two-loop vector and new
# direction. The optimiser's step and the evaluation do not overlap: the larger counts.
PIXEL_VECTORS = 2
HEAP_VECTORS = 3  # freed image-sized blocks the heap could not reuse (mmap off: see
# nfx.engine.memory)
ADAM_VECTORS = 2  # its two moments
LBFGS_VECTORS = 2  # besides the history: direction, previous gradient
STEP_VECTORS = {"lbfgs": 3, "adam": 0}  # fused Adam steps in place
TILED_VECTORS = 1  # total variation's per-channel differences (2/3) in a tiled evaluation
UNTILED_VECTORS = 8  # an untiled evaluation's: the network's preprocessed input and its
# gradient, total variation's gradient, the content term's fp32 copies (2.7 vectors each)
OPTIMISER_NAMES = {"lbfgs": "L-BFGS", "adam": "Adam"}
STYLE_VECTORS = 4  # copies of the style image's pixels while its targets are computed
# Largest activations alive at once besides the kept ones: fitted to peaks measured at
# 512-2048 px (docs/benchmarks.md), backward's gradients and oneDNN's buffers; a forward alone.
BACKWARD_ACTIVATIONS = 6
FORWARD_ACTIVATIONS = 6  # the style layers a forward returns stay alive to its end
TILED_GRAPH_MARGIN = 0.45  # a tiled evaluation's peak over its block's graph_bytes: the
# block-sized buffers of blocks of other shapes that the heap keeps
FORWARD_SHARE = 1 / 3  # of a forward+backward pass's time, its forward alone
TILES = (2048, 1536, 1024, 768, 512, 384, 256, 128, 64)  # tile edges tried, largest first
MAX_SLOWDOWN = 4.0  # the most an automatic tiling may multiply an iteration's time by
# (work_factor); smaller tiles turn a 2048 px job into hours. Past it the plan takes Adam, or
# refuses.
# Every count above is fitted to peaks and times measured at 512-4096 px: the figures, and
# when they were measured, are in docs/benchmarks.md (resolution section, "Constants").


def _layers(s: Settings) -> list[str]:
    return in_order([s.content_layer, *s.style_layers])


def _activations(width: int, height: int, layers: Sequence[str]) -> list[tuple[int, int, int]]:
    """(channels, height, width) of every conv output up to the deepest layer (pooling
    rounds odd edges up)."""
    return [(found.channels, -(-height // found.stride), -(-width // found.stride))
            for found in LAYERS[:deepest(layers).index + 1]]


def graph_bytes(width: int, height: int, s: Settings, precision: str, grad: bool = True) -> int:
    """Bytes of a forward (and backward, `grad`) pass of the objective over width×height."""
    size = 2 if precision == "bf16" else 4
    shapes = _activations(width, height, _layers(s))
    largest = max(c * h * w for c, h, w in shapes) * size
    if not grad:
        return FORWARD_ACTIVATIONS * largest
    kept = sum(c * h * w for c, h, w in shapes) * size
    if s.pooling == "max":  # int64 indices at each pool's output
        ends = [i for i, (c, h, w) in enumerate(shapes[:-1]) if shapes[i + 1][1] != h]
        kept += sum(shapes[i][0] * -(-shapes[i][1] // 2) * -(-shapes[i][2] // 2) * 8
                    for i in ends)
    return kept + BACKWARD_ACTIVATIONS * largest


def work_factor(width: int, height: int, s: Settings, tile: int | None) -> float:
    """Time of an iteration in tiles of `tile` px against the untiled one, from the blocks'
    layout: the area computed (margins are recomputed) over the image's, times one more
    forward of every block but the last (pass 1; see nfx.engine.tiling)."""
    if not tile:
        return 1.0
    laid = blocks(height, width, tile, _layers(s))
    area = sum((b.region[0].stop - b.region[0].start) * (b.region[1].stop - b.region[1].start)
               for b in laid)
    return area / (width * height) * (1 + FORWARD_SHARE * (len(laid) - 1) / len(laid))


def tiles(width: int, height: int, s: Settings) -> list[int]:
    """The tile edges a plan may use at this size, largest first: `s.tile` alone if the
    settings force one, else those smaller than the image whose iteration costs at most
    MAX_SLOWDOWN untiled ones."""
    if s.tile:
        return [s.tile]
    return [tile for tile in TILES if tile < max(width, height)
            and work_factor(width, height, s, tile) <= MAX_SLOWDOWN]


def smallest_tile(width: int, height: int, s: Settings) -> int | None:
    """The leanest layout a plan may use: its smallest tile, or None (untiled) if none."""
    allowed = tiles(width, height, s)
    return allowed[-1] if allowed else None


def work_factors(s: Settings, budget: int | None = None) -> Callable[[tuple[int, int]], float]:
    """Each scale size's time factor (work_factor) under the plan that `budget` (default:
    this machine's, see budget_bytes) gives it: for time estimates made before a run."""
    limit = budget_bytes(s) if budget is None else budget
    precision = "fp32" if s.precision == "fp32" else "bf16"

    def factor(size: tuple[int, int]) -> float:
        chosen = plan(*size, s, precision, limit)
        return work_factor(*size, s, chosen.tile if chosen else smallest_tile(*size, s))
    return factor


def forward_tile(width: int, height: int, s: Settings, precision: str,
                 room: int) -> int | None:
    """A tile for a forward pass without gradient (targets) within `room` bytes; None if the
    whole image fits."""
    if graph_bytes(width, height, s, precision, grad=False) <= room:
        return None
    return next((tile for tile in TILES
                 if graph_bytes(*largest_block(height, width, tile, _layers(s))[::-1], s,
                                precision, grad=False) <= room), TILES[-1])


def history_pairs(width: int, height: int) -> int:
    """L-BFGS history pairs for an image of this size (see HISTORY_BYTES)."""
    pair = 2 * 3 * width * height * 4
    return max(MIN_HISTORY, min(LBFGS_HISTORY, HISTORY_BYTES // pair))


def estimate(width: int, height: int, s: Settings, precision: str, tile: int | None = None,
             pairs: int | None = None, optimizer: str | None = None) -> int:
    """Peak bytes of optimising a width×height image, untiled or in tiles of `tile` px, with
    `optimizer` (default: the settings'), once the L-BFGS history holds `pairs` pairs
    (default: full). Adam keeps two moments. The larger of the two phases: the targets'
    forward passes (the style image at the output's area times style_scale², taken to have
    the output's shape), then the optimisation."""
    vector = 3 * width * height * 4
    optimizer = optimizer or s.optimizer
    if optimizer == "lbfgs":
        state = LBFGS_VECTORS + 2 * (history_pairs(width, height) if pairs is None else pairs)
    else:
        state = ADAM_VECTORS
    region = (width, height)
    if tile is not None:
        rows, cols = largest_block(height, width, tile, _layers(s))
        region = (cols, rows)
    content = _activations(width, height, [s.content_layer])[-1]
    target = content[0] * content[1] * content[2] * (2 if precision == "bf16" else 4)
    graph = graph_bytes(*region, s, precision)
    evaluation: float
    if tile is None:
        evaluation = UNTILED_VECTORS * vector + graph
    else:
        evaluation = TILED_VECTORS * vector + (1 + TILED_GRAPH_MARGIN) * graph
    optimise = (target + (PIXEL_VECTORS + HEAP_VECTORS + state) * vector
                + max(evaluation, STEP_VECTORS[optimizer] * vector))
    style = (round(width * s.style_scale), round(height * s.style_scale))
    if tile is not None:
        style_region = (min(style[0], region[0]), min(style[1], region[1]))
    else:
        style_region = style
    targets = (STYLE_VECTORS * 3 * style[0] * style[1] * 4
               + graph_bytes(*style_region, s, precision, grad=False))
    return PROCESS_BYTES + int(max(optimise, targets))


def available(device: torch.device | None) -> int:
    """Bytes this process may grow to: what it holds now plus a safe fraction of what is
    free (RAM's MemAvailable, or what its container's cgroup limit leaves, whichever is less;
    or the GPU's free memory)."""
    if device is not None and device.type == "cuda":
        import torch  # only here: the plan itself is arithmetic, used without torch by the app

        free, _ = torch.cuda.mem_get_info(device)
        return int(torch.cuda.memory_reserved(device) + BUDGET_FRACTION * free)
    left, held = host_memory.available(), host_memory.rss_bytes()
    if left is None or held is None:
        return 1 << 62  # no way to know (macOS, Windows): no limit
    return int(held + BUDGET_FRACTION * left)


def budget_bytes(s: Settings, device: torch.device | None = None) -> int:
    """The run's budget: `memory_budget` if set, else a safe fraction of what `device` (by
    default this machine's RAM) has free."""
    if s.memory_budget:
        return int(s.memory_budget * GIB)
    return available(device)


@dataclass(frozen=True)
class MemoryPlan:
    """How one scale runs within the memory budget: untiled (tile None) or in tiles; with
    which optimiser (the settings', or Adam where L-BFGS cannot fit); the L-BFGS history; the
    estimate behind it."""

    tile: int | None
    optimizer: str
    history: int
    estimate: int
    budget: int


def optimizers(s: Settings) -> tuple[str, ...]:
    """The optimisers a scale may run with, preferred first. L-BFGS falls back to Adam,
    whose two moments replace a history of at least 2×MIN_HISTORY vectors: the one way
    left to shrink a scale whose image-sized vectors alone overflow the budget (at
    8192×6144 each is 0.56 GiB, and tiles cannot shrink them). Adam changes the image, where
    tiles do not, so it comes only after every tile."""
    return ("lbfgs", "adam") if s.optimizer == "lbfgs" else ("adam",)


def plan(width: int, height: int, s: Settings, precision: str, budget: int) -> MemoryPlan | None:
    """The plan for one size within `budget` bytes (None if none fits): untiled if it fits
    (or as `s.tile` forces), else the largest tile that fits (see tiles); with the
    settings' optimiser at any tile before Adam at any (see optimizers)."""
    history = history_pairs(width, height)
    layouts = tiles(width, height, s) if s.tile else [None, *tiles(width, height, s)]
    for optimizer in optimizers(s):
        for tile in layouts:
            need = estimate(width, height, s, precision, tile, optimizer=optimizer)
            if need <= budget:
                return MemoryPlan(tile, optimizer, history, need, budget)
    return None


def plan_run(sizes: Sequence[tuple[int, int]], s: Settings, precision: str,
             device: torch.device | None) -> dict[tuple[int, int], MemoryPlan]:
    """A MemoryPlan per scale, or InputError (one line) if the largest cannot fit even tiled
    with the leanest optimiser."""
    budget = budget_bytes(s, device)
    plans = {size: plan(*size, s, precision, budget) for size in sizes}
    final = sizes[-1]
    if plans[final] is None:
        tile, leanest = smallest_tile(*final, s), optimizers(s)[-1]
        smallest = estimate(*final, s, precision, tile, optimizer=leanest)
        fits = largest_fitting(final, s, precision, budget)
        if plan(*size_for_long_edge(final, fits), s, precision, budget) is None:
            raise InputError(
                f"a memory budget of {gib(budget)} fits no image: NFX itself needs "
                f"about {gib(PROCESS_BYTES)} before any image")
        layout = f"even in {tile} px tiles" if tile else "untiled"
        raise InputError(
            f"{final[0]}×{final[1]} px needs about {gib(smallest)} {layout} with "
            f"{OPTIMISER_NAMES[leanest]}, over the memory budget of {gib(budget)}; "
            f"the largest size that fits is {fits} px (long edge)")
    fitted = {size: found for size, found in plans.items() if found is not None}
    assert len(fitted) == len(plans), "a smaller scale needs no more memory than the largest"
    return fitted


def check_fits(content_size: tuple[int, int], s: Settings) -> None:
    """Refuse, when a batch is planned, a job that its set memory budget cannot fit (the same
    one line the worker would fail it with). An automatic budget (0) is the worker's
    machine's to judge, when it runs; a feed-forward run has no memory plan."""
    if not s.memory_budget or s.method == "feedforward":
        return
    final = size_for_long_edge(content_size, s.size)
    plan_run(scale_sizes(final, s.scales), s, "fp32" if s.precision == "fp32" else "bf16",
             None)


def gib(count: int | float) -> str:
    """'2.3 GiB', '0.05 GiB': two significant figures below 1 GiB."""
    value = count / GIB
    return f"{value:.1f} GiB" if value >= 1 else f"{value:.2g} GiB"


def largest_fitting(final: tuple[int, int], s: Settings, precision: str, budget: int) -> int:
    """The largest long edge (of this aspect ratio) that fits the budget, by bisection."""
    low, high = 16, max(final)
    while low < high:
        middle = (low + high + 1) // 2
        if plan(*size_for_long_edge(final, middle), s, precision, budget) is not None:
            low = middle
        else:
            high = middle - 1
    return low
