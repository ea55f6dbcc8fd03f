"""Winograd F(2x2, 3x3) transforms (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015).

A 3x3/stride-1/pad-1 convolution computes each 2x2 block of outputs from a
4x4 tile ``d`` of the (padded) input. Winograd's minimal filtering algorithm
writes that block as

.. math::

    Y = A^T \\big[ (G g G^T) \\odot (B^T d B) \\big] A

with

.. math::

    B^T = \\begin{pmatrix} 1&0&-1&0\\\\ 0&1&1&0\\\\ 0&-1&1&0\\\\ 0&1&0&-1 \\end{pmatrix},\\;
    G = \\begin{pmatrix} 1&0&0\\\\ \\tfrac12&\\tfrac12&\\tfrac12\\\\ \\tfrac12&-\\tfrac12&\\tfrac12\\\\ 0&0&1 \\end{pmatrix},\\;
    A^T = \\begin{pmatrix} 1&1&1&0\\\\ 0&1&-1&-1 \\end{pmatrix}.

16 multiplications per 2x2 block instead of 36: 2.25x fewer. Summed over
input channels, the element-wise product becomes, for each of the 16 tile
positions ``k``, one matrix product ``M[k] = U[k] @ V[k]`` with
``U[k]`` (F, C) the transformed filters and ``V[k]`` (C, P) the transformed
tiles (P = N * ceil(H/2) * ceil(W/2)). The three kernels here are the
transforms around those 16 GEMMs, in the layout that makes each GEMM one BLAS
call on contiguous memory:

* :func:`filter_transform`  ``w (F, C, 3, 3) -> u (16, F, C)``
* :func:`input_transform`   ``x (N, C, H, W) -> v (16, C, P)``, zero padding implicit
* :func:`output_transform`  ``m (16, F, P) -> out (N, F, H, W)``, bias added here

Tile ``p = (n * TH + ty) * TW + tx`` covers padded rows ``2ty .. 2ty+3`` and
columns ``2tx .. 2tx+3`` and produces output rows ``2ty, 2ty+1`` and columns
``2tx, 2tx+1``; an odd H or W gets a last tile that hangs over the edge, whose
extra outputs are simply not written.

Each kernel works on a slice ``[lo, hi)`` of one axis (filters or channels) so
:func:`minivgg.kernels._parallel.parallel_for` can run slices on several cores; the
kernels are serial, ``cache=True, nogil=True``, and without ``fastmath`` (they
are gradient-checked). Cost per call, all adds except the filter transform:
input ~ 32 adds per tile per channel, output ~ 24 adds per tile per filter;
the GEMMs (16 * F * C * P MACs) dominate.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, inline="always")
def _tile_of(p, tiles_h, tiles_w):  # pragma: no cover - compiled
    """``(n, ty, tx)`` of global tile number ``p = (n * TH + ty) * TW + tx``."""
    n, rem = divmod(p, tiles_h * tiles_w)
    ty, tx = divmod(rem, tiles_w)
    return n, ty, tx


@numba.njit(cache=True, nogil=True, inline="always")
def _next_tile(n, ty, tx, tiles_h, tiles_w):  # pragma: no cover - compiled
    """The tile after ``(n, ty, tx)`` in row-major order (no division in the hot loop)."""
    tx += 1
    if tx == tiles_w:
        tx = 0
        ty += 1
        if ty == tiles_h:
            ty = 0
            n += 1
    return n, ty, tx


@numba.njit(cache=True, nogil=True)
def filter_transform(w, lo, hi, u):  # pragma: no cover - compiled
    """``u[:, f, c] = (G w[f, c] G^T).ravel()`` for filters ``lo <= f < hi``.

    ``w`` (F, C, 3, 3) -> ``u`` (16, F, C). 28 adds and 12 halvings per (f, c).
    """
    channels = w.shape[1]
    t = np.empty((4, 3), dtype=np.float64)  # G g, kept in float64: exact halvings, one rounding at the end
    for f in range(lo, hi):
        for c in range(channels):
            g = w[f, c]
            for j in range(3):
                t[0, j] = g[0, j]
                t[1, j] = (g[0, j] + g[1, j] + g[2, j]) * 0.5
                t[2, j] = (g[0, j] - g[1, j] + g[2, j]) * 0.5
                t[3, j] = g[2, j]
            # (G g) G^T: (4, 4)
            for i in range(4):
                u[i * 4 + 0, f, c] = t[i, 0]
                u[i * 4 + 1, f, c] = (t[i, 0] + t[i, 1] + t[i, 2]) * 0.5
                u[i * 4 + 2, f, c] = (t[i, 0] - t[i, 1] + t[i, 2]) * 0.5
                u[i * 4 + 3, f, c] = t[i, 2]


@numba.njit(cache=True, nogil=True, inline="always")
def _segment(p, p1, tiles_h, tiles_w):  # pragma: no cover - compiled
    """``(n, ty, tx0, tx1)``: the run of tiles from ``p`` to the end of its tile row or to ``p1``."""
    n, rem = divmod(p, tiles_h * tiles_w)
    ty, tx0 = divmod(rem, tiles_w)
    return n, ty, tx0, min(tiles_w, tx0 + (p1 - p))


@numba.njit(cache=True, nogil=True)
def input_transform(x, lo, hi, p0, p1, tiles_h, tiles_w, v):  # pragma: no cover - compiled
    """``v[:, c, p - p0] = (B^T d_p B).ravel()`` for channels ``lo <= c < hi``, tiles ``p0 <= p < p1``.

    ``x`` (N, C, H, W) -> ``v`` (16, C, >= p1 - p0). Tiles are numbered
    ``p = (n * TH + ty) * TW + tx`` over the whole batch; a tile's 4x4 input
    window starts at row ``2ty - 1``, column ``2tx - 1`` (the pad-1 border and
    an odd edge's overhang read as zeros).

    Works one run of tiles along a tile row at a time, separably: first
    ``B^T`` down the four input rows for every column of the run (4 adds per
    column), split into even and odd padded columns ``te``/``to``; then ``B``
    across, where tile ``tx`` needs ``te[tx], to[tx], te[tx+1], to[tx+1]``.
    Every inner loop then runs over contiguous memory from index 0, which is
    what LLVM needs to vectorise it (a per-tile 4x4 gather with border tests
    does not vectorise and cost 4x more). Same adds, same order per element
    as the textbook ``B^T d B``, so results are bit-identical to it.
    """
    _, _, height, width = x.shape
    dtype = x.dtype
    zero = dtype.type(0)
    te = np.zeros((4, tiles_w + 1), dtype=dtype)   # (B^T d)[i] at padded column 2k (image column 2k - 1)
    to = np.zeros((4, tiles_w + 1), dtype=dtype)   # ... at padded column 2k + 1 (image column 2k)
    zrow = np.zeros(width, dtype=dtype)            # stands in for the rows of the padding border
    for c in range(lo, hi):
        p = p0
        while p < p1:
            n, ty, tx0, tx1 = _segment(p, p1, tiles_h, tiles_w)
            r = 2 * ty - 1                          # row 2ty = r + 1 is always inside
            x0 = x[n, c, r] if r >= 0 else zrow
            x1 = x[n, c, r + 1]
            x2 = x[n, c, r + 2] if r + 2 < height else zrow
            x3 = x[n, c, r + 3] if r + 3 < height else zrow
            # column pairs k = tx0 .. tx1; pair k is inside the image for ka <= k < kb
            ka = max(tx0, 1)
            kb = max(ka, min(tx1 + 1, (width + 1) // 2))
            for k in range(tx0, tx1 + 1):
                if k < ka or k >= kb:               # an edge pair: zeros outside the image
                    for par in range(2):
                        j = 2 * k - 1 + par
                        a0 = a1 = a2 = a3 = zero
                        if 0 <= j < width:
                            a0, a1, a2, a3 = x0[j], x1[j], x2[j], x3[j]
                        t = te if par == 0 else to
                        t[0, k] = a0 - a2
                        t[1, k] = a1 + a2
                        t[2, k] = a2 - a1
                        t[3, k] = a1 - a3
            nk = kb - ka
            if nk > 0:                              # B^T down the rows, interior pairs (vectorised)
                y0, y1, y2, y3 = x0[2 * ka - 1:], x1[2 * ka - 1:], x2[2 * ka - 1:], x3[2 * ka - 1:]
                e0, e1, e2, e3 = te[0, ka:], te[1, ka:], te[2, ka:], te[3, ka:]
                o0, o1, o2, o3 = to[0, ka:], to[1, ka:], to[2, ka:], to[3, ka:]
                for k in range(nk):
                    a0, a1, a2, a3 = y0[2 * k], y1[2 * k], y2[2 * k], y3[2 * k]
                    e0[k] = a0 - a2
                    e1[k] = a1 + a2
                    e2[k] = a2 - a1
                    e3[k] = a1 - a3
                    a0, a1, a2, a3 = y0[2 * k + 1], y1[2 * k + 1], y2[2 * k + 1], y3[2 * k + 1]
                    o0[k] = a0 - a2
                    o1[k] = a1 + a2
                    o2[k] = a2 - a1
                    o3[k] = a1 - a3
            count = tx1 - tx0
            q = p - p0
            for i in range(4):                      # (B^T d) B across, one tile per lane
                ev, od = te[i, tx0:], to[i, tx0:]
                v0, v1, v2, v3 = v[4 * i, c, q:], v[4 * i + 1, c, q:], v[4 * i + 2, c, q:], v[4 * i + 3, c, q:]
                for k in range(count):
                    v0[k] = ev[k] - ev[k + 1]
                    v1[k] = od[k] + ev[k + 1]
                    v2[k] = ev[k + 1] - od[k]
                    v3[k] = od[k] - od[k + 1]
            p += count


@numba.njit(cache=True, nogil=True)
def output_transform(m, b, lo, hi, p0, p1, tiles_h, tiles_w, out):  # pragma: no cover - compiled
    """``out[n, f, 2ty:2ty+2, 2tx:2tx+2] = A^T m_p A + b[f]`` for filters ``lo <= f < hi``, tiles ``p0 <= p < p1``.

    ``m`` (16, F, >= p1 - p0) -> ``out`` (N, F, H, W); outputs past an odd edge are dropped.
    One run of tiles along a tile row at a time: the four outputs of every
    tile go to a small (4, TW) buffer in a loop over contiguous ``m`` rows
    (vectorised), then are interleaved into the two output rows.
    """
    _, _, height, width = out.shape
    s = np.empty((4, tiles_w), dtype=out.dtype)     # rows: out[y, 2tx], out[y, 2tx+1], out[y+1, 2tx], out[y+1, 2tx+1]
    s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
    for f in range(lo, hi):
        bias = b[f]
        p = p0
        while p < p1:
            n, ty, tx0, tx1 = _segment(p, p1, tiles_h, tiles_w)
            count = tx1 - tx0
            q = p - p0
            m0, m1, m2, m3 = m[0, f, q:], m[1, f, q:], m[2, f, q:], m[3, f, q:]
            m4, m5, m6, m7 = m[4, f, q:], m[5, f, q:], m[6, f, q:], m[7, f, q:]
            m8, m9, m10, m11 = m[8, f, q:], m[9, f, q:], m[10, f, q:], m[11, f, q:]
            m12, m13, m14, m15 = m[12, f, q:], m[13, f, q:], m[14, f, q:], m[15, f, q:]
            for k in range(count):
                # A^T m: two rows of four
                r00 = m0[k] + m4[k] + m8[k]
                r01 = m1[k] + m5[k] + m9[k]
                r02 = m2[k] + m6[k] + m10[k]
                r03 = m3[k] + m7[k] + m11[k]
                r10 = m4[k] - m8[k] - m12[k]
                r11 = m5[k] - m9[k] - m13[k]
                r12 = m6[k] - m10[k] - m14[k]
                r13 = m7[k] - m11[k] - m15[k]
                # (A^T m) A, plus the bias (folded in here: no extra pass over out)
                s0[k] = r00 + r01 + r02 + bias
                s1[k] = r01 - r02 - r03 + bias
                s2[k] = r10 + r11 + r12 + bias
                s3[k] = r11 - r12 - r13 + bias
            y = 2 * ty
            nx = min(width - 2 * tx0, 2 * count)    # an odd width drops the last tile's right column
            row = out[n, f, y, 2 * tx0:]
            for k in range(nx):
                row[k] = s[k & 1, k >> 1]
            if y + 1 < height:                      # an odd height drops the last tile row's bottom row
                row = out[n, f, y + 1, 2 * tx0:]
                for k in range(nx):
                    row[k] = s[2 + (k & 1), k >> 1]
            p += count


# ---------------------------------------------------------------------------
# adjoints (transposes) of the three transforms: the backward pass
# ---------------------------------------------------------------------------
# The forward is linear in the filters and in the input, so its exact gradient
# is the same pipeline run backwards with every transform replaced by its
# transpose:  dM = A dY A^T,  dU[k] = dM[k] V[k]^T,  dV[k] = U[k]^T dM[k],
# dw = G^T dU G,  dx = scatter-add of B dV B^T over the (overlapping) tiles.


@numba.njit(cache=True, nogil=True)
def output_transform_adjoint(dout, lo, hi, p0, p1, tiles_h, tiles_w, dm):  # pragma: no cover - compiled
    """``dm[:, f, p - p0] = (A dY_p A^T).ravel()`` for filters ``lo <= f < hi``, tiles ``p0 <= p < p1``.

    ``dout`` (N, F, H, W) -> ``dm`` (16, F, >= p1 - p0); outputs past an odd edge count as 0.
    """
    _, _, height, width = dout.shape
    zero = dout.dtype.type(0)
    for f in range(lo, hi):
        n, ty, tx = _tile_of(p0, tiles_h, tiles_w)
        for q in range(p1 - p0):
            y, xo = 2 * ty, 2 * tx
            d00 = dout[n, f, y, xo]
            d01, d10, d11 = zero, zero, zero  # outputs past an odd edge
            if xo + 1 < width:
                d01 = dout[n, f, y, xo + 1]
            if y + 1 < height:
                d10 = dout[n, f, y + 1, xo]
                if xo + 1 < width:
                    d11 = dout[n, f, y + 1, xo + 1]
            # q = A dY: (4, 2)
            q00, q01 = d00, d01
            q10, q11 = d00 + d10, d01 + d11
            q20, q21 = d00 - d10, d01 - d11
            q30, q31 = -d10, -d11
            # (A dY) A^T: (4, 4)
            dm[0, f, q] = q00
            dm[1, f, q] = q00 + q01
            dm[2, f, q] = q00 - q01
            dm[3, f, q] = -q01
            dm[4, f, q] = q10
            dm[5, f, q] = q10 + q11
            dm[6, f, q] = q10 - q11
            dm[7, f, q] = -q11
            dm[8, f, q] = q20
            dm[9, f, q] = q20 + q21
            dm[10, f, q] = q20 - q21
            dm[11, f, q] = -q21
            dm[12, f, q] = q30
            dm[13, f, q] = q30 + q31
            dm[14, f, q] = q30 - q31
            dm[15, f, q] = -q31
            n, ty, tx = _next_tile(n, ty, tx, tiles_h, tiles_w)


@numba.njit(cache=True, nogil=True)
def input_transform_adjoint(dv, lo, hi, p0, p1, tiles_h, tiles_w, dx):  # pragma: no cover - compiled
    """``dx[n, c] += scatter(B dV_p B^T)`` for channels ``lo <= c < hi``, tiles ``p0 <= p < p1``.

    ``dv`` (16, C, >= p1 - p0) -> ``dx`` (N, C, H, W), which the caller zeroes
    once. Neighbouring tiles overlap by two rows/columns, so contributions add;
    what falls in the padding border is dropped.
    """
    _, _, height, width = dx.shape
    e = np.empty((4, 4), dtype=dx.dtype)
    for c in range(lo, hi):
        n, ty, tx = _tile_of(p0, tiles_h, tiles_w)
        for q in range(p1 - p0):
            for j in range(4):  # e = B dV, column by column
                a0, a1, a2, a3 = dv[j, c, q], dv[4 + j, c, q], dv[8 + j, c, q], dv[12 + j, c, q]
                e[0, j] = a0
                e[1, j] = a1 - a2 + a3
                e[2, j] = a1 + a2 - a0
                e[3, j] = -a3
            for i in range(4):  # (B dV) B^T, row by row, in place
                a0, a1, a2, a3 = e[i, 0], e[i, 1], e[i, 2], e[i, 3]
                e[i, 0] = a0
                e[i, 1] = a1 - a2 + a3
                e[i, 2] = a1 + a2 - a0
                e[i, 3] = -a3
            r, s = 2 * ty - 1, 2 * tx - 1
            if r >= 0 and s >= 0 and r + 3 < height and s + 3 < width:
                for i in range(4):
                    for j in range(4):
                        dx[n, c, r + i, s + j] += e[i, j]
            else:
                for i in range(4):
                    for j in range(4):
                        if 0 <= r + i < height and 0 <= s + j < width:
                            dx[n, c, r + i, s + j] += e[i, j]
            n, ty, tx = _next_tile(n, ty, tx, tiles_h, tiles_w)


@numba.njit(cache=True, nogil=True)
def filter_transform_adjoint(du, lo, hi, dw):  # pragma: no cover - compiled
    """``dw[f, c] = G^T dU[:, f, c].reshape(4, 4) G`` for filters ``lo <= f < hi`` (overwrites ``dw``).

    ``du`` (16, F, C) -> ``dw`` (F, C, 3, 3).
    """
    channels = dw.shape[1]
    h = np.empty((3, 4), dtype=np.float64)
    for f in range(lo, hi):
        for c in range(channels):
            # h = G^T dU: (3, 4)
            for col in range(4):
                d0 = du[col, f, c]
                d1 = du[4 + col, f, c]
                d2 = du[8 + col, f, c]
                d3 = du[12 + col, f, c]
                h[0, col] = d0 + 0.5 * (d1 + d2)
                h[1, col] = 0.5 * (d1 - d2)
                h[2, col] = 0.5 * (d1 + d2) + d3
            # (G^T dU) G: (3, 3)
            for i in range(3):
                dw[f, c, i, 0] = h[i, 0] + 0.5 * (h[i, 1] + h[i, 2])
                dw[f, c, i, 1] = 0.5 * (h[i, 1] - h[i, 2])
                dw[f, c, i, 2] = 0.5 * (h[i, 1] + h[i, 2]) + h[i, 3]
