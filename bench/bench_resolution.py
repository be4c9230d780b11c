"""Resolution benchmark: peak memory and time per iteration, untiled and tiled, by size.

Each row is one `Engine.stylize` (1 scale, a few L-BFGS iterations, default settings
otherwise) in a fresh interpreter, so its peak RSS (VmHWM) is its own. Rows print as they
finish, with the memory estimate (nfx.planning.budget) beside the measurement and the machine's load.
The estimate is for the L-BFGS history these few iterations fill (iterations - 1 pairs); a
full run's adds the rest (nfx.planning.budget.history_pairs). Tiled rows run within --budget GiB: a
size whose L-BFGS history cannot fit it even in tiles runs with Adam (the optimiser column
says which ran). Untiled rows whose estimate is over --max-gib are skipped, not run: this
machine is shared.
The tiled objective is exact (nfx.engine.tiling, after Galerne et al., "Scaling Painting Style
Transfer", 2024), so the two columns compute the same iterations.

    python bench/bench_resolution.py [--sizes 1024 2048 4096] [--iterations 2] [--tiles 1536 512]
    python bench/bench_resolution.py --sizes 8192 --modes tiled --tiles 1536 --budget 12
    python bench/bench_resolution.py --agreement 512 128   # tiled vs untiled gradients
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
IMAGES = ROOT.parent / "shared" / "images"
GIB = 2**30


def child(size: int, tile: int, iterations: int, content: str, style: str,
          budget: float) -> None:
    """One run; prints a JSON line with the peak RSS and the seconds of each iteration."""
    from PIL import Image

    from nfx.planning.budget import estimate
    from nfx.engine import Engine
    from nfx.images import load_image, size_for_long_edge
    from nfx.settings import Settings

    image = load_image(content)
    width = min(image.width, image.height * 4 // 3)  # 4:3, like 4096×3072
    image = image.crop((0, 0, width, width * 3 // 4)).resize((1024, 768), Image.LANCZOS)
    # Untiled rows: a budget nothing reaches; tiled ones: --budget (the 6 GiB at
    # 4096, 12 at 8192), which the targets' forward passes must keep to as well.
    settings = Settings(size=size, scales=1, steps=iterations, tile=tile,
                        memory_budget=budget if tile else 1000)
    engine = Engine("cpu")
    stamps = [time.perf_counter()]
    result = engine.stylize(image, [load_image(style)], settings,
                            on_progress=lambda p: stamps.append(time.perf_counter()) and None,
                            preview_every=0)
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) * 1024 for line in status
                    if line.startswith("VmHWM"))
    final = size_for_long_edge(image.size, size)
    print(json.dumps({
        "size": list(final), "tile": tile, "peak": peak, "targets": result.timings["targets"],
        "estimate": estimate(*final, settings, result.precision, tile or None,
                             pairs=iterations - 1, optimizer=result.optimizers[-1]),
        "optimizer": result.optimizers[-1],
        "iterations": [b - a for a, b in zip(stamps, stamps[1:])][1:] or None,
        "seconds": [b - a for a, b in zip(stamps, stamps[1:])],
        "precision": result.precision}))


def agreement(size: int, tile: int, content: str, style: str) -> None:
    """Tiled against untiled loss and gradient at one size, every style loss and pooling:
    relative error of the objective and of the gradient (L2), fp32 and bf16."""
    import torch

    from nfx.engine import Engine
    from nfx.engine.devices import autocast
    from nfx.images import load_image, size_for_long_edge
    from nfx.settings import Settings
    from nfx.planning.tile_grid import blocks
    from nfx.engine.tiling import TiledObjective

    engine = Engine("cpu")
    image, painting = load_image(content), load_image(style)
    final = size_for_long_edge(image.size, size)
    print(f"\n{final[0]}×{final[1]}, tile {tile} "
          f"({len(blocks(final[1], final[0], tile, ['relu5_1']))} blocks)\n")
    print("| style loss | pooling | precision | objective rel. error | gradient rel. error |")
    print("| --- | --- | --- | ---: | ---: |")
    noise = torch.randn(1, 3, final[1], final[0], generator=torch.Generator().manual_seed(0))
    for loss in ("gram", "wasserstein"):
        for pooling in ("max", "avg"):
            for precision in ("fp32", "bf16"):
                s = Settings(size=size, style_loss=loss, pooling=pooling, precision=precision)
                objective = engine.targets.objective(image, [painting], ("c", ["s"]), final, s,
                                              precision)
                start = (engine.targets.pixels(image, final) + 20 * noise).clamp(0, 255)
                found = []
                for candidate in (objective, TiledObjective(objective, tile)):
                    pixels = start.clone().requires_grad_(True)
                    with autocast(engine.device, precision):
                        total, _ = candidate(pixels)
                    total.backward()
                    found.append((float(total.detach()), pixels.grad))
                (a, ga), (b, gb) = found
                print(f"| {loss} | {pooling} | {precision} | {abs(a - b) / abs(a):.1e} | "
                      f"{float((ga - gb).norm() / ga.norm()):.1e} |", flush=True)


def measure(size: int, tile: int, args) -> dict:
    started = time.time()
    done = subprocess.run([sys.executable, __file__, "--child", str(size), str(tile),
                           "--iterations", str(args.iterations), "--content", args.content,
                           "--style", args.style, "--budget", str(args.budget)],
                          capture_output=True, text=True)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1:], "wall": time.time() - started}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--tiles", type=int, nargs="+", default=[1536, 1024, 512],
                        help="tile edges of the tiled rows (those smaller than the image)")
    parser.add_argument("--budget", type=float, default=6.0,
                        help="memory budget (GiB) of the tiled rows")
    parser.add_argument("--max-gib", type=float, default=8.0,
                        help="skip runs whose estimate is above this")
    parser.add_argument("--modes", nargs="+", default=["untiled", "tiled"])
    parser.add_argument("--content", default=str(IMAGES / "coffee.png"))
    parser.add_argument("--style", default=str(IMAGES / "kandinsky.jpg"))
    parser.add_argument("--agreement", type=int, nargs=2, metavar=("SIZE", "TILE"),
                        help="instead: tiled against untiled loss and gradient at SIZE")
    parser.add_argument("--child", type=int, nargs=2, metavar=("SIZE", "TILE"))
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.iterations, args.content, args.style, args.budget)
        return
    if args.agreement:
        agreement(*args.agreement, args.content, args.style)
        return

    from nfx.planning.budget import OPTIMISER_NAMES, estimate
    from nfx.settings import Settings

    import torch

    print(f"# NFX resolution benchmark: {Path(args.content).name} x {Path(args.style).name}, "
          f"{args.iterations} L-BFGS iterations, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; bf16 where supported")
    print("\n| size | mode | tile | optimiser | peak RSS GiB | estimate GiB | s/iteration "
          "| load (1 min) |")
    print("| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |")
    ratios = []
    for size in args.sizes:
        final = (size, size * 3 // 4)
        untiled_seconds = None
        runs = [("untiled", 0)] if "untiled" in args.modes else []
        runs += [("tiled", tile) for tile in args.tiles if "tiled" in args.modes and tile < size]
        for mode, tile in runs:
            guess = estimate(*final, Settings(size=size), "bf16", tile or None,
                             pairs=args.iterations - 1)
            load = os.getloadavg()[0]
            if not tile and guess > args.max_gib * GIB:
                print(f"| {final[0]}×{final[1]} | {mode} | - | L-BFGS | skipped "
                      f"(estimate over {args.max_gib:g} GiB) | {guess / GIB:.2f} | | {load:.1f} |",
                      flush=True)
                continue
            row = measure(size, tile, args)
            if "error" in row:
                print(f"| {final[0]}×{final[1]} | {mode} | {tile or '-'} | | failed: "
                      f"{row['error']} | | | {load:.1f} |", flush=True)
                continue
            per = row["iterations"] or row["seconds"]
            seconds = sum(per) / len(per)
            print(f"| {final[0]}×{final[1]} | {mode} | {tile or '-'} | "
                  f"{OPTIMISER_NAMES[row['optimizer']]} | "
                  f"{row['peak'] / GIB:.2f} | {row['estimate'] / GIB:.2f} | "
                  f"{seconds:.2f} | {load:.1f}-{os.getloadavg()[0]:.1f} |",
                  flush=True)
            if not tile:
                untiled_seconds = seconds
            elif untiled_seconds:
                ratios.append(f"{final[0]}×{final[1]}, tiles of {tile} px: tiled / untiled "
                              f"time per iteration {seconds / untiled_seconds:.2f}")
    print("\n" + "\n".join(ratios) + "\n(target: <= 1.5 at 2048 px)")


if __name__ == "__main__":
    main()
