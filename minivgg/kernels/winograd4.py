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
the fp32 rounding error 4-11x over direct convolution's
(:func:`minivgg.bench.conv_algos.winograd_error_table` measures it per VGG layer). Summed over input channels, for each of the 36
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
float32: their coefficients 2, 4, 5, 8 are exact); the filter transforms
(1/6, 1/24: not exact) in float64 with one rounding, at 9 values in per
36 out this costs little.
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
# G's fractions, multiplied rather than divided by (a division costs ~10 multiplies and does not vectorise)
_SIXTH = 1.0 / 6.0
_TWELFTH = 1.0 / 12.0
_TWENTYFOURTH = 1.0 / 24.0


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
    e = g0 * _TWENTYFOURTH + g2 * _SIXTH
    o = g1 * _TWELFTH
    return 0.25 * g0, -(s + g1) * _SIXTH, (g1 - s) * _SIXTH, e + o, e - o, g2


@numba.njit(cache=True, nogil=True, inline="always")
def _gt(h0, h1, h2, h3, h4, h5):  # pragma: no cover - compiled
    """``G^T h`` (the transpose of :func:`_g`): a 6-vector to a 3-vector (float64)."""
    return (0.25 * h0 - (h1 + h2) * _SIXTH + (h3 + h4) * _TWENTYFOURTH,
            (h2 - h1) * _SIXTH + (h3 - h4) * _TWELFTH,
            (h3 + h4 - h1 - h2) * _SIXTH + h5)


@numba.njit(cache=True, nogil=True, inline="always")
def _put6(a, row, col, vals):  # pragma: no cover - compiled
    """``a[row + j, col] = vals[j]`` for the six values of a tuple."""
    a[row, col], a[row + 1, col], a[row + 2, col] = vals[0], vals[1], vals[2]
    a[row + 3, col], a[row + 4, col], a[row + 5, col] = vals[3], vals[4], vals[5]


# ---------------------------------------------------------------- forward transforms

#: Channels per block in the filter transforms: their 36 rows go through a small buffer first, because
#: the 36 rows of ``u[:, f]`` lie ``F * C`` elements apart -- for VGG's power-of-two F and C, the same
#: cache set: written element by element they evict each other (measured 4x slower at F = C = 512).
_FILTER_BLOCK = 64


