"""`python -m nfx`: one entry point; each command group lives in its own module.

Every module listed in COMMAND_MODULES has `register(subparsers)`, which adds its commands and
sets `func` on each: `func(args) -> int` returns the exit code. User errors (`NFXError`) end
as one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from nfx.errors import NFXError

COMMAND_MODULES = ("nfx.cli.engine_cmds", "nfx.cli.sheet_cmd", "nfx.cli.queue_cmds",
                   "nfx.cli.app_cmd")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"nfx: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m nfx", description="NFX neural style transfer.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:  # imported here: `--help` loads neither torch nor the store
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except NFXError as exc:
        print(f"nfx: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nfx: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `nfx list | head`: the reader left; stop quietly like other Unix tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
