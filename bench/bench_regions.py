"""Regions benchmark (issue #23): masked runs against unmasked ones, measured in one run.

For every photo of the panel and two pairs of paintings, a mask splits the photo into a left
region (painting A), a right region (painting B) and a kept ellipse (`photo`) in the middle
of the upper half. Three runs with NFX's defaults at 512 px: A alone, B alone, and the
masked run. An evaluator that restricts statistics to a region (Grams over the region's
positions, hard masks at each layer's grid) scores:
- each style region's style distance to its own painting, against the unmasked run with
  that painting alone over the same region (target <= 1.1x), and against the other
  painting (its own must be lower);
- the photo region's content distance, against the same area of the unmasked runs (target
  <= 0.25x).
Then the cost per iteration with the 3-colour mask against none, interleaved rounds in one
run: at 512 px, and tiled (tile 512) at 2048 px (target <= 1.2x each).

    python bench/bench_regions.py [--photos tubingen.jpg ...] [--skip-quality] [--skip-timing]
                                  [--sheet out.png]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_engine import IMAGES, STYLE_LAYERS  # noqa: E402
from nfx.engine import Engine  # noqa: E402
from nfx.engine.guided import grid, region_rows, weighted_moments  # noqa: E402
from nfx.engine.losses import gram  # noqa: E402
from nfx.images import load_image, resize, size_for_long_edge  # noqa: E402
from nfx.regions import RegionInput, RegionMap, weights  # noqa: E402
from nfx.settings import Settings  # noqa: E402
from nfx.sheets import contact_sheet  # noqa: E402

PHOTOS = ("tubingen.jpg", "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")
PAINTING_PAIRS = (("starry_night.jpg", "the_scream.jpg"), ("shipwreck.jpg", "kandinsky.jpg"))
LEFT, RIGHT, KEPT = "#ff0000", "#0000ff", "#000000"
ASSIGNMENTS = RegionMap.parse([f"{LEFT}=1", f"{RIGHT}=2", f"{KEPT}=photo"])


def split_mask(size: tuple[int, int]) -> Image.Image:
    """Left half red, right half blue, an ellipse (a fifth of the width, two fifths of the
    height) black in the middle of the upper half: three regions on any photo."""
    width, height = size
    mask = Image.new("RGB", size, LEFT)
    ImageDraw.Draw(mask).rectangle((width // 2, 0, width, height), fill=RIGHT)
    cx, cy, rx, ry = width / 2, height * 0.35, width * 0.2, height * 0.2
    ImageDraw.Draw(mask).ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=KEPT)
    return mask


class RegionEvaluator:
    """fp32 VGG-19 features (the panel's yardstick) restricted to a region."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _region_maps(self, mask: RegionInput, colour: str, size: tuple[int, int]):
        index = mask.regions.colours.index(colour)
        hard = torch.from_numpy(weights(mask.mask, mask.regions, size, 0.0)[index])
        return {layer: torch.nn.functional.interpolate(
            hard[None, None], size=grid(layer, size[1], size[0]), mode="area")[0, 0]
            for layer in (*STYLE_LAYERS, "relu4_2")}

    def style_distance(self, output: Image.Image, painting: Image.Image, mask: RegionInput,
                       colour: str) -> float:
        """Mean over style layers of ‖G_region(out) − G(painting)‖² / ‖G(painting)‖²."""
        maps = self._region_maps(mask, colour, output.size)
        out = self.engine.features(output, STYLE_LAYERS)
        ref = self.engine.features(resize(painting, size_for_long_edge(
            painting.size, max(output.size))), STYLE_LAYERS)
        values = []
        for layer in STYLE_LAYERS:
            second, _, _ = weighted_moments(out[layer], region_rows(maps[layer]), False)
            target = gram(ref[layer])
            values.append(float((second - target).square().sum() / target.square().sum()))
        return statistics.mean(values)

    def content_distance(self, output: Image.Image, photo: Image.Image, mask: RegionInput,
                         colour: str) -> float:
        """‖m (F(out) − F(photo))‖² / ‖m F(photo)‖² at relu4_2 over the region."""
        m = self._region_maps(mask, colour, output.size)["relu4_2"]
        out = self.engine.features(output, ("relu4_2",))["relu4_2"]
        ref = self.engine.features(resize(photo, output.size), ("relu4_2",))["relu4_2"]
        return float(((out - ref) * m).square().sum() / (ref * m).square().sum())


def quality(engine: Engine, photos, sheet: Path | None) -> bool:
    judge = RegionEvaluator(engine)
    settings = Settings()
    ok = True
    cells = []
    print("pair | region | masked | unmasked same painting | masked vs other painting | ok")
    for photo_name in photos:
        photo = load_image(IMAGES / photo_name)
        mask_picture = split_mask(photo.size)
        mask = RegionInput.of(mask_picture, mask_picture.tobytes(), ASSIGNMENTS, photo.size, 2)
        for a_name, b_name in PAINTING_PAIRS:
            a, b = load_image(IMAGES / a_name), load_image(IMAGES / b_name)
            alone_a = engine.stylize(photo, [a], settings).image
            alone_b = engine.stylize(photo, [b], settings).image
            masked = engine.stylize(photo, [a, b], settings, regions=mask).image
            pair = f"{Path(photo_name).stem} × {Path(a_name).stem}|{Path(b_name).stem}"
            for colour, own, other, alone in ((LEFT, a, b, alone_a), (RIGHT, b, a, alone_b)):
                mine = judge.style_distance(masked, own, mask, colour)
                reference = judge.style_distance(alone, own, mask, colour)
                crossed = judge.style_distance(masked, other, mask, colour)
                good = mine <= 1.1 * reference and mine < crossed
                ok &= good
                print(f"{pair} | {colour} | {mine:.4f} | {reference:.4f} ({mine / reference:.2f}x)"
                      f" | {crossed:.4f} | {'yes' if good else 'NO'}")
            kept = judge.content_distance(masked, photo, mask, KEPT)
            unmasked = statistics.mean(judge.content_distance(x, photo, mask, KEPT)
                                       for x in (alone_a, alone_b))
            good = kept <= 0.25 * unmasked
            ok &= good
            print(f"{pair} | {KEPT} (photo) content | {kept:.4f} | {unmasked:.4f} "
                  f"({kept / unmasked:.2f}x) | | {'yes' if good else 'NO'}")
            cells.append([photo, mask_picture.resize(photo.size), alone_a, alone_b, masked])
    if sheet is not None:
        rows = [f"{Path(p).stem} × {Path(a).stem} | {Path(b).stem}" for p in photos
                for a, b in PAINTING_PAIRS]
        contact_sheet({(r, c): image for r, row in enumerate(cells)
                       for c, image in enumerate(row)}, rows,
                      ["photo", "mask", "A alone", "B alone", "masked"]).save(sheet)
        print(f"contact sheet: {sheet}")
    return ok


def iteration_seconds(engine: Engine, photo, paintings, settings, regions) -> float:
    stamps: list[float] = []
    engine.stylize(photo, paintings, settings, lambda p: stamps.append(time.perf_counter()),
                   preview_every=0, regions=regions)
    return statistics.median(b - a for a, b in zip(stamps[1:], stamps[2:]))


def timing(engine: Engine, rounds: int) -> bool:
    photo = load_image(IMAGES / "tubingen.jpg")
    paintings = [load_image(IMAGES / name) for name in PAINTING_PAIRS[0]]
    picture = split_mask(photo.size)
    mask = RegionInput.of(picture, picture.tobytes(), ASSIGNMENTS, photo.size, 2)
    ok = True
    for label, settings in (("512 px", Settings(size=512, scales=1, steps=6)),
                            ("2048 px tiled", Settings(size=2048, scales=1, steps=4, tile=512))):
        ratios = []
        for _ in range(rounds):
            plain = iteration_seconds(engine, photo, paintings[:1], settings, None)
            masked = iteration_seconds(engine, photo, paintings, settings, mask)
            ratios.append(masked / plain)
            print(f"  {label}: unmasked {plain * 1e3:.0f} ms, 3-colour mask {masked * 1e3:.0f} ms "
                  f"per iteration ({masked / plain:.2f}x)")
        ratio = statistics.median(ratios)
        ok &= ratio <= 1.2
        print(f"{label}: median ratio {ratio:.2f}x over {rounds} rounds (target <= 1.2x): "
              f"{'met' if ratio <= 1.2 else 'NOT met'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", nargs="+", default=list(PHOTOS))
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sheet", type=Path)
    args = parser.parse_args()
    engine = Engine("cpu")
    ok = True
    if not args.skip_timing:
        ok &= timing(engine, args.rounds)
    if not args.skip_quality:
        ok &= quality(engine, args.photos, args.sheet)
    print("all targets met" if ok else "some targets NOT met")


if __name__ == "__main__":
    main()
