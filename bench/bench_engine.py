"""Engine benchmark: NFX with its defaults against pastiche (the peer), in one run.

Prints, on the same images and size:
- wall time of each (whole command, as a user runs it), seconds per iteration;
- quality of each output by one evaluator: style distance (relative Gram error over
  relu1_1..relu5_1 against the style image) and content distance (relative relu4_2 feature
  error against the content image);
- the bf16 result's fp32 objective against the fp32 run's;
- ms per engine iteration against a bare VGG fwd+bwd at 256² and 512², fp32 and bf16.
Every figure is measured in this run; targets are checked as ratios.

    python bench/bench_engine.py [--content C] [--style S] [--size 512] [--peer-steps 300]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nfx.engine import Engine  # noqa: E402
from nfx.images import load_image, resize, size_for_long_edge  # noqa: E402
from nfx.engine.tensors import to_pixels  # noqa: E402
from nfx.engine.losses import TVLoss, gram  # noqa: E402
from nfx.engine.scores import COPY_LAYER, copy_score  # noqa: E402
from nfx.settings import Settings  # noqa: E402
from nfx.engine.vgg import preprocess  # noqa: E402
from nfx.layers import LAYERS, layer  # noqa: E402

IMAGES = ROOT.parent / "shared" / "images"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


class Evaluator:
    """One yardstick for every output: fp32 VGG-19 features of the original weights, with the
    definitions of ../shared/baselines/README.md (so pastiche's baseline outputs and NFX's
    are scored alike):
    - style distance: mean over relu1_1..relu5_1 of ‖G(out)−G(style)‖²/‖G(style)‖² (Grams
      divided by the number of positions; the style image resized to the output's long edge);
    - content distance: ‖F(out)−F(content)‖²/‖F(content)‖² at relu4_2 (the content resized to
      the output's size);
    - copy score: the fraction of the output's relu5_1 positions that are near-copies of one
      of the painting's (nfx.engine.scores.copy_score; issue #20's ghosts)."""

    def __init__(self, content_path: Path, style_path: Path) -> None:
        self.engine = Engine("cpu")
        self.use(content_path, style_path)

    def use(self, content_path: Path, style_path: Path) -> None:
        """Score against another pair, keeping the loaded network."""
        self.content = load_image(content_path)
        self.style = load_image(style_path)

    def features(self, image, layers):
        return self.engine.features(image, layers)

    def distances(self, output) -> dict[str, float]:
        size = output.size
        out = self.features(output, ("relu4_2", *STYLE_LAYERS))
        content = self.features(resize(self.content, size), ("relu4_2",))["relu4_2"]
        style_size = size_for_long_edge(self.style.size, max(size))
        style = self.features(resize(self.style, style_size), STYLE_LAYERS)
        relative = lambda a, b: ((a - b).square().sum() / b.square().sum()).item()
        return {"style": statistics.mean(relative(gram(out[l]), gram(style[l]))
                                         for l in STYLE_LAYERS),
                "content": relative(out["relu4_2"], content),
                "copy": copy_score(out[COPY_LAYER], style[COPY_LAYER])}

    def roughness(self, output) -> float:
        """The total-variation term (mean squared neighbour difference, 0-255 pixels) of the
        output over the painting's at the output's long edge: 1 is as rough as the painting itself. High
        values with small distances are noise or hatching the distances do not see."""
        style = resize(self.style, size_for_long_edge(self.style.size, max(output.size)))
        energy = lambda image: TVLoss()(to_pixels(image))  # NFX's own TV term
        return (energy(output) / energy(style)).item()

    def objective(self, output, settings: Settings) -> float:
        """The fp32 NFX objective of an output image (for the bf16-vs-fp32 check)."""
        fp32 = settings.with_changes(precision="fp32")
        return self.engine.evaluate(output, self.content, [self.style], fp32)["total"]


def peer_command() -> str:
    """pastiche's CLI, installed beside this Python (a venv's bin/ need not be on PATH)."""
    beside = Path(sys.executable).parent / "pastiche"
    found = str(beside) if beside.exists() else shutil.which("pastiche")
    if not found:
        sys.exit("benchmark: the pastiche command is not installed (pip install pastiche==1.6.0)")
    return found


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"benchmark: {' '.join(command[:4])} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def engine_step_seconds(engine: Engine, settings: Settings) -> list[float]:
    """Seconds of each engine iteration after the first (warm-up) on a settings.size² crop
    of Tübingen x The Starry Night, timed by the progress callback as a worker sees them."""
    content = load_image(IMAGES / "tubingen.jpg").resize((settings.size, settings.size))
    style = load_image(IMAGES / "starry_night.jpg")
    stamps: list[float] = []
    engine.stylize(content, [style], settings, lambda p: stamps.append(time.perf_counter()))
    return [b - a for a, b in zip(stamps[1:], stamps[2:])]


def per_iteration_ms(engine: Engine, side: int, precision: str, steps: int = 6,
                     rounds: int = 8, style_loss: str = "gram") -> dict[str, float]:
    """Engine iterations against bare VGG fwd+bwd passes to relu5_1, same size and precision.

    Rounds alternate: the engine runs `steps` iterations as a worker runs them (previews
    every 10th included), then the bare pass runs `steps` times; the first of each warms up
    and is left out. This machine's speed drifts by 5-20% from one minute to the next, so
    the ratio is taken within each round (median against median) and the median over
    rounds is reported; the best-of-all ratio is printed beside it."""
    settings = Settings(size=side, scales=1, steps=steps, precision=precision,
                        style_loss=style_loss)
    x = (torch.rand(1, 3, side, side) * 255).requires_grad_(True)
    engine_all, bare_all, ratios = [], [], []
    for _ in range(rounds):
        engine_times = engine_step_seconds(engine, settings)
        bare_times = []
        for _ in range(steps):
            started = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                out = engine.model(preprocess(x).contiguous(memory_format=torch.channels_last),
                                   ["relu5_1"])
            out["relu5_1"].float().sum().backward()
            bare_times.append(time.perf_counter() - started)
        bare_times = bare_times[1:]
        ratios.append(statistics.median(engine_times) / statistics.median(bare_times))
        engine_all += engine_times
        bare_all += bare_times
    return {"engine_ms": statistics.median(engine_all) * 1000,
            "bare_ms": statistics.median(bare_all) * 1000,
            "ratio": statistics.median(ratios),
            "best_ratio": min(engine_all) / min(bare_all),
            "ratio_low": min(ratios), "ratio_high": max(ratios)}


def iteration_table(engine: Engine) -> dict[tuple[int, str], dict[str, float]]:
    print("\n| size | precision | engine ms/iter | bare VGG fwd+bwd ms | ratio (median of "
          "rounds) | rounds' range | best / best |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    table = {}
    for side in (256, 512):
        for precision in ("fp32", "bf16"):
            m = table[side, precision] = per_iteration_ms(engine, side, precision)
            print(f"| {side}² | {precision} | {m['engine_ms']:.0f} | {m['bare_ms']:.0f} | "
                  f"{m['ratio']:.3f} | {m['ratio_low']:.2f}-{m['ratio_high']:.2f} | "
                  f"{m['best_ratio']:.3f} |", flush=True)
    print("\ntargets: ratio <= 1.10; bf16 at 512² <= 500 ms per iteration")
    return table


def vgg_pass_gflop(side: int) -> float:
    """Arithmetic of a VGG-19 fwd+bwd to relu5_1 on a side² image: each conv's
    multiply-adds, twice (the backward computes the input's gradient only; weights are
    frozen). ReLU, pooling and the losses are left out: they are memory-bound."""
    flop, in_channels = 0.0, 3
    for found in LAYERS[:layer("relu5_1").index + 1]:
        size = math.ceil(side / found.stride)
        flop += 2 * size * size * in_channels * found.channels * 9
        in_channels = found.channels
    return 2 * flop / 1e9


def cpu_peak_gflops() -> dict[str, float]:
    """This CPU's fp32 and bf16 arithmetic peak, from bench/cpu_peak.c ({} where it cannot be
    built: no gcc, no AVX-512)."""
    compiler = shutil.which("gcc")
    if not compiler:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / "cpu_peak"
        built = subprocess.run([compiler, "-O2", "-march=native", "-fopenmp",
                                str(ROOT / "bench" / "cpu_peak.c"), "-o", str(binary)],
                               capture_output=True)
        if built.returncode:
            return {}
        env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
        output = subprocess.run([str(binary)], capture_output=True, text=True, env=env).stdout
    return {line.split()[0]: float(line.split()[-1])
            for line in output.splitlines() if "GFLOPS" in line}


def peak_check(table: dict[tuple[int, str], dict[str, float]], target_ms: float = 500) -> None:
    """The bf16 512² target read against what this CPU can do at all."""
    peak = cpu_peak_gflops()
    gflop = vgg_pass_gflop(512)
    print(f"\nbare VGG-19 fwd+bwd to relu5_1 at 512²: {gflop:.0f} GFLOP of convolutions")
    if not peak:
        print("CPU peak not measured (bench/cpu_peak.c needs gcc and AVX-512)")
        return
    print("this CPU's measured peak (bench/cpu_peak.c): "
          + ", ".join(f"{name} {value / 1000:.3f} TFLOP/s" for name, value in peak.items()))
    for precision in ("fp32", "bf16"):
        if precision not in peak:
            continue
        bare_ms = table[512, precision]["bare_ms"]
        achieved = gflop / bare_ms  # GFLOP per ms = TFLOP/s
        floor_ms = gflop / peak[precision] * 1000
        print(f"  {precision}: bare pass {bare_ms:.0f} ms = {achieved:.3f} TFLOP/s = "
              f"{achieved * 1000 / peak[precision]:.0%} of peak; at 100% of peak it would take "
              f"{floor_ms:.0f} ms")
    if "bf16" in peak:
        needed = gflop / target_ms
        print(f"  bf16 at {target_ms:.0f} ms per iteration needs {needed:.3f} TFLOP/s = "
              f"{needed * 1000 / peak['bf16']:.0%} of this CPU's bf16 peak")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", type=Path, default=IMAGES / "tubingen.jpg")
    parser.add_argument("--style", type=Path, default=IMAGES / "starry_night.jpg")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--peer-steps", type=int, default=300)
    parser.add_argument("--skip-peer", action="store_true", help="only the NFX figures")
    parser.add_argument("--keep", type=Path, help="copy the output images to this folder")
    parser.add_argument("--iterations-only", action="store_true",
                        help="only the per-iteration table (engine against a bare VGG pass)")
    args = parser.parse_args()
    defaults = Settings(size=args.size)
    print(f"# NFX engine benchmark: {args.content.name} x {args.style.name}, long edge "
          f"{args.size}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    evaluator = Evaluator(args.content, args.style)
    if args.iterations_only:
        peak_check(iteration_table(evaluator.engine))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        nfx_out = Path(tmp) / "nfx.png"
        nfx_seconds = timed([sys.executable, "-m", "nfx", "run", str(args.content),
                             str(args.style), "-o", str(nfx_out), "--size", str(args.size),
                             "--quiet"])
        nfx_iterations = defaults.steps * defaults.scales
        rows.append(("nfx (defaults, bf16 auto)", nfx_seconds, nfx_iterations,
                     evaluator.distances(load_image(nfx_out))))
        fp32_out = Path(tmp) / "nfx32.png"
        fp32_seconds = timed([sys.executable, "-m", "nfx", "run", str(args.content),
                              str(args.style), "-o", str(fp32_out), "--size", str(args.size),
                              "--precision", "fp32", "--quiet"])
        rows.append(("nfx (defaults, fp32)", fp32_seconds, nfx_iterations,
                     evaluator.distances(load_image(fp32_out))))
        if not args.skip_peer:
            peer_out = Path(tmp) / "pastiche.png"
            peer_seconds = timed([peer_command(), "-c", str(args.content), "-s", str(args.style),
                                  "-o", str(peer_out), "--size", str(args.size), "--num-steps",
                                  str(args.peer_steps), "--device", "cpu", "--seed", "0",
                                  "--no-verbose"])
            rows.append((f"pastiche 1.6.0 ({args.peer_steps} steps)", peer_seconds,
                         args.peer_steps, evaluator.distances(load_image(peer_out))))
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for path in Path(tmp).glob("*.png"):
                shutil.copy(path, args.keep / path.name)
        bf16_objective = evaluator.objective(load_image(nfx_out), defaults)
        fp32_objective = evaluator.objective(load_image(fp32_out), defaults)

    print("\n| run | wall s | s/iteration | style distance | content distance |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, seconds, iterations, quality in rows:
        print(f"| {name} | {seconds:.1f} | {seconds / iterations:.3f} | "
              f"{quality['style']:.4f} | {quality['content']:.4f} |")
    print(f"\nbf16 result's fp32 objective / fp32 result's: "
          f"{bf16_objective / fp32_objective:.3f} (target within a few percent)")
    if not args.skip_peer:
        nfx_q, peer_q = rows[0][3], rows[2][3]
        print(f"wall time nfx / pastiche: {rows[0][1] / rows[2][1]:.3f} (target <= 0.25)")
        print(f"style distance nfx / pastiche: {nfx_q['style'] / peer_q['style']:.3f} "
              f"(target <= 1)")
        print(f"content distance nfx / pastiche: {nfx_q['content'] / peer_q['content']:.3f} "
              f"(target <= 1)")

    peak_check(iteration_table(evaluator.engine))


if __name__ == "__main__":
    main()
