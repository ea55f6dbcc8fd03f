"""Measured choice of the convolution algorithm: time each candidate on the layer's own shape, keep the fastest.

``algo="auto"`` is a fixed shape rule (:func:`minivgg.ops.conv.choose_algorithm`),
the same in every process. Which algorithm is really fastest for a shape
depends on the CPU, the BLAS kernel, the thread count and the batch: on this
machine the winner of VGG-16's 28x28 layers flips between im2col and Winograd
from run to run, and on a small network's 4x4 maps the rule's tile count says
little. :class:`Tuner` measures instead: the first time a shape is seen it
runs every applicable algorithm (forward for inference, forward+backward for
training) on random data of that shape, ``repeats`` times after one warm-up,
and remembers the fastest by its best time. Later calls are a dictionary
lookup.

Trade-offs, which is why this is opt-in (``algo="tune"`` on a layer or model):
the first forward pays for the measurements (a few times the layer's cost per
candidate); the choice can differ between processes, and so can the float
rounding (Winograd and im2col differ at the 1e-7 level in float32), so a
resumed training run is only bit-identical to an uninterrupted one with a
fixed algorithm.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ...kernels import _parallel as threads


def candidates(w_shape: tuple, stride: int, pad: int) -> list[str]:
    """The fast algorithms that apply to this convolution (never ``naive``)."""
    from . import ALGORITHMS, SUPPORTS

    return [a for a in ALGORITHMS if a != "naive" and SUPPORTS.get(a, lambda *_: True)(w_shape, stride, pad)]


def time_algorithms(x_shape: tuple, w_shape: tuple, stride: int, pad: int, dtype, *, train: bool = False,
                    repeats: int = 3, clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Best-of-``repeats`` seconds of each candidate on random data of these shapes (one warm-up each)."""
    from . import conv2d_backward, conv2d_forward

    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = np.zeros(w_shape[0], dtype=dtype)
    times = {}
    for algo in candidates(w_shape, stride, pad):
        def run():
            out, cache = conv2d_forward(x, w, b, stride, pad, algo=algo)
            if train:
                conv2d_backward(np.ones_like(out), cache)

        run()
        best = float("inf")
        for _ in range(repeats):
            t0 = clock()
            run()
            best = min(best, clock() - t0)
        times[algo] = best
    return times


class Tuner:
    """Remembers the fastest algorithm per (shapes, stride, pad, dtype, mode, thread count).

    Parameters
    ----------
    repeats : timed runs per candidate
    measure : ``measure(x_shape, w_shape, stride, pad, dtype, train=..., repeats=...) -> {algo: seconds}``
        (default :func:`time_algorithms`; tests pass a fake)
    """

    def __init__(self, repeats: int = 3, measure: Callable[..., dict[str, float]] = time_algorithms) -> None:
        self.repeats = repeats
        self.measure = measure
        self.table: dict[tuple, str] = {}
        self.timings: dict[tuple, dict[str, float]] = {}

    def choose(self, x_shape: tuple, w_shape: tuple, stride: int, pad: int, dtype, train: bool = False) -> str:
        """The fastest algorithm for this case, measured on first use."""
        key = (tuple(x_shape), tuple(w_shape), stride, pad, np.dtype(dtype).str, bool(train),
               threads.get_num_threads())
        if key not in self.table:
            times = self.measure(tuple(x_shape), tuple(w_shape), stride, pad, dtype, train=train,
                                 repeats=self.repeats)
            self.timings[key] = times
            self.table[key] = min(times, key=times.get)
        return self.table[key]

    def clear(self) -> None:
        """Forget every measurement (e.g. after changing the thread count's meaning or the machine's load)."""
        self.table.clear()
        self.timings.clear()
