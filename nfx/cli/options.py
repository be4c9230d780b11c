"""argparse options derived from the one settings object (nfx.settings.FIELDS)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from nfx.errors import InputError
from nfx.settings import FIELDS, FieldSpec, Settings


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL", default=None,
                        help="database URL (default: $NFX_DATABASE_URL, else data/nfx.db)")


def _option_type(spec: FieldSpec) -> Callable[[str], Any]:  # Any: the setting's own type
    """spec.parse, reporting bad values the way argparse expects."""
    def parse(text: str) -> Any:
        try:
            return spec.parse(text)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = spec.kind  # argparse names the type in some messages
    return parse


def add_settings_options(parser: argparse.ArgumentParser, *, defaults: bool = True,
                         names: Sequence[str] | None = None) -> None:
    """One --option per setting (or per one of `names`), with help showing default and range.

    defaults=False leaves every option unset (None) unless given: for `rerun`, where the
    defaults come from the stored settings instead."""
    group = parser.add_argument_group("settings")
    for spec in (FIELDS[name] for name in (names or FIELDS)):
        shown = f" (default: {spec.format(spec.default) or 'none'}"
        shown += f"; range {spec.describe_range()})" if spec.describe_range() else ")"
        group.add_argument(spec.option, dest=spec.name, type=_option_type(spec),
                           default=None, metavar=spec.kind.upper(),
                           help=spec.help.replace("%", "%%") + (shown if defaults else ""))


def settings_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line, by name."""
    return {name: getattr(args, name) for name in FIELDS if getattr(args, name, None) is not None}


def settings_from_args(args: argparse.Namespace, base: Settings | None = None) -> Settings:
    """Settings from the defaults (or `base`), with the command line's values applied."""
    return (base or Settings()).with_changes(**settings_changes(args))


def add_region_option(parser: argparse.ArgumentParser, more_help: str = "") -> None:
    """--region COLOUR=STYLE (repeatable): what each colour of a mask gets (nfx.regions)."""
    parser.add_argument("--region", action="append", dest="regions", metavar="COLOUR=STYLE",
                        help="what a mask colour gets: '#ff0000=1' (the first style), "
                             "'#00ff00=1+2' (a mix, weighted by --style-blend) or "
                             "'#000000=photo' (kept as it is); once per colour" + more_help)
