"""Measurement primitives: time a callable with warm-up discarded, and GFLOP/s.

Every timing here discards ``warmup`` calls first -- the first call of a
Numba kernel loads its cache and the first touch of a fresh array page-faults,
neither of which is the steady-state cost -- and keeps every timed run, so a
report can give the median and the spread instead of one lucky number.
Timings use :func:`time.perf_counter` looked up at call time, so a test can
replace the clock.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Timing:
    """Seconds of ``repeats`` runs after ``warmup`` discarded ones."""

    runs: list = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def min(self) -> float:
        return min(self.runs)

    @property
    def max(self) -> float:
        return max(self.runs)

    @property
    def spread(self) -> float:
        """``(max - min) / median``: 0.05 means the runs agree to 5%."""
        return (self.max - self.min) / self.median if self.median > 0 else 0.0

    def to_dict(self) -> dict:
        return {"median_s": self.median, "min_s": self.min, "max_s": self.max, "spread": self.spread,
                "runs_s": list(self.runs)}


def measure(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> Timing:
    """Call ``fn()`` ``warmup`` times untimed, then ``repeats`` times timed (``perf_counter``)."""
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return Timing(runs)


def gflops(macs: int, seconds: float) -> float:
    """``2 * macs / seconds / 1e9`` (one MAC = one multiply + one add)."""
    return 2.0 * macs / seconds / 1e9 if seconds > 0 else float("nan")
