"""Max-pooling, forward and backward (cs231n lecture 9; VGG uses 2x2, stride 2).

For ``x`` (N, C, H, W), window ``size`` and ``stride``:

.. math::

    out[n,c,y,x] = \\max_{0 \\le i,j < size} x[n, c, stride \\cdot y + i, stride \\cdot x + j],
    \\qquad H_{out} = \\lfloor (H - size) / stride \\rfloor + 1

Backward routes each upstream gradient to the arg-max of its window and adds
where windows overlap. **Ties** go to the first maximum in row-major window
order (top row first, then leftmost): deterministic, documented, and matching
a left-to-right ``argmax``. (PyTorch may pick another tied element; parity tests
therefore use inputs without ties.) **NaN** propagates as in ``np.max`` and
PyTorch: a window holding a NaN outputs NaN and its gradient goes to the first
NaN in window order (``np.argmax``'s choice), on both paths; ``+inf``/``-inf``
are ordinary extremes.

Cost: ``N*C*H_out*W_out*size^2`` comparisons, no multiplies. Training keeps
only a ``uint8`` arg-max per output (1 byte each), not the input.

Two implementations with one signature: ``algo="naive"`` (NumPy loops over the
window, to read) and ``algo="numba"`` (the default; :mod:`minivgg.kernels.pooling`,
channels split over :func:`minivgg.kernels._parallel.get_num_threads` cores).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..kernels import _parallel as threads
from ..kernels import pooling as _k
from ._validate import check_float_array, check_positive_int


class MaxPoolCache(NamedTuple):
    """Arg-max position ``i*size + j`` inside each window, and the input's shape."""

    argmax: np.ndarray  # (N, C, H_out, W_out), uint8
    x_shape: tuple
    size: int
    stride: int


def pool_output_size(size_in: int, size: int, stride: int) -> int:
    """``(size_in - size) // stride + 1`` (no padding; the remainder is dropped)."""
    return (size_in - size) // stride + 1


def _naive_forward(x, size, stride, out, argmax):
    _, _, ho, wo = out.shape
    for y in range(ho):
        for xo in range(wo):
            window = x[:, :, y * stride:y * stride + size, xo * stride:xo * stride + size]  # (N, C, s, s)
            flat = window.reshape(x.shape[0], x.shape[1], size * size)
            k = np.argmax(flat, axis=2)  # first maximum on ties, like the kernel
            argmax[:, :, y, xo] = k
            out[:, :, y, xo] = np.take_along_axis(flat, k[..., None], axis=2)[..., 0]


def _naive_backward(dout, argmax, size, stride, dx):
    n_img, channels, ho, wo = dout.shape
    for n in range(n_img):
        for c in range(channels):
            for y in range(ho):
                for xo in range(wo):
                    i, j = divmod(int(argmax[n, c, y, xo]), size)
                    dx[n, c, y * stride + i, xo * stride + j] += dout[n, c, y, xo]


#: A slice handed to another thread should carry at least this many outputs.
_MIN_OUTPUTS_PER_THREAD = 16384


def _numba_forward(x, size, stride, out, argmax):
    grain = max(1, _MIN_OUTPUTS_PER_THREAD // max(1, out.shape[0] * out.shape[2] * out.shape[3]))
    threads.parallel_for(lambda lo, hi: _k.maxpool_forward_channels(x, lo, hi, size, stride, out, argmax),
                         x.shape[1], grain)


def _numba_backward(dout, argmax, size, stride, dx):
    grain = max(1, _MIN_OUTPUTS_PER_THREAD // max(1, dout.shape[0] * dout.shape[2] * dout.shape[3]))
    threads.parallel_for(lambda lo, hi: _k.maxpool_backward_channels(dout, argmax, lo, hi, size, stride, dx),
                         dout.shape[1], grain)


_IMPLS = {"naive": (_naive_forward, _naive_backward), "numba": (_numba_forward, _numba_backward)}


def maxpool_forward(x: np.ndarray, size: int = 2, stride: int = 2, *, algo: str = "numba",
                    name: str = "maxpool") -> tuple[np.ndarray, MaxPoolCache]:
    """Max over ``size x size`` windows every ``stride`` pixels; return ``(out, cache)``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), float32 or float64
    size : int, 1..15
        Window side (the arg-max is stored in a uint8).
    stride : int >= 1
    algo : {"numba", "naive"}
    name : str
        Layer name used in error messages.

    Returns
    -------
    out : ndarray, shape (N, C, (H - size)//stride + 1, (W - size)//stride + 1)
    cache : MaxPoolCache

    Cost: ``N*C*H_out*W_out*size^2`` comparisons.
    """
    check_float_array(x, name, "input x", ndim=4)
    size = check_positive_int(size, name, "pool size")
    stride = check_positive_int(stride, name, "stride")
    if size > 15:
        raise ValueError(f"{name}: pool size must be <= 15 (arg-max kept as uint8), got {size}")
    if algo not in _IMPLS:
        raise ValueError(f"{name}: unknown pooling algorithm {algo!r}; expected one of {sorted(_IMPLS)}")
    n, c, h, w = x.shape
    if h < size or w < size:
        raise ValueError(
            f"{name}: input {h}x{w} is smaller than the {size}x{size} pooling window "
            "(too many pools for this input size?)"
        )
    ho, wo = pool_output_size(h, size, stride), pool_output_size(w, size, stride)
    x = np.ascontiguousarray(x)
    out = np.empty((n, c, ho, wo), dtype=x.dtype)
    argmax = np.empty((n, c, ho, wo), dtype=np.uint8)
    _IMPLS[algo][0](x, size, stride, out, argmax)
    return out, MaxPoolCache(argmax, x.shape, size, stride)


def maxpool_backward(dout: np.ndarray, cache: MaxPoolCache, *, algo: str = "numba") -> np.ndarray:
    """Route ``dout`` (N, C, H_out, W_out) to each window's arg-max; return ``dx`` (N, C, H, W)."""
    argmax, x_shape, size, stride = cache
    name = "maxpool_backward"
    check_float_array(dout, name, "upstream gradient dout", ndim=4)
    if dout.shape != argmax.shape:
        raise ValueError(f"{name}: dout must have the forward output's shape {argmax.shape}, got {dout.shape}")
    if algo not in _IMPLS:
        raise ValueError(f"{name}: unknown pooling algorithm {algo!r}; expected one of {sorted(_IMPLS)}")
    dx = np.zeros(x_shape, dtype=dout.dtype)
    _IMPLS[algo][1](np.ascontiguousarray(dout), argmax, size, stride, dx)
    return dx
