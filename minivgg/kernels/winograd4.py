"""Winograd F(4x4, 3x3) transforms (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015).

A 3x3/stride-1/pad-1 convolution computes each 4x4 block of outputs from a
6x6 tile ``d`` of the (padded) input:

.. math::

    Y = A^T \\big[ (G g G^T) \\odot (B^T d B) \\big] A

with the interpolation points ``0, 1, -1, 2, -2`` and infinity (Lavin & Gray's
eq. (9); the same matrices wincnn prints):

.. math::

    B^T = \\begin{pmatrix}
        4 & 0 & -5 & 0 & 1 & 0\\\\
        0 & -4 & -4 & 1 & 1 & 0\\\\
        0 & 4 & -4 & -1 & 1 & 0\\\\
        0 & -2 & -1 & 2 & 1 & 0\\\\
        0 & 2 & -1 & -2 & 1 & 0\\\\
        0 & 4 & 0 & -5 & 0 & 1 \\end{pmatrix},\\;
    G = \\begin{pmatrix}
        \\tfrac14 & 0 & 0\\\\
        -\\tfrac16 & -\\tfrac16 & -\\tfrac16\\\\
        -\\tfrac16 & \\tfrac16 & -\\tfrac16\\\\
        \\tfrac1{24} & \\tfrac1{12} & \\tfrac16\\\\
        \\tfrac1{24} & -\\tfrac1{12} & \\tfrac16\\\\
        0 & 0 & 1 \\end{pmatrix},\\;
    A^T = \\begin{pmatrix}
        1 & 1 & 1 & 1 & 1 & 0\\\\
        0 & 1 & -1 & 2 & -2 & 0\\\\
        0 & 1 & 1 & 4 & 4 & 0\\\\
        0 & 1 & -1 & 8 & -8 & 1 \\end{pmatrix}.

Where they come from (Toom-Cook): correlation is the transpose of linear
convolution, whose Toom-Cook algorithm evaluates both polynomials at the
points, multiplies, and interpolates. So ``A^T`` holds the powers of the
points as columns (infinity picks the leading coefficient), ``G`` evaluates
the filter polynomial, and ``B^T`` is the inverse-transpose of the 6x6
evaluation (Vandermonde) matrix; Lavin & Gray rescale row ``k`` of ``G`` by
``s_k`` and row ``k`` of ``B^T`` by ``1/s_k`` so that ``B^T`` has small integer
entries. ``tests/test_winograd4.py`` rebuilds all three from the points.

36 multiplications per 4x4 block instead of 144: 4x fewer (F(2x2, 3x3) in
:mod:`minivgg.kernels.winograd` saves 2.25x). The price is larger transform
coefficients (up to 8 in ``A^T``, 5 in ``B^T``, 1/24 in ``G``), which grows
the fp32 rounding error roughly tenfold (``minivgg.bench.conv_algos``
measures it per VGG layer). Summed over input channels, for each of the 36
tile positions ``k``: ``M[k] = U[k] @ V[k]`` with ``U[k]`` (F, C) and
``V[k]`` (C, P), ``P = N * ceil(H/4) * ceil(W/4)``. The kernels here:

* :func:`filter_transform`  ``w (F, C, 3, 3) -> u (36, F, C)``, ``u[6i+j] = (G g G^T)[i, j]``
* :func:`input_transform`   ``x (N, C, H, W) -> v (36, C, P)``, zero padding implicit
* :func:`output_transform`  ``m (36, F, P) -> out (N, F, H, W)``, bias added here
* and the adjoints (transposes) of the three, for the backward pass.

Tile ``p = (n * TH + ty) * TW + tx`` covers padded rows ``4ty .. 4ty+5`` and
columns ``4tx .. 4tx+5`` (image rows/columns from ``4ty - 1``) and produces
output rows ``4ty .. 4ty+3`` and columns ``4tx .. 4tx+3``; a last tile that
hangs over the edge (H or W not a multiple of 4) reads zeros and its extra
outputs are not written. Each kernel works on a slice ``[lo, hi)`` of
filters or channels for :func:`minivgg.kernels._parallel.parallel_for`;
serial, ``cache=True, nogil=True``, no ``fastmath`` (gradient-checked).
The input and output transforms compute in the array's dtype (float32 stays
float32: their coefficients 2, 4, 5, 8 are exact); the filter transforms, run
once per call on the small weight tensor, in float64 with one rounding.
"""

