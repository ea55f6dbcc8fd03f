"""Small helpers shared by the subcommands: argument types and section headers."""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager
from typing import Iterator

from ..configs import ARCHS, CONFIGS


def arch_name(value: str) -> str:
    """argparse type for an architecture name (``vgg16``, ``D``...): exit 2 on unknown names."""
    key = value.strip()
    if key.lower() in ARCHS:
        return key.lower()
    if len(key) == 1 and key.upper() in CONFIGS:
        return key.upper()
    raise argparse.ArgumentTypeError(f"unknown architecture {value!r}; choose from {', '.join(ARCHS)} or A-E")


def positive_int(value: str) -> int:
    """argparse type for an int >= 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {number}")
    return number


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
