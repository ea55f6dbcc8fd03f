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

These are serial kernels with ``cache=True`` (compiled once, reused by later
processes); no ``fastmath``, because they are on the gradient-checked path.
"""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True)
def im2col(x, kh, kw, stride, pad, h_out, w_out, cols):  # pragma: no cover - compiled
    """Fill ``cols`` (N, C*KH*KW, H_out*W_out) from ``x`` (N, C, H, W); zeros where padded."""
    n_img, channels, height, width = x.shape
    for n in range(n_img):
        for c in range(channels):
            for i in range(kh):
                for j in range(kw):
                    row = (c * kh + i) * kw + j
                    for y in range(h_out):
                        src_y = y * stride + i - pad
                        base = y * w_out
                        if src_y < 0 or src_y >= height:
                            for xo in range(w_out):
                                cols[n, row, base + xo] = 0
                            continue
                        for xo in range(w_out):
                            src_x = xo * stride + j - pad
                            if 0 <= src_x < width:
                                cols[n, row, base + xo] = x[n, c, src_y, src_x]
                            else:
                                cols[n, row, base + xo] = 0


@numba.njit(cache=True, nogil=True)
def col2im(cols, kh, kw, stride, pad, h_out, w_out, dx):  # pragma: no cover - compiled
    """Add ``cols`` (N, C*KH*KW, H_out*W_out) back into ``dx`` (N, C, H, W); padding dropped.

    ``dx`` must be zeroed (or hold a gradient to accumulate onto) by the caller.
    """
    n_img, channels, height, width = dx.shape
    for n in range(n_img):
        for c in range(channels):
            for i in range(kh):
                for j in range(kw):
                    row = (c * kh + i) * kw + j
                    for y in range(h_out):
                        src_y = y * stride + i - pad
                        if src_y < 0 or src_y >= height:
                            continue
                        base = y * w_out
                        for xo in range(w_out):
                            src_x = xo * stride + j - pad
                            if 0 <= src_x < width:
                                dx[n, c, src_y, src_x] += cols[n, row, base + xo]
