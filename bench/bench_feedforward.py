"""Feed-forward benchmark: the time of one 512 px cell of nfx.feedforward (Ghiasi et al. 2017)
on photo x painting pairs, and one 2048 px render, with the outputs kept for looking at.

A cell is one `stylize` call as a batch would make it: the painting through the style
predictor, then the photo through the transformer in one whole-image pass. The 512 px time is
the median of 5 after a warm-up (the first call loads the models); 2048 px is timed once,
after the 512 px runs, to show how a whole-image pass grows with the pixels. Outputs go to
--out (default /tmp/ff_bench): look at them for tile seams or checkerboard artefacts (there
should be none: the image is never tiled) and for the size of the brush marks.

    python bench/bench_feedforward.py [--out /tmp/ff_bench]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nfx.feedforward import device, stylize  # noqa: E402
from nfx.images import load_image  # noqa: E402

IMAGES = ROOT.parent / "shared" / "images"
PAIRS = [("tubingen.jpg", "starry_night.jpg"), ("chelsea.png", "kandinsky.jpg"),
         ("astronaut.png", "the_scream.jpg")]
RUNS = 5


def seconds(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/ff_bench"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"feed-forward on {device()}")
    for photo_name, painting_name in PAIRS:
        photo, painting = load_image(IMAGES / photo_name), load_image(IMAGES / painting_name)
        stylize(photo, [painting], size=512)  # warm-up
        times = [seconds(lambda: stylize(photo, [painting], size=512)) for _ in range(RUNS)]
        pair = f"{Path(photo_name).stem}_x_{Path(painting_name).stem}"
        stylize(photo, [painting], size=512).save(args.out / f"{pair}_512.png")
        print(f"{pair:32s} 512 px: median {statistics.median(times):.3f} s "
              f"(min {min(times):.3f}, max {max(times):.3f}, {RUNS} runs)")
    photo_name, painting_name = PAIRS[0]
    photo, painting = load_image(IMAGES / photo_name), load_image(IMAGES / painting_name)
    started = time.perf_counter()
    large = stylize(photo, [painting], size=2048)
    elapsed = time.perf_counter() - started
    pair = f"{Path(photo_name).stem}_x_{Path(painting_name).stem}"
    large.save(args.out / f"{pair}_2048.png")
    print(f"{pair:32s} 2048 px: {elapsed:.3f} s once ({large.size[0]}x{large.size[1]})")
    print(f"outputs in {args.out}")


if __name__ == "__main__":
    main()
