"""Max-pooling loops: forward with the arg-max, backward as a scatter.

For each output position ``(n, c, y, x)`` of a ``size x size`` window with
stride ``s``:

.. math::

    out[n, c, y, x] = \\max_{0 \\le i, j < size} x[n, c, s y + i, s x + j]

and the position of that maximum inside the window, ``i * size + j``, is kept
as a ``uint8`` (so ``size <= 15``). Ties go to the FIRST maximum in row-major
window order (smallest ``i``, then smallest ``j``): deterministic, and the same
rule as a left-to-right ``argmax``. **NaN** propagates as in ``np.max``: a
window holding a NaN gives NaN, and its arg-max is the FIRST NaN (as
``np.argmax``), so the backward sends the gradient where the forward's value
came from. The comparison that does both is :func:`_takes_over`. The backward
pass sends each upstream gradient to that one input position; with overlapping windows (stride < size)
an input can receive several, which add.

Cost: ``N * C * H_out * W_out * size^2`` comparisons forward, one add per
output backward. Serial, ``cache=True, nogil=True``, no ``fastmath`` (NaN must
propagate consistently and these kernels are gradient-checked); the ``*_channels``
variants work on a slice of channels so :func:`minivgg.kernels._parallel.parallel_for`
can spread them over cores.
"""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True, inline="always")
def _takes_over(v, best):  # pragma: no cover - compiled
    """True if window entry ``v`` replaces the running maximum ``best``.

    ``v > best`` keeps the first of tied maxima; ``not (v <= best)`` is also
    true when ``v`` is NaN, so the first NaN takes over; ``best == best``
    (false once ``best`` is NaN) keeps that first NaN against everything after
    it. A plain ``v > best`` would drop a NaN that is not first in its window.
    """
    return (not v <= best) and best == best


@numba.njit(cache=True, nogil=True)
def _maxpool2x2_channels(x, c_lo, c_hi, out, argmax):  # pragma: no cover - compiled
    """VGG's 2x2/stride-2 case of :func:`maxpool_forward_channels`, one output row at a time.

    The same comparisons in the same order (:func:`_takes_over`, window order
    top-left, top-right, bottom-left, bottom-right), so the same values,
    arg-maxes and NaN behaviour; written over 1-D row views from index 0 with
    the window unrolled, which LLVM vectorises (the generic loop does not):
    about 7x faster on conv1_2's output.
    """
    n_img, _, h_out, w_out = out.shape
    for n in range(n_img):
        for c in range(c_lo, c_hi):
            for y in range(h_out):
                top, bottom = x[n, c, 2 * y], x[n, c, 2 * y + 1]
                o, a = out[n, c, y], argmax[n, c, y]
                for xo in range(w_out):
                    best, k = top[2 * xo], 0
                    v = top[2 * xo + 1]
                    if _takes_over(v, best):
                        best, k = v, 1
                    v = bottom[2 * xo]
                    if _takes_over(v, best):
                        best, k = v, 2
                    v = bottom[2 * xo + 1]
                    if _takes_over(v, best):
                        best, k = v, 3
                    o[xo] = best
                    a[xo] = k


@numba.njit(cache=True, nogil=True)
def maxpool_forward_channels(x, c_lo, c_hi, size, stride, out, argmax):  # pragma: no cover - compiled
    """Fill ``out`` and ``argmax`` (N, C, H_out, W_out) from ``x`` (N, C, H, W) for ``c_lo <= c < c_hi``."""
    if size == 2 and stride == 2:
        _maxpool2x2_channels(x, c_lo, c_hi, out, argmax)
        return
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
                            # first maximum on ties, first NaN if any (see _takes_over)
                            if _takes_over(v, best):
                                best = v
                                best_k = i * size + j
                    out[n, c, y, xo] = best
                    argmax[n, c, y, xo] = best_k


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
