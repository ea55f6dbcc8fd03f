"""im2col / col2im: the loops that turn a convolution into one matrix product.

For an input ``x`` of shape ``(N, C, H, W)``, a ``KH x KW`` window, stride ``s``
and zero padding ``p``, the column matrix of image ``n`` is

.. math::

    \\mathrm{cols}[n, (c, i, j), (y, x')] = x_{pad}[n, c, s y + i, s x' + j]

with rows ordered ``(c, i, j)`` -- exactly the order of ``w.reshape(F, C*KH*KW)``
-- and columns ordered ``(y, x')`` over the ``H_out x W_out`` output grid. Then
``out[n] = w.reshape(F, -1) @ cols[n]`` is the convolution (cs231n lecture 9 /
assignment 2's "fast layers"). Padding is never materialised: out-of-bounds
reads are written as zeros, so no padded copy of ``x`` is made.

``col2im`` is the adjoint (transpose) of ``im2col``: it *adds* every column
entry back to the pixel it was read from, which is how ``dx`` is assembled from
``w.T @ dout``. Overlapping windows (stride < kernel) accumulate.

Cost: both kernels touch ``N * C * KH * KW * H_out * W_out`` elements (no
multiplies); they are memory-bound, which is why minivgg bounds the column
buffer and, for 3x3 convs, offers Winograd.

These are serial kernels with ``cache=True, nogil=True`` (compiled once,
reused by later processes) that work on a slice ``[c_lo, c_hi)`` of the input
channels: :func:`minivgg.kernels._parallel.parallel_for` runs slices on several cores
(different channels touch disjoint rows of ``cols`` and disjoint planes of
``dx``). No ``fastmath``: they are on the gradient-checked path. The inner
loops split each output row into its padded edges and a bounds-check-free
middle, which LLVM vectorises for stride 1.
"""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True, inline="always")
def _valid_range(j, stride, pad, width, w_out):  # pragma: no cover - compiled
    """Output columns ``[lo, hi)`` whose input column ``xo*stride + j - pad`` lies inside ``[0, width)``."""
    lo = 0
    if pad > j:
        lo = (pad - j + stride - 1) // stride
    hi = 0
    if width - 1 + pad - j >= 0:
        hi = (width - 1 + pad - j) // stride + 1
    if hi > w_out:
        hi = w_out
    if lo > hi:
        lo = hi
    return lo, hi


@numba.njit(cache=True, nogil=True)
def im2col_channels(x, c_lo, c_hi, kh, kw, stride, pad, h_out, w_out, cols):  # pragma: no cover - compiled
    """Fill rows ``c*KH*KW .. (c+1)*KH*KW`` of ``cols`` (N, C*KH*KW, H_out*W_out) for ``c_lo <= c < c_hi``."""
    n_img, _, height, width = x.shape
    for n in range(n_img):
        for c in range(c_lo, c_hi):
            for i in range(kh):
                for j in range(kw):
                    row = (c * kh + i) * kw + j
                    lo, hi = _valid_range(j, stride, pad, width, w_out)
                    for y in range(h_out):
                        src_y = y * stride + i - pad
                        base = y * w_out
                        if src_y < 0 or src_y >= height:
                            for xo in range(w_out):
                                cols[n, row, base + xo] = 0
                            continue
                        for xo in range(lo):
                            cols[n, row, base + xo] = 0
                        off = j - pad
                        if stride == 1:
                            for xo in range(lo, hi):
                                cols[n, row, base + xo] = x[n, c, src_y, xo + off]
                        else:
                            for xo in range(lo, hi):
                                cols[n, row, base + xo] = x[n, c, src_y, xo * stride + off]
                        for xo in range(hi, w_out):
                            cols[n, row, base + xo] = 0



@numba.njit(cache=True, nogil=True)
def col2im_channels(cols, c_lo, c_hi, kh, kw, stride, pad, h_out, w_out, dx):  # pragma: no cover - compiled
    """Add rows of ``cols`` back into channels ``c_lo <= c < c_hi`` of ``dx`` (N, C, H, W)."""
    n_img, _, height, width = dx.shape
    for n in range(n_img):
        for c in range(c_lo, c_hi):
            for i in range(kh):
                for j in range(kw):
                    row = (c * kh + i) * kw + j
                    lo, hi = _valid_range(j, stride, pad, width, w_out)
                    off = j - pad
                    for y in range(h_out):
                        src_y = y * stride + i - pad
                        if src_y < 0 or src_y >= height:
                            continue
                        base = y * w_out
                        if stride == 1:
                            for xo in range(lo, hi):
                                dx[n, c, src_y, xo + off] += cols[n, row, base + xo]
                        else:
                            for xo in range(lo, hi):
                                dx[n, c, src_y, xo * stride + off] += cols[n, row, base + xo]
