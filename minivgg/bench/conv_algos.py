"""The conv algorithms against each other: forward speed on every VGG layer shape, and fp32 accuracy.

:func:`conv_race` times each minivgg algorithm (naive loops, im2col + GEMM,
Winograd F(2x2, 3x3)) on each distinct conv shape of a model, in this process,
and names the winner next to what ``algo="auto"`` would pick -- so a reader
sees where the heuristic is right. (PyTorch's per-layer times come from fresh
processes, :func:`minivgg.bench.isolated.compare_layers`: timed in this
process, its idle OpenMP threads would disturb minivgg's.) :func:`conv_accuracy` measures what
Winograd's fewer multiplications cost in float32 rounding, against direct
convolution, both relative to a float64 reference.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..configs import LayerSpec
from ..ops import conv as _conv
from .timing import gflops, measure

#: Conv shapes larger than this many MACs are not timed with the naive loops.
NAIVE_MAX_MACS = 2_000_000


def _conv_shapes(specs: Sequence[LayerSpec], batch: int) -> list[tuple[str, tuple, tuple, int]]:
    """Distinct conv shapes in order of first use: ``("conv3_2,conv3_3", x_shape, w_shape, macs)``."""
    groups: dict[tuple, list[str]] = {}
    macs: dict[tuple, int] = {}
    for s in specs:
        if s.kind == "conv":
            key = ((batch, *s.in_shape), s.weight_shape)
            groups.setdefault(key, []).append(s.name)
            macs.setdefault(key, s.macs * batch)
    return [(",".join(names), xs, ws, macs[xs, ws]) for (xs, ws), names in groups.items()]


def conv_race(specs: Sequence[LayerSpec], batch: int, *, repeats: int = 5, warmup: int = 1,
              algos: Sequence[str] = ("naive", "im2col", "winograd"), dtype=np.float32) -> list[dict]:
    """Each distinct conv shape: forward time of every minivgg algorithm, the winner and GFLOP/s.

    ``naive`` only runs on shapes below :data:`NAIVE_MAX_MACS`. Times are of
    :func:`minivgg.ops.conv2d_forward` (validation included).
    """
    rng = np.random.default_rng(0)
    rows = []
    for names, xs, ws, macs in _conv_shapes(specs, batch):
        x = rng.standard_normal(xs).astype(dtype)
        w = (rng.standard_normal(ws) * np.sqrt(2.0 / (ws[1] * ws[2] * ws[3]))).astype(dtype)
        b = np.zeros(ws[0], dtype=dtype)
        row = {"layers": names, "x_shape": xs, "w_shape": ws, "macs": macs, "times": {}, "gflops": {},
               "auto": _conv.choose_algorithm(xs, ws, 1, ws[2] // 2, "auto")}
        for algo in algos:
            if algo == "naive" and macs > NAIVE_MAX_MACS:
                continue
            if algo == "winograd" and not _conv._winograd.supports(ws, 1, ws[2] // 2):
                continue
            t = measure(lambda: _conv.conv2d_forward(x, w, b, 1, ws[2] // 2, algo=algo), repeats, warmup)
            row["times"][algo] = t.to_dict()
            row["gflops"][algo] = gflops(macs, t.median)
        mine = {a: v["median_s"] for a, v in row["times"].items()}
        row["winner"] = min(mine, key=mine.get)
        rows.append(row)
    return rows


def conv_accuracy(x_shape=(1, 64, 56, 56), w_shape=(64, 64, 3, 3), seed: int = 0) -> dict:
    """fp32 error of each algorithm against a float64 reference on the same (fp32-representable) data.

    Returns, per algorithm, the max and the RMS absolute error of the float32
    forward output, and of the float32 ``dx`` and ``dw``, relative to the
    float64 result's RMS. Direct (im2col) convolution is the yardstick
    Winograd must not be worse than.
    """
    rng = np.random.default_rng(seed)
    x32 = rng.standard_normal(x_shape).astype(np.float32)
    w32 = (rng.standard_normal(w_shape) * np.sqrt(2.0 / np.prod(w_shape[1:]))).astype(np.float32)
    b32 = rng.standard_normal(w_shape[0]).astype(np.float32)
    ref_out, ref_cache = _conv.conv2d_forward(x32.astype(np.float64), w32.astype(np.float64),
                                              b32.astype(np.float64), algo="im2col")
    d32 = rng.standard_normal(ref_out.shape).astype(np.float32)
    refs = (ref_out, *_conv.conv2d_backward(d32.astype(np.float64), ref_cache)[:2])
    res = {"x_shape": x_shape, "w_shape": w_shape}
    for algo in ("im2col", "winograd"):
        out, cache = _conv.conv2d_forward(x32, w32, b32, algo=algo)
        dx, dw, _ = _conv.conv2d_backward(d32, cache)
        entry = {}
        for label, got, ref in zip(("out", "dx", "dw"), (out, dx, dw), refs):
            err = got.astype(np.float64) - ref
            scale = float(np.sqrt(np.mean(ref ** 2)))
            entry[label] = {"max_rel": float(np.abs(err).max() / scale),
                            "rms_rel": float(np.sqrt(np.mean(err ** 2)) / scale)}
        res[algo] = entry
    return res
