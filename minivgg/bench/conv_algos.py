"""The conv algorithms against each other: forward speed on every VGG layer shape, and fp32 accuracy.

:func:`conv_race` times each minivgg algorithm (naive loops, im2col + GEMM,
Winograd F(2x2, 3x3) and F(4x4, 3x3)) on each distinct conv shape of a model,
in this process, and names the winner next to what ``algo="auto"`` would pick
-- so a reader sees where the heuristic is right. (PyTorch's per-layer times
come from fresh processes, :func:`minivgg.bench.isolated.compare_layers`: timed
in this process, its idle OpenMP threads would disturb minivgg's.)
:func:`conv_accuracy` measures what Winograd's fewer multiplications cost in
float32 rounding, against direct convolution, all relative to a float64
reference; :func:`winograd_error_table` does so for every VGG-16 conv layer shape.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..configs import LayerSpec, layer_specs
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
              algos: Sequence[str] = ("naive", "im2col", "winograd", "winograd4"), dtype=np.float32) -> list[dict]:
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
            if algo in _conv.SUPPORTS and not _conv.SUPPORTS[algo](ws, 1, ws[2] // 2):
                continue
            t = measure(lambda: _conv.conv2d_forward(x, w, b, 1, ws[2] // 2, algo=algo), repeats, warmup)
            row["times"][algo] = t.to_dict()
            row["gflops"][algo] = gflops(macs, t.median)
        mine = {a: v["median_s"] for a, v in row["times"].items()}
        row["winner"] = min(mine, key=mine.get)
        rows.append(row)
    return rows


#: The algorithms whose fp32 error :func:`conv_accuracy` and :func:`winograd_error_table` measure:
#: direct convolution (im2col + GEMM) as the yardstick, then Winograd F(2x2, 3x3) and F(4x4, 3x3).
ACCURACY_ALGOS = ("im2col", "winograd", "winograd4")


def _relative_errors(got: np.ndarray, ref: np.ndarray) -> dict:
    """``max |got - ref|`` and ``RMS(got - ref)``, both over ``RMS(ref)`` (scale-free, one number per tensor)."""
    err = got.astype(np.float64) - ref
    scale = float(np.sqrt(np.mean(ref ** 2)))
    return {"max_rel": float(np.abs(err).max() / scale), "rms_rel": float(np.sqrt(np.mean(err ** 2)) / scale)}


def _fp32_errors(x_shape: tuple, w_shape: tuple, algos: Sequence[str], seed: int) -> dict:
    """Per algorithm: the error of its float32 ``out``, ``dx`` and ``dw`` against float64 im2col on the same data.

    The data are drawn in float32 and cast up exactly, so the reference sees
    the very numbers the fp32 run sees: what remains is the fp32 run's rounding.
    Weights have He scale (VGG's initialisation), so outputs have unit size.
    """
    rng = np.random.default_rng(seed)
    x32 = rng.standard_normal(x_shape).astype(np.float32)
    w32 = (rng.standard_normal(w_shape) * np.sqrt(2.0 / np.prod(w_shape[1:]))).astype(np.float32)
    b32 = rng.standard_normal(w_shape[0]).astype(np.float32)
    ref_out, ref_cache = _conv.conv2d_forward(x32.astype(np.float64), w32.astype(np.float64),
                                              b32.astype(np.float64), algo="im2col")
    d32 = rng.standard_normal(ref_out.shape).astype(np.float32)
    refs = (ref_out, *_conv.conv2d_backward(d32.astype(np.float64), ref_cache)[:2])
    res = {}
    for algo in algos:
        out, cache = _conv.conv2d_forward(x32, w32, b32, algo=algo)
        dx, dw, _ = _conv.conv2d_backward(d32, cache)
        res[algo] = {label: _relative_errors(got, ref)
                     for label, got, ref in zip(("out", "dx", "dw"), (out, dx, dw), refs)}
    return res


def conv_accuracy(x_shape=(1, 64, 56, 56), w_shape=(64, 64, 3, 3), seed: int = 0) -> dict:
    """fp32 error of each algorithm against a float64 reference on the same (fp32-representable) data.

    Returns, per algorithm of :data:`ACCURACY_ALGOS`, the max and the RMS
    absolute error of the float32 forward output, and of the float32 ``dx``
    and ``dw``, relative to the float64 result's RMS. Direct (im2col)
    convolution is the yardstick the Winograd variants are compared with.
    """
    return {"x_shape": x_shape, "w_shape": w_shape, **_fp32_errors(x_shape, w_shape, ACCURACY_ALGOS, seed)}


def winograd_error_table(specs: Sequence[LayerSpec] | None = None, *, max_hw: int | None = 56,
                         algos: Sequence[str] = ACCURACY_ALGOS, seed: int = 0) -> list[dict]:
    """fp32 error of direct, F(2x2, 3x3) and F(4x4, 3x3) convolution per conv layer shape (Lavin & Gray's Table 4).

    Parameters
    ----------
    specs : the layers to measure, default VGG-16's (:func:`minivgg.configs.layer_specs`).
        Each distinct conv shape is measured once, at batch 1.
    max_hw : cap on H and W (default 56: VGG-16's blocks 1 and 2 are measured
        at 56x56 instead of 224x224 and 112x112 -- the channel counts, which set
        the GEMMs' summation length and hence the rounding, are kept; the
        spatial size only sets how many outputs are sampled). ``None``: no cap.
    algos : keys of :data:`minivgg.ops.conv.ALGORITHMS`, all 3x3/s1/p1-capable.

    Returns
    -------
    One row per shape, in order of first use: ``{"layers", "x_shape", "w_shape",
    "errors": {algo: {"out"|"dx"|"dw": {"max_rel", "rms_rel"}}}}``, errors as
    in :func:`conv_accuracy` (relative to the float64 reference's RMS).
    """
    if specs is None:
        specs = layer_specs("vgg16")
    rows = []
    for i, (names, xs, ws, _) in enumerate(_conv_shapes(specs, 1)):
        if max_hw is not None:
            xs = (*xs[:2], min(xs[2], max_hw), min(xs[3], max_hw))
        rows.append({"layers": names, "x_shape": xs, "w_shape": ws,
                     "errors": _fp32_errors(xs, ws, algos, seed + i)})
    return rows
