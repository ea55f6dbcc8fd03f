"""Max-pooling loops: forward with the arg-max, backward as a scatter.

For each output position ``(n, c, y, x)`` of a ``size x size`` window with
stride ``s``:

.. math::

    out[n, c, y, x] = \\max_{0 \\le i, j < size} x[n, c, s y + i, s x + j]

and the position of that maximum inside the window, ``i * size + j``, is kept
as a ``uint8`` (so ``size <= 15``). Ties go to the FIRST maximum in row-major
window order (smallest ``i``, then smallest ``j``): deterministic, and the same
rule as a left-to-right ``argmax``. The backward pass sends each upstream
gradient to that one input position; with overlapping windows (stride < size)
an input can receive several, which add.

Cost: ``N * C * H_out * W_out * size^2`` comparisons forward, one add per
output backward. Serial, ``cache=True, nogil=True``, no ``fastmath`` (NaN must
propagate consistently and these kernels are gradient-checked); the ``*_channels``
variants work on a slice of channels so :func:`minivgg.threads.parallel_for`
can spread them over cores.
"""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True)
def maxpool_forward_channels(x, c_lo, c_hi, size, stride, out, argmax):  # pragma: no cover - compiled
    """Fill ``out`` and ``argmax`` (N, C, H_out, W_out) from ``x`` (N, C, H, W) for ``c_lo <= c < c_hi``."""
    n_img, _, h_out, w_out = out.shape
    for n in range(n_img):
        for c in range(c_lo, c_hi):
            for y in range(h_out):
                y0 = y * stride
                for xo in range(w_out):
                    x0 = xo * stride
                    best = x[n, c, y0, x0]
                    best_k = 0
                    for i in range(size):
                        for j in range(size):
                            v = x[n, c, y0 + i, x0 + j]
                            # strict '>' keeps the first maximum on ties
                            if v > best:
                                best = v
                                best_k = i * size + j
                    out[n, c, y, xo] = best
                    argmax[n, c, y, xo] = best_k


@numba.njit(cache=True, nogil=True)
def maxpool_forward(x, size, stride, out, argmax):  # pragma: no cover - compiled
    """Fill ``out`` and ``argmax`` (N, C, H_out, W_out) from ``x`` (N, C, H, W)."""
    maxpool_forward_channels(x, 0, x.shape[1], size, stride, out, argmax)


@numba.njit(cache=True, nogil=True)
def maxpool_backward_channels(dout, argmax, c_lo, c_hi, size, stride, dx):  # pragma: no cover - compiled
    """Add ``dout`` into ``dx`` at the arg-max of each window, channels ``c_lo <= c < c_hi``."""
    n_img, _, h_out, w_out = dout.shape
    for n in range(n_img):
        for c in range(c_lo, c_hi):
            for y in range(h_out):
                for xo in range(w_out):
                    k = argmax[n, c, y, xo]
                    i = k // size
                    j = k - i * size
                    dx[n, c, y * stride + i, xo * stride + j] += dout[n, c, y, xo]


@numba.njit(cache=True, nogil=True)
def maxpool_backward(dout, argmax, size, stride, dx):  # pragma: no cover - compiled
    """Add ``dout`` into ``dx`` at the arg-max of each window; ``dx`` zeroed by the caller."""
    maxpool_backward_channels(dout, argmax, 0, dout.shape[1], size, stride, dx)
