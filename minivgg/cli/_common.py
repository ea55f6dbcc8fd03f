"""Small helpers shared by the subcommands: argument types, output-path checks and section headers.

Every number a command takes goes through :func:`_number` (via the types
below): it must parse, be finite (``inf``/``nan`` are refused everywhere) and
lie in its range, or argparse exits with status 2 naming the option. Every
output path a command writes is checked by :func:`output_path` before the
work starts.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..configs import resolve_config
from ..io.files import check_output_path
from . import UsageError


def arch_name(value: str) -> str:
    """argparse type for an architecture name (``vgg16``, ``D``...) via the one name parser; exit 2 on unknown names."""
    try:
        return resolve_config(value)[0]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _number(value: str, cast, what: str, ok) -> int | float:
    """Parse ``value`` with ``cast``, refuse inf/nan, check ``ok(number)``; argparse reports ``what`` was expected."""
    try:
        number = cast(value)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}") from None
    if not math.isfinite(number) or not ok(number):
        raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}")
    return number


def positive_int(value: str) -> int:
    """argparse type for an int >= 1."""
    return _number(value, int, "a positive integer", lambda n: n >= 1)


def non_negative_int(value: str) -> int:
    """argparse type for an int >= 0 (counts that may be zero: patience, padding, warm-up runs)."""
    return _number(value, int, "an integer >= 0", lambda n: n >= 0)


def seed(value: str) -> int:
    """argparse type for a random seed: NumPy's generators take any int >= 0."""
    return _number(value, int, "a seed, an integer >= 0", lambda n: n >= 0)


def positive_float(value: str) -> float:
    """argparse type for a finite float > 0 (learning rates, widths)."""
    return _number(value, float, "a number > 0", lambda n: 0 < n < math.inf)


#: Largest conv channel multiplier the commands take: VGG-16 at 1024x width has 524,288-channel
#: convs and ~10^17 parameters, far past any machine, while every analytic figure still prints.
MAX_WIDTH = 1024.0


def width_multiplier(value: str) -> float:
    """argparse type for a channel multiplier: a finite float in ``(0, MAX_WIDTH]``."""
    return _number(value, float, f"a channel multiplier in (0, {MAX_WIDTH:g}]", lambda n: 0 < n <= MAX_WIDTH)


def non_negative_float(value: str) -> float:
    """argparse type for a finite float >= 0 (weight decay)."""
    return _number(value, float, "a number >= 0", lambda n: 0 <= n < math.inf)


def probability(value: str) -> float:
    """argparse type for a drop probability in [0, 1)."""
    return _number(value, float, "a probability in [0, 1)", lambda n: 0 <= n < 1)


def output_path(path: str | os.PathLike, what: str, suffixes: Sequence[str] | None = None) -> Path:
    """The checked output path (suffix, writable directory; see :func:`minivgg.io.files.check_output_path`).

    Called before a command's work starts; any problem is a :class:`UsageError` (exit 2) naming ``path``.
    """
    try:
        return check_output_path(path, what, suffixes)
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None


class DistinctPaths(argparse.Action):
    """``action=`` for a list of input files: the same file twice (under any spelling) is an argparse error.

    Files are compared by device and inode when they exist (so ``a.npz``,
    ``./a.npz`` and a symlink to it are one file), else by resolved path.
    """

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        seen: dict = {}
        for value in values:
            try:
                st = os.stat(value)
                key: Any = (st.st_dev, st.st_ino)
            except OSError:
                key = Path(value).resolve()
            if key in seen:
                same = f"{seen[key]!r} and {value!r} are" if seen[key] != value else f"{value!r} is"
                parser.error(f"argument {self.metavar or self.dest}: {same} the same file given twice")
            seen[key] = value
        setattr(namespace, self.dest, values)


def section(title: str) -> None:
    """Print a section header for long, multi-part output."""
    print(f"\n== {title} " + "=" * max(3, 74 - len(title)), flush=True)


@contextmanager
def timed() -> Iterator[list]:
    """``with timed() as t: ...`` then ``t[0]`` is the elapsed wall time in seconds."""
    box: list = [0.0]
    start = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - start
