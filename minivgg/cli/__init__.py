"""The ``minivgg`` command line: argument parsing and printing only.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a
``run(args) -> int`` function. The logic a library user would also want lives
in the library modules those functions call.

Conventions: ``--help`` on every command; exit status 0 on success, 1 when the
work itself failed (e.g. a check did not pass), 2 for bad arguments or unusable
input files, with a one-line ``minivgg <cmd>: error: ...`` message.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# Subcommand modules, in the order `minivgg --help` lists them.
COMMANDS = ("tour", "summary", "receptive_field", "compare", "gradcheck", "bench", "train",
            "evaluate", "features", "ensemble", "convert", "predict")


class UsageError(Exception):
    """Bad arguments or input found after parsing; reported on one line with exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand registered."""
    from .._version import __version__

    parser = argparse.ArgumentParser(
        prog="minivgg",
        description="VGG-16/19 from scratch in NumPy + Numba: the math, the numbers, the speed.",
    )
    parser.add_argument("--version", action="version", version=f"minivgg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``minivgg`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"minivgg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
