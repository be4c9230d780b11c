"""`python -m nfx sheet`: every content × style pair as the feed-forward network renders it,
in one labelled PNG (the contact-sheet habit of peers), in seconds and without VGG."""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

from nfx.cli.options import add_settings_options, settings_changes
from nfx.errors import InputError
from nfx.feedforward.runs import feedforward_run
from nfx.images import load_image
from nfx.settings import FIELDS, Settings
from nfx.sheets import contact_sheet

CELL_EDGE = 384  # px: each cell's long edge on the sheet (the render's own is --size)
SHEET_SIZE = 512  # px: the renders' long edge unless --size says otherwise


def register(subparsers: argparse._SubParsersAction) -> None:
    sheet = subparsers.add_parser(
        "sheet", help="a labelled grid of feed-forward previews of every content × style pair",
        description="Render every content image in the style of every style image with the "
                    "feed-forward network (method feedforward: well under a second a cell) "
                    "and write them as one labelled grid: rows are contents, columns styles.")
    sheet.add_argument("--content", nargs="+", required=True, metavar="IMAGE",
                       help="content images (the rows)")
    sheet.add_argument("--style", nargs="+", required=True, metavar="IMAGE",
                       help="style images (the columns)")
    sheet.add_argument("-o", "--output", required=True, help="the sheet's path (.png or .jpg)")
    sheet.add_argument("--cell", type=int, default=CELL_EDGE,
                       help=f"each cell's long edge on the sheet, px (default {CELL_EDGE})")
    # what the network reads, but the method (this is it) and a blend (one style a cell)
    add_settings_options(sheet, names=[name for name, spec in FIELDS.items()
                                       if "feedforward" in spec.methods
                                       and name not in ("method", "style_blend")])
    sheet.set_defaults(func=sheet_command)


def sheet_command(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise InputError(f"{output}: the sheet must be a .png or .jpg file")
    if not output.parent.exists():
        raise InputError(f"{output.parent}: output folder does not exist")
    if not 32 <= args.cell <= 2048:
        raise InputError(f"--cell must be between 32 and 2048 px, got {args.cell}")
    settings = Settings(size=SHEET_SIZE).with_changes(**settings_changes(args),
                                                      method="feedforward")
    contents = [(path, load_image(path)) for path in args.content]
    styles = [(path, load_image(path)) for path in args.style]
    started = time.perf_counter()
    cells = {(r, c): feedforward_run(content, [style], settings).image
             for (r, (_, content)), (c, (_, style))
             in itertools.product(enumerate(contents), enumerate(styles))}
    sheet = contact_sheet(cells, [Path(p).stem for p, _ in contents],
                          [Path(p).stem for p, _ in styles],
                          cell_size=args.cell, row_title="content", column_title="style",
                          title=f"NFX feed-forward previews, {settings.size} px")
    sheet.convert("RGB").save(output)
    print(f"wrote {output} ({len(cells)} cells in {time.perf_counter() - started:.1f} s)")
    return 0