from __future__ import annotations

import numba
import numpy as np

from .winograd import _segment, _tile_of, _next_tile  # the same tile numbering as F(2x2, 3x3)

# float32 constants: float32 * float32 stays float32 in Numba, float64 * float32 is float64, and all are exact
_2 = np.float32(2.0)
_4 = np.float32(4.0)
_5 = np.float32(5.0)
_8 = np.float32(8.0)


# ---------------------------------------------------------------- the six 1-D maps, inlined into the kernels
# A 2-D transform X -> L X R^T is a 1-D map down the columns, then across the rows.

@numba.njit(cache=True, nogil=True, inline="always")
def _bt(d0, d1, d2, d3, d4, d5):  # pragma: no cover - compiled
    """``B^T d`` for a 6-vector: 12 multiplies by small integers, 18 adds."""
    return (_4 * d0 - _5 * d2 + d4,
            d3 + d4 - _4 * (d1 + d2),
            d4 - d3 + _4 * (d1 - d2),
            d4 - d2 + _2 * (d3 - d1),
            d4 - d2 - _2 * (d3 - d1),
            _4 * d1 - _5 * d3 + d5)


@numba.njit(cache=True, nogil=True, inline="always")
def _b(e0, e1, e2, e3, e4, e5):  # pragma: no cover - compiled
    """``B e`` (the transpose of :func:`_bt`) for a 6-vector."""
    return (_4 * e0,
            _4 * (e2 - e1 + e5) + _2 * (e4 - e3),
            -_5 * e0 - _4 * (e1 + e2) - e3 - e4,
            e1 - e2 + _2 * (e3 - e4) - _5 * e5,
            e0 + e1 + e2 + e3 + e4,
            e5)


@numba.njit(cache=True, nogil=True, inline="always")
def _at(m0, m1, m2, m3, m4, m5):  # pragma: no cover - compiled
    """``A^T m``: a 6-vector to a 4-vector (the sums and differences are shared)."""
    s12, d12 = m1 + m2, m1 - m2
    s34, d34 = m3 + m4, m3 - m4
    return m0 + s12 + s34, d12 + _2 * d34, s12 + _4 * s34, d12 + _8 * d34 + m5


@numba.njit(cache=True, nogil=True, inline="always")
def _a(y0, y1, y2, y3):  # pragma: no cover - compiled
    """``A y`` (the transpose of :func:`_at`): a 4-vector to a 6-vector."""
    s02, s13 = y0 + y2, y1 + y3
    t02, t13 = y0 + _4 * y2, _2 * y1 + _8 * y3
    return y0, s02 + s13, s02 - s13, t02 + t13, t02 - t13, y3


@numba.njit(cache=True, nogil=True, inline="always")
def _g(g0, g1, g2):  # pragma: no cover - compiled
    """``G g``: a 3-vector to a 6-vector (float64)."""
    s = g0 + g2
    return (0.25 * g0, -(s + g1) / 6.0, -(s - g1) / 6.0,
            g0 / 24.0 + g1 / 12.0 + g2 / 6.0, g0 / 24.0 - g1 / 12.0 + g2 / 6.0, g2)


@numba.njit(cache=True, nogil=True, inline="always")
def _gt(h0, h1, h2, h3, h4, h5):  # pragma: no cover - compiled
    """``G^T h`` (the transpose of :func:`_g`): a 6-vector to a 3-vector (float64)."""
    return (0.25 * h0 - (h1 + h2) / 6.0 + (h3 + h4) / 24.0,
            (h2 - h1) / 6.0 + (h3 - h4) / 12.0,
            (h3 + h4 - h1 - h2) / 6.0 + h5)


# ---------------------------------------------------------------- forward transforms

