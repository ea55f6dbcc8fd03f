"""The ``minivgg`` command line: argument parsing and printing only.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a
``run(args) -> int`` function. The logic a library user would also want lives
in the library modules those functions call.

Conventions: ``--help`` on every command; errors are one line,
``minivgg <cmd>: error: ...``, naming the file or argument and what is wrong.

Exit statuses (the named constants below; README.md has the same table):

====  ==================  ======================================================
code  constant            meaning
====  ==================  ======================================================
0     ``EXIT_OK``         success
1     ``EXIT_FAILED``     a check the command ran did not pass (``gradcheck``, ``tour``)
2     ``EXIT_USAGE``      bad arguments (argparse) or unusable input (:class:`UsageError`)
3     ``EXIT_NONFINITE``  numbers went non-finite: training diverged (NaN/inf loss,
                          metric or parameters), or a loaded model holds NaN/inf parameters
70    ``EXIT_INTERNAL``   an unexpected exception, i.e. a bug in minivgg: the traceback,
                          then ``minivgg <cmd>: internal error, please report: ...``
130   ``EXIT_INTERRUPTED``  Ctrl-C (``train`` first says which epoch was kept and how to resume)
141   ``EXIT_PIPE``       the reader of standard output went away (``minivgg summary vgg16 | head``):
                          output stops quietly, as for any Unix filter killed by SIGPIPE
====  ==================  ======================================================
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from typing import Sequence

# Subcommand modules, in the order `minivgg --help` lists them.
COMMANDS = ("tour", "summary", "receptive_field", "compare", "gradcheck", "bench", "train",
            "evaluate", "features", "ensemble", "experiment", "convert", "export", "predict", "localize",
            "visualize", "exercise")


EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NONFINITE = 3
EXIT_INTERNAL = 70  # EX_SOFTWARE of BSD's sysexits.h
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C
EXIT_PIPE = 141  # 128 + SIGPIPE, what a shell reports for `cmd | head` when cmd is killed by the closed pipe


class UsageError(Exception):
    """Bad arguments or input found after parsing; reported on one line with exit status 2."""


def _nonfinite_errors() -> tuple[type[BaseException], ...]:
    """The library's "numbers went non-finite" exceptions (exit status 3)."""
    from ..io.weights import NonFiniteParameters
    from ..training.config import TrainingDiverged

    return (NonFiniteParameters, TrainingDiverged)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


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
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help / --version (0) or a bad argument (2, message printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    args.argv = argv  # what the user typed, for messages such as train's "--resume" hint
    nonfinite = _nonfinite_errors()
    try:
        return int(args.func(args) or EXIT_OK)
    except UsageError as exc:
        print(f"minivgg {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        # a command may wrap a library error in UsageError; non-finite numbers keep their own status
        cause = exc.__cause__ if exc.__cause__ is not None else exc.__context__  # `from None` keeps the context
        return EXIT_NONFINITE if isinstance(cause, nonfinite) else EXIT_USAGE
    except nonfinite as exc:
        print(f"minivgg {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_NONFINITE
    except KeyboardInterrupt:
        print(f"minivgg {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_PIPE
    except Exception as exc:  # a bug: show everything, then say so in one line
        traceback.print_exc()
        print(f"minivgg {args.command}: internal error, please report: {type(exc).__name__}: {_one_line(exc)}",
              file=sys.stderr)
        return EXIT_INTERNAL


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not raise on the closed pipe again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (captured in tests): nothing left to flush into
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
