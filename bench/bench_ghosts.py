"""Ghost term benchmark (issue #20): what the term costs per iteration, measured in one run.

Interleaved rounds of the same run with `ghost_weight` 0 (the term not computed) and with the
default, on Tübingen x The Starry Night: at 512 px, untiled at 2048 px, and tiled (tile 512)
at 2048 px. The term's cost is a similarity search of every output position of relu5_1
against at most 16384 of the painting's (nfx.engine.ghosts.MAX_PAINTING_POSITIONS): at 2048 px
the painting has 16384 such positions, so from there up both the network and the term grow
linearly with the pixels, and the ratio at 2048 px is the ratio at any larger size (8192 px
included). Its quality effect is in bench_panel.py's copy column.

    python bench/bench_ghosts.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_engine import IMAGES  # noqa: E402
from bench_regions import iteration_seconds  # noqa: E402
from nfx.engine import Engine  # noqa: E402
from nfx.images import load_image  # noqa: E402
from nfx.settings import Settings  # noqa: E402

CASES = (("512 px", Settings(size=512, scales=1, steps=6)),
         ("2048 px untiled", Settings(size=2048, scales=1, steps=4)),
         ("2048 px tiled (512)", Settings(size=2048, scales=1, steps=4, tile=512)))
TARGET = 1.1  # the term may cost at most a tenth of an iteration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    engine = Engine("cpu")
    photo = load_image(IMAGES / "tubingen.jpg")
    painting = [load_image(IMAGES / "starry_night.jpg")]
    print(f"# ghost term cost per iteration, ghost_weight {Settings().ghost_weight:g} against 0")
    ok = True
    for label, settings in CASES:
        ratios = []
        for _ in range(args.rounds):
            without = iteration_seconds(engine, photo, painting,
                                        settings.with_changes(ghost_weight=0.0), None)
            with_term = iteration_seconds(engine, photo, painting, settings, None)
            ratios.append(with_term / without)
            print(f"  {label}: without {without * 1e3:.0f} ms, with {with_term * 1e3:.0f} ms "
                  f"per iteration ({ratios[-1]:.3f}x)", flush=True)
        ratio = statistics.median(ratios)
        ok &= ratio <= TARGET
        print(f"{label}: median {ratio:.3f}x over {args.rounds} rounds (target <= {TARGET}x): "
              f"{'met' if ratio <= TARGET else 'NOT met'}", flush=True)
    print("all targets met" if ok else "some targets NOT met")


if __name__ == "__main__":
    main()