@numba.njit(cache=True, nogil=True)
def filter_transform(w, lo, hi, u):  # pragma: no cover - compiled
    """``u[6i+j, f, c] = (G w[f, c] G^T)[i, j]`` for filters ``lo <= f < hi``.

    ``w`` (F, C, 3, 3) -> ``u`` (36, F, C); computed in float64, rounded once.
    """
    channels = w.shape[1]
    t = np.empty((6, 3), dtype=np.float64)  # G g
    for f in range(lo, hi):
        for c in range(channels):
            g = w[f, c]
            for j in range(3):
                t[0, j], t[1, j], t[2, j], t[3, j], t[4, j], t[5, j] = _g(
                    np.float64(g[0, j]), np.float64(g[1, j]), np.float64(g[2, j]))
            for i in range(6):
                r = _g(t[i, 0], t[i, 1], t[i, 2])
                for j in range(6):
                    u[6 * i + j, f, c] = r[j]


@numba.njit(cache=True, nogil=True)
def input_transform(x, lo, hi, p0, p1, tiles_h, tiles_w, v):  # pragma: no cover - compiled
    """``v[6i+j, c, p - p0] = (B^T d_p B)[i, j]`` for channels ``lo <= c < hi``, tiles ``p0 <= p < p1``.

    ``x`` (N, C, H, W) -> ``v`` (36, C, >= p1 - p0). One run of tiles along
    a tile row at a time: the run's six input rows are copied into a
    zero-padded buffer (the pad-1 border and an overhanging edge become
    plain zeros, so the loops below have no tests), ``B^T`` goes down the rows
    for every column at once, then ``B`` across, where tile ``k`` reads
    columns ``4k .. 4k+5``. Both loops run over contiguous memory (the second
    with a stride-4 read), which LLVM vectorises. ~ 4 * 36 adds per tile per channel.
    """
    _, _, height, width = x.shape
    dtype = x.dtype
    zero = dtype.type(0)
    span = 4 * tiles_w + 2
    rows = np.zeros((6, span), dtype=dtype)    # the run's padded input rows
    t = np.empty((6, span), dtype=dtype)       # B^T rows: column by column
    for c in range(lo, hi):
        p = p0
        while p < p1:
            n, ty, tx0, tx1 = _segment(p, p1, tiles_h, tiles_w)
            count = tx1 - tx0
            ncol = 4 * count + 2
            col0 = 4 * tx0 - 1                  # image column of the run's first padded column
            a = max(0, -col0)                   # buffer columns [a, bnd) are inside the image
            bnd = min(ncol, width - col0)
            for i in range(6):
                r = 4 * ty - 1 + i
                buf = rows[i]
                if 0 <= r < height:
                    src = x[n, c, r]
                    for j in range(a):
                        buf[j] = zero
                    for j in range(a, bnd):
                        buf[j] = src[col0 + j]
                    for j in range(bnd, ncol):
                        buf[j] = zero
                else:
                    for j in range(ncol):
                        buf[j] = zero
            r0, r1, r2, r3, r4, r5 = rows[0], rows[1], rows[2], rows[3], rows[4], rows[5]
            t0, t1, t2, t3, t4, t5 = t[0], t[1], t[2], t[3], t[4], t[5]
            for j in range(ncol):               # B^T d, every column of the run
                t0[j], t1[j], t2[j], t3[j], t4[j], t5[j] = _bt(r0[j], r1[j], r2[j], r3[j], r4[j], r5[j])
            q = p - p0
            for i in range(6):                  # (B^T d) B, one tile per lane
                e = t[i]
                v0, v1, v2 = v[6 * i, c, q:], v[6 * i + 1, c, q:], v[6 * i + 2, c, q:]
                v3, v4, v5 = v[6 * i + 3, c, q:], v[6 * i + 4, c, q:], v[6 * i + 5, c, q:]
                for k in range(count):
                    s = 4 * k
                    v0[k], v1[k], v2[k], v3[k], v4[k], v5[k] = _bt(e[s], e[s + 1], e[s + 2], e[s + 3],
                                                                   e[s + 4], e[s + 5])
            p += count


