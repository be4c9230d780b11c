"""What `init: preview` buys (issue #21, item 3): for each panel pair, the wall time until a run
that starts from the feed-forward preview reaches the default run's style and content
distances (bench_engine's Evaluator), against the default run's own wall time.

The preview schedule is one scale at the full size (the preview already holds the coarse
structure the pyramid's small scales build) with 10, 20, 40, 80, … steps, each a separate
`python -m nfx run` timed as a user runs it; the first that reaches both distances is the time
to reach them. A pair stops once a run takes longer than the default (then it does not reach
them in its time). The issue's rule: `init: preview` becomes the default only if every pair
reaches both in at most half the default's time, so one pair that does not settles it.

    python bench/bench_init_preview.py                 # four panel pairs
    python bench/bench_init_preview.py --pairs all     # every panel pair (an hour here)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402

from bench_engine import IMAGES, Evaluator  # noqa: E402
from bench_panel import pair_name, panel_pairs, run_nfx  # noqa: E402
from nfx.images import load_image  # noqa: E402
from nfx.settings import Settings  # noqa: E402

STEPS = (10, 20, 40, 80, 140, 210)
FIRST_PAIRS = 4


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", choices=("first", "all"), default="first",
                        help=f"the first {FIRST_PAIRS} panel pairs (default) or all of them")
    args = parser.parse_args()
    pairs = panel_pairs("panel")
    pairs = pairs if args.pairs == "all" else pairs[:FIRST_PAIRS]
    out = Path(tempfile.mkdtemp(prefix="nfx-init-preview-"))
    evaluator = Evaluator(IMAGES / pairs[0][0], IMAGES / pairs[0][1])
    print(f"# init: preview against the default start, 512 px, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; outputs in {out}")
    print("| pair | default s | default style | default content | preview schedule | s | "
          "× default | style | content | reached |")
    print("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |")
    verdicts = []
    for content, style in pairs:
        name = pair_name(content, style)
        evaluator.use(IMAGES / content, IMAGES / style)
        default_png = out / f"{name}__default.png"
        default_seconds = run_nfx(content, style, default_png, Settings())
        goal = evaluator.distances(load_image(default_png))
        reached_at = None
        for steps in STEPS:
            settings = Settings(init="preview", scales=1, steps=steps)
            png = out / f"{name}__preview_{steps}.png"
            seconds = run_nfx(content, style, png, settings)
            found = evaluator.distances(load_image(png))
            reached = found["style"] <= goal["style"] and found["content"] <= goal["content"]
            print(f"| {name} | {default_seconds:.1f} | {goal['style']:.4f} | "
                  f"{goal['content']:.3f} | 1 scale × {steps} | {seconds:.1f} | "
                  f"{seconds / default_seconds:.2f} | {found['style']:.4f} | "
                  f"{found['content']:.3f} | {'yes' if reached else 'no'} |", flush=True)
            if reached:
                reached_at = seconds / default_seconds
                break
            if seconds > default_seconds:
                break
        verdicts.append((name, reached_at))
    within = [name for name, ratio in verdicts if ratio is not None and ratio <= 0.5]
    print(f"pairs reaching both distances in <= half the default's time: {len(within)} of "
          f"{len(verdicts)}; " + ", ".join(
              f"{name}: {'never, within the default time' if ratio is None else f'{ratio:.2f}×'}"
              for name, ratio in verdicts))
    print("verdict: " + ("init: preview could be the default (check every pair)"
                         if len(within) == len(verdicts)
                         else "keep init: content (a pair does not reach them in half the time)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
