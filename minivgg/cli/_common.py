"""Small helpers shared by the subcommands: argument types and section headers."""

from __future__ import annotations

import argparse
import math
import time
from contextlib import contextmanager
from typing import Iterator

from ..configs import resolve_config


def arch_name(value: str) -> str:
    """argparse type for an architecture name (``vgg16``, ``D``...) via the one name parser; exit 2 on unknown names."""
    try:
        return resolve_config(value)[0]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _number(value: str, cast, what: str, ok) -> int | float:
    """Parse ``value`` with ``cast`` and check ``ok(number)``; argparse reports ``what`` was expected."""
    try:
        number = cast(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}") from None
    if not ok(number):
        raise argparse.ArgumentTypeError(f"expected {what}, got {number}")
    return number


def positive_int(value: str) -> int:
    """argparse type for an int >= 1."""
    return _number(value, int, "a positive integer", lambda n: n >= 1)


def non_negative_int(value: str) -> int:
    """argparse type for an int >= 0 (seeds)."""
    return _number(value, int, "an integer >= 0", lambda n: n >= 0)


def positive_float(value: str) -> float:
    """argparse type for a finite float > 0 (learning rates, widths)."""
    return _number(value, float, "a number > 0", lambda n: 0 < n < math.inf)


def non_negative_float(value: str) -> float:
    """argparse type for a finite float >= 0 (weight decay)."""
    return _number(value, float, "a number >= 0", lambda n: 0 <= n < math.inf)


def probability(value: str) -> float:
    """argparse type for a drop probability in [0, 1)."""
    return _number(value, float, "a probability in [0, 1)", lambda n: 0 <= n < 1)


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
