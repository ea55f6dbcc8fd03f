"""im2col / col2im: the loops that turn a convolution into one matrix product.

For an input ``x`` of shape ``(N, C, H, W)``, a ``KH x KW`` window, stride ``s``
and zero padding ``p``, the column matrix of image ``n`` is

.. math::

    \\mathrm{cols}[n, (c, i, j), (y, x')] = x_{pad}[n, c, s y + i, s x' + j]

with rows ordered ``(c, i, j)`` -- exactly the order of ``w.reshape(F, C*KH*KW)``
-- and columns ordered ``(y, x')`` over the ``H_out x W_out`` output grid. Then
``out[n] = w.reshape(F, -1) @ cols[n]`` is the convolution (cs231n lecture 9 /
assignment 2's "fast layers").

The kernels take the *padded* input ``x_pad`` (N, C, H + 2p, W + 2p), which the
caller builds once: the copy costs ``C*(H+2p)*(W+2p)`` values, a ninth of the
columns for a 3x3 conv, and in exchange the loops have no bounds tests at all.
Measured on this machine that made im2col 1.5-4x faster than clipping each row
against the border in the loop, most on small images (a 2x2 map has nothing
*but* border), where the per-row bookkeeping dominated.

``col2im`` is the adjoint (transpose) of ``im2col``: it *adds* every column
entry back to the padded pixel it was read from, which is how ``dx`` is
assembled from ``w.T @ dout``; the caller then drops the border. Overlapping
windows (stride < kernel) accumulate.

Cost: both kernels touch ``N * C * KH * KW * H_out * W_out`` elements (no
multiplies); they are memory-bound, which is why minivgg bounds the column
buffer and, for 3x3 convs, offers Winograd.

These are serial kernels with ``cache=True, nogil=True`` (compiled once,
reused by later processes) that work on a slice ``[c_lo, c_hi)`` of the input
channels: :func:`minivgg.kernels._parallel.parallel_for` runs slices on several cores
(different channels touch disjoint rows of ``cols`` and disjoint planes of
``dx``). ``cols`` may be a strided view (the ops keep a chunk of images side
by side). No ``fastmath``: they are on the gradient-checked path.
"""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True)
def im2col_channels(x_pad, c_lo, c_hi, kh, kw, stride, h_out, w_out, cols):  # pragma: no cover - compiled
    """Fill rows ``c*KH*KW .. (c+1)*KH*KW`` of ``cols`` (N, C*KH*KW, H_out*W_out) for ``c_lo <= c < c_hi``.

    ``x_pad`` is the zero-padded input (N, C, H + 2p, W + 2p).
    """
    n_img = x_pad.shape[0]
    for c in range(c_lo, c_hi):
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                for n in range(n_img):
                    dst = cols[n, row]
                    for y in range(h_out):
                        src = x_pad[n, c, y * stride + i]
                        base = y * w_out
                        if stride == 1:
                            for xo in range(w_out):
                                dst[base + xo] = src[j + xo]
                        else:
                            for xo in range(w_out):
                                dst[base + xo] = src[j + xo * stride]


@numba.njit(cache=True, nogil=True)
def col2im_channels(cols, c_lo, c_hi, kh, kw, stride, h_out, w_out, dx_pad):  # pragma: no cover - compiled
    """Add rows of ``cols`` back into channels ``c_lo <= c < c_hi`` of the padded gradient ``dx_pad``.

    ``dx_pad`` (N, C, H + 2p, W + 2p) must start zeroed; the caller drops its border.
    """
    n_img = dx_pad.shape[0]
    for c in range(c_lo, c_hi):
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                for n in range(n_img):
                    src = cols[n, row]
                    for y in range(h_out):
                        dst = dx_pad[n, c, y * stride + i]
                        base = y * w_out
                        if stride == 1:
                            for xo in range(w_out):
                                dst[j + xo] += src[base + xo]
                        else:
                            for xo in range(w_out):
                                dst[j + xo * stride] += src[base + xo]