@numba.njit(cache=True, nogil=True)
def filter_transform(w, lo, hi, u):  # pragma: no cover - compiled
    """``u[6i+j, f, c] = (G w[f, c] G^T)[i, j]`` for filters ``lo <= f < hi``.

    ``w`` (F, C, 3, 3) -> ``u`` (36, F, C); computed in float64, rounded once.
    Scalars only, ~ 150 flops per (f, c); each block of channels is built in
    a (36, 64) buffer and copied to ``u`` row by row (see :data:`_FILTER_BLOCK`).
    """
    channels = w.shape[1]
    gt = np.empty((9, _FILTER_BLOCK), dtype=np.float64)   # the block's filters, one row per tap
    buf = np.empty((36, _FILTER_BLOCK), dtype=np.float64)
    for f in range(lo, hi):
        g, uf = w[f], u[:, f]                  # (C, 3, 3), (36, C)
        for c0 in range(0, channels, _FILTER_BLOCK):
            nc = min(_FILTER_BLOCK, channels - c0)
            for k in range(nc):
                for tap in range(9):
                    gt[tap, k] = g[c0 + k, tap // 3, tap % 3]
            for k in range(nc):                 # contiguous rows in and out: vectorises over channels
                a0, a1, a2, a3, a4, a5 = _g(gt[0, k], gt[3, k], gt[6, k])      # G g, column by column
                b0, b1, b2, b3, b4, b5 = _g(gt[1, k], gt[4, k], gt[7, k])
                d0, d1, d2, d3, d4, d5 = _g(gt[2, k], gt[5, k], gt[8, k])
                _put6(buf, 0, k, _g(a0, b0, d0))                 # (G g) G^T, row by row
                _put6(buf, 6, k, _g(a1, b1, d1))
                _put6(buf, 12, k, _g(a2, b2, d2))
                _put6(buf, 18, k, _g(a3, b3, d3))
                _put6(buf, 24, k, _g(a4, b4, d4))
                _put6(buf, 30, k, _g(a5, b5, d5))
            for r in range(36):
                dst, src = uf[r, c0:c0 + nc], buf[r]
                for k in range(nc):
                    dst[k] = src[k]


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
    One run of tiles at a time, separably and one tile per lane: ``A^T``
    down each of the six columns of ``M`` (6 rows of ``m`` in, 4 rows of a
    buffer out), then ``A`` across each output row, written straight into
    ``out`` (4 consecutive outputs per tile). Few memory streams per loop,
    so LLVM vectorises both. ~ 4 * 24 adds per tile per filter.
    """
    _, _, height, width = out.shape
    dtype = out.dtype
    r = np.empty((24, tiles_w), dtype=dtype)        # r[6a + j, k] = (A^T M_k)[a, j]
    for f in range(lo, hi):
        bias = b[f]
        p = p0
        while p < p1:
            n, ty, tx0, tx1 = _segment(p, p1, tiles_h, tiles_w)
            count = tx1 - tx0
            q = p - p0
            rows = min(4, height - 4 * ty)          # an edge tile row's outputs past H are not needed
            for j in range(6):                      # A^T M, column j of every tile's M
                c0, c1, c2 = m[j, f, q:], m[6 + j, f, q:], m[12 + j, f, q:]
                c3, c4, c5 = m[18 + j, f, q:], m[24 + j, f, q:], m[30 + j, f, q:]
                o0, o1, o2, o3 = r[j], r[6 + j], r[12 + j], r[18 + j]
                for k in range(count):
                    o0[k], o1[k], o2[k], o3[k] = _at(c0[k], c1[k], c2[k], c3[k], c4[k], c5[k])
            full = min(count, (width - 4 * tx0) // 4)   # tiles whose four columns are all inside
            for a in range(rows):                   # (A^T M) A, row a of every tile, plus the bias
                e0, e1, e2, e3, e4, e5 = r[6 * a], r[6 * a + 1], r[6 * a + 2], r[6 * a + 3], r[6 * a + 4], r[6 * a + 5]
                row = out[n, f, 4 * ty + a, 4 * tx0:]
                for k in range(full):
                    y0, y1, y2, y3 = _at(e0[k], e1[k], e2[k], e3[k], e4[k], e5[k])
                    row[4 * k], row[4 * k + 1], row[4 * k + 2], row[4 * k + 3] = (
                        y0 + bias, y1 + bias, y2 + bias, y3 + bias)
                if full < count:                    # the last tile hangs over the right edge
                    k = full
                    y = _at(e0[k], e1[k], e2[k], e3[k], e4[k], e5[k])
                    for j in range(width - 4 * (tx0 + k)):
                        row[4 * k + j] = y[j] + bias
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

    ``du`` (36, F, C) -> ``dw`` (F, C, 3, 3); computed in float64, rounded once. Blocks of
    channels are first copied out of the 36 far-apart rows of ``du[:, f]`` (see :data:`_FILTER_BLOCK`).
    """
    channels = dw.shape[1]
    buf = np.empty((36, _FILTER_BLOCK), dtype=np.float64)
    h = np.empty((3, 6), dtype=np.float64)     # G^T dU
    for f in range(lo, hi):
        d = du[:, f]                            # (36, C)
        for c0 in range(0, channels, _FILTER_BLOCK):
            nc = min(_FILTER_BLOCK, channels - c0)
            for r in range(36):
                src, dst = d[r, c0:c0 + nc], buf[r]
                for k in range(nc):
                    dst[k] = src[k]
            for k in range(nc):
                for j in range(6):
                    h[0, j], h[1, j], h[2, j] = _gt(buf[j, k], buf[6 + j, k], buf[12 + j, k], buf[18 + j, k],
                                                    buf[24 + j, k], buf[30 + j, k])
                for i in range(3):
                    dw[f, c0 + k, i, 0], dw[f, c0 + k, i, 1], dw[f, c0 + k, i, 2] = _gt(
                        h[i, 0], h[i, 1], h[i, 2], h[i, 3], h[i, 4], h[i, 5])