@numba.njit(cache=True, nogil=True)
def output_transform(m, b, lo, hi, p0, p1, tiles_h, tiles_w, out):  # pragma: no cover - compiled
    """``out[n, f, 4ty:4ty+4, 4tx:4tx+4] = A^T M_p A + b[f]`` for filters ``lo <= f < hi``, tiles ``p0 <= p < p1``.

    ``m`` (36, F, >= p1 - p0) -> ``out`` (N, F, H, W); outputs past the edge are dropped.
    One run of tiles at a time: the 16 outputs of every tile go to a (16, TW)
    buffer in a loop over the 36 contiguous ``m`` rows (vectorised), then are
    interleaved into the four output rows. ~ 4 * 24 adds per tile per filter.
    """
    _, _, height, width = out.shape
    s = np.empty((16, tiles_w), dtype=out.dtype)   # s[4a + b, k] = out[4ty + a, 4(tx0 + k) + b]
    for f in range(lo, hi):
        bias = b[f]
        p = p0
        while p < p1:
            n, ty, tx0, tx1 = _segment(p, p1, tiles_h, tiles_w)
            count = tx1 - tx0
            q = p - p0
            mm = m[:, f, q:q + count]               # (36, count), rows contiguous
            for k in range(count):
                # A^T M: the six columns of M, four values each
                c00, c01, c02, c03 = _at(mm[0, k], mm[6, k], mm[12, k], mm[18, k], mm[24, k], mm[30, k])
                c10, c11, c12, c13 = _at(mm[1, k], mm[7, k], mm[13, k], mm[19, k], mm[25, k], mm[31, k])
                c20, c21, c22, c23 = _at(mm[2, k], mm[8, k], mm[14, k], mm[20, k], mm[26, k], mm[32, k])
                c30, c31, c32, c33 = _at(mm[3, k], mm[9, k], mm[15, k], mm[21, k], mm[27, k], mm[33, k])
                c40, c41, c42, c43 = _at(mm[4, k], mm[10, k], mm[16, k], mm[22, k], mm[28, k], mm[34, k])
                c50, c51, c52, c53 = _at(mm[5, k], mm[11, k], mm[17, k], mm[23, k], mm[29, k], mm[35, k])
                # (A^T M) A: row a of the 4x4 block from row a of A^T M, plus the bias (no extra pass)
                y0, y1, y2, y3 = _at(c00, c10, c20, c30, c40, c50)
                s[0, k], s[1, k], s[2, k], s[3, k] = y0 + bias, y1 + bias, y2 + bias, y3 + bias
                y0, y1, y2, y3 = _at(c01, c11, c21, c31, c41, c51)
                s[4, k], s[5, k], s[6, k], s[7, k] = y0 + bias, y1 + bias, y2 + bias, y3 + bias
                y0, y1, y2, y3 = _at(c02, c12, c22, c32, c42, c52)
                s[8, k], s[9, k], s[10, k], s[11, k] = y0 + bias, y1 + bias, y2 + bias, y3 + bias
                y0, y1, y2, y3 = _at(c03, c13, c23, c33, c43, c53)
                s[12, k], s[13, k], s[14, k], s[15, k] = y0 + bias, y1 + bias, y2 + bias, y3 + bias
            nx = min(width - 4 * tx0, 4 * count)   # an edge tile's columns past W are dropped
            for a in range(min(4, height - 4 * ty)):
                row = out[n, f, 4 * ty + a, 4 * tx0:]
                for j in range(nx):
                    row[j] = s[4 * a + (j & 3), j >> 2]
            p += count


# ---------------------------------------------------------------- adjoints: the backward pass
# The forward is linear in the filters and in the input, so its exact gradient is the same pipeline
# run backwards with every transform replaced by its transpose:  dM = A dY A^T,  dU[k] = dM[k] V[k]^T,
# dV[k] = U[k]^T dM[k],  dw = G^T dU G,  dx = scatter-add of B dV B^T over the (overlapping) tiles.

@numba.njit(cache=True, nogil=True)
def output_transform_adjoint(dout, lo, hi, p0, p1, tiles_h, tiles_w, dm):  # pragma: no cover - compiled
    """``dm[6i+j, f, p - p0] = (A dY_p A^T)[i, j]`` for filters ``lo <= f < hi``, tiles ``p0 <= p < p1``.

    ``dout`` (N, F, H, W) -> ``dm`` (36, F, >= p1 - p0); outputs past the edge count as 0.
    """
    _, _, height, width = dout.shape
    dy = np.zeros((4, 4), dtype=dout.dtype)
    h = np.empty((6, 4), dtype=dout.dtype)     # A dY
    for f in range(lo, hi):
        n, ty, tx = _tile_of(p0, tiles_h, tiles_w)
        for q in range(p1 - p0):
            y, xo = 4 * ty, 4 * tx
            if y + 4 <= height and xo + 4 <= width:
                for i in range(4):
                    for j in range(4):
                        dy[i, j] = dout[n, f, y + i, xo + j]
            else:
                dy[:] = 0
                for i in range(min(4, height - y)):
                    for j in range(min(4, width - xo)):
                        dy[i, j] = dout[n, f, y + i, xo + j]
            for j in range(4):
                h[0, j], h[1, j], h[2, j], h[3, j], h[4, j], h[5, j] = _a(dy[0, j], dy[1, j], dy[2, j], dy[3, j])
            for i in range(6):
                r = _a(h[i, 0], h[i, 1], h[i, 2], h[i, 3])
                for j in range(6):
                    dm[6 * i + j, f, q] = r[j]
            n, ty, tx = _next_tile(n, ty, tx, tiles_h, tiles_w)


@numba.njit(cache=True, nogil=True)
def input_transform_adjoint(dv, lo, hi, p0, p1, tiles_h, tiles_w, dx):  # pragma: no cover - compiled
    """``dx[n, c] += scatter(B dV_p B^T)`` for channels ``lo <= c < hi``, tiles ``p0 <= p < p1``.

    ``dv`` (36, C, >= p1 - p0) -> ``dx`` (N, C, H, W), which the caller zeroes
    once. Neighbouring 6x6 tiles overlap by two rows/columns, so contributions
    add; what falls in the padding border or past the edge is dropped.
    """
    _, _, height, width = dx.shape
    e = np.empty((6, 6), dtype=dx.dtype)
    for c in range(lo, hi):
        n, ty, tx = _tile_of(p0, tiles_h, tiles_w)
        for q in range(p1 - p0):
            for j in range(6):  # B dV, column by column
                e[0, j], e[1, j], e[2, j], e[3, j], e[4, j], e[5, j] = _b(
                    dv[j, c, q], dv[6 + j, c, q], dv[12 + j, c, q], dv[18 + j, c, q], dv[24 + j, c, q],
                    dv[30 + j, c, q])
            for i in range(6):  # (B dV) B^T, row by row, in place
                e[i, 0], e[i, 1], e[i, 2], e[i, 3], e[i, 4], e[i, 5] = _b(
                    e[i, 0], e[i, 1], e[i, 2], e[i, 3], e[i, 4], e[i, 5])
            r, s = 4 * ty - 1, 4 * tx - 1
            if r >= 0 and s >= 0 and r + 6 <= height and s + 6 <= width:
                for i in range(6):
                    for j in range(6):
                        dx[n, c, r + i, s + j] += e[i, j]
            else:
                for i in range(max(0, -r), min(6, height - r)):
                    for j in range(max(0, -s), min(6, width - s)):
                        dx[n, c, r + i, s + j] += e[i, j]
            n, ty, tx = _next_tile(n, ty, tx, tiles_h, tiles_w)


@numba.njit(cache=True, nogil=True)
def filter_transform_adjoint(du, lo, hi, dw):  # pragma: no cover - compiled
    """``dw[f, c] = G^T dU[:, f, c].reshape(6, 6) G`` for filters ``lo <= f < hi`` (overwrites ``dw``).

    ``du`` (36, F, C) -> ``dw`` (F, C, 3, 3); computed in float64, rounded once.
    """
    channels = dw.shape[1]
    h = np.empty((3, 6), dtype=np.float64)     # G^T dU
    for f in range(lo, hi):
        for c in range(channels):
            for j in range(6):
                h[0, j], h[1, j], h[2, j] = _gt(
                    np.float64(du[j, f, c]), np.float64(du[6 + j, f, c]), np.float64(du[12 + j, f, c]),
                    np.float64(du[18 + j, f, c]), np.float64(du[24 + j, f, c]), np.float64(du[30 + j, f, c]))
            for i in range(3):
                dw[f, c, i, 0], dw[f, c, i, 1], dw[f, c, i, 2] = _gt(h[i, 0], h[i, 1], h[i, 2], h[i, 3],
                                                                     h[i, 4], h[i, 5])
