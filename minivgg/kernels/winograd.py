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
:func:`minivgg.threads.parallel_for` can run slices on several cores; the
kernels are serial, ``cache=True, nogil=True``, and without ``fastmath`` (they
are gradient-checked). Cost per call, all adds except the filter transform:
input ~ 32 adds per tile per channel, output ~ 24 adds per tile per filter;
the GEMMs (16 * F * C * P MACs) dominate.
"""

from __future__ import annotations

import numba
import numpy as np


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


@numba.njit(cache=True, nogil=True)
def input_transform(x, lo, hi, tiles_h, tiles_w, v):  # pragma: no cover - compiled
    """``v[:, c, p] = (B^T d_p B).ravel()`` for channels ``lo <= c < hi``.

    ``x`` (N, C, H, W) -> ``v`` (16, C, N*TH*TW). The pad-1 border and the
    overhang of odd sizes are read from a zeroed scratch plane, so the tile
    loop itself has no bounds checks.
    """
    n_img, _, height, width = x.shape
    plane = np.zeros((2 * tiles_h + 2, 2 * tiles_w + 2), dtype=x.dtype)
    for c in range(lo, hi):
        for n in range(n_img):
            # copy the image into the interior; the zero border is never written
            for y in range(height):
                for xx in range(width):
                    plane[y + 1, xx + 1] = x[n, c, y, xx]
            base = n * tiles_h * tiles_w
            for ty in range(tiles_h):
                r = 2 * ty
                for tx in range(tiles_w):
                    s = 2 * tx
                    p = base + ty * tiles_w + tx
                    # rows of B^T d, column by column: t[i][j]
                    t00 = plane[r, s] - plane[r + 2, s]
                    t01 = plane[r, s + 1] - plane[r + 2, s + 1]
                    t02 = plane[r, s + 2] - plane[r + 2, s + 2]
                    t03 = plane[r, s + 3] - plane[r + 2, s + 3]
                    t10 = plane[r + 1, s] + plane[r + 2, s]
                    t11 = plane[r + 1, s + 1] + plane[r + 2, s + 1]
                    t12 = plane[r + 1, s + 2] + plane[r + 2, s + 2]
                    t13 = plane[r + 1, s + 3] + plane[r + 2, s + 3]
                    t20 = plane[r + 2, s] - plane[r + 1, s]
                    t21 = plane[r + 2, s + 1] - plane[r + 1, s + 1]
                    t22 = plane[r + 2, s + 2] - plane[r + 1, s + 2]
                    t23 = plane[r + 2, s + 3] - plane[r + 1, s + 3]
                    t30 = plane[r + 1, s] - plane[r + 3, s]
                    t31 = plane[r + 1, s + 1] - plane[r + 3, s + 1]
                    t32 = plane[r + 1, s + 2] - plane[r + 3, s + 2]
                    t33 = plane[r + 1, s + 3] - plane[r + 3, s + 3]
                    # (B^T d) B: the same combination along each row
                    v[0, c, p] = t00 - t02
                    v[1, c, p] = t01 + t02
                    v[2, c, p] = t02 - t01
                    v[3, c, p] = t01 - t03
                    v[4, c, p] = t10 - t12
                    v[5, c, p] = t11 + t12
                    v[6, c, p] = t12 - t11
                    v[7, c, p] = t11 - t13
                    v[8, c, p] = t20 - t22
                    v[9, c, p] = t21 + t22
                    v[10, c, p] = t22 - t21
                    v[11, c, p] = t21 - t23
                    v[12, c, p] = t30 - t32
                    v[13, c, p] = t31 + t32
                    v[14, c, p] = t32 - t31
                    v[15, c, p] = t31 - t33


@numba.njit(cache=True, nogil=True)
def output_transform(m, b, lo, hi, tiles_h, tiles_w, out):  # pragma: no cover - compiled
    """``out[n, f, 2ty:2ty+2, 2tx:2tx+2] = A^T m_p A + b[f]`` for filters ``lo <= f < hi``.

    ``m`` (16, F, N*TH*TW) -> ``out`` (N, F, H, W); outputs past an odd edge are dropped.
    """
    n_img, _, height, width = out.shape
    for f in range(lo, hi):
        bias = b[f]
        for n in range(n_img):
            base = n * tiles_h * tiles_w
            for ty in range(tiles_h):
                y = 2 * ty
                for tx in range(tiles_w):
                    xo = 2 * tx
                    p = base + ty * tiles_w + tx
                    # A^T m: two rows of four
                    r00 = m[0, f, p] + m[4, f, p] + m[8, f, p]
                    r01 = m[1, f, p] + m[5, f, p] + m[9, f, p]
                    r02 = m[2, f, p] + m[6, f, p] + m[10, f, p]
                    r03 = m[3, f, p] + m[7, f, p] + m[11, f, p]
                    r10 = m[4, f, p] - m[8, f, p] - m[12, f, p]
                    r11 = m[5, f, p] - m[9, f, p] - m[13, f, p]
                    r12 = m[6, f, p] - m[10, f, p] - m[14, f, p]
                    r13 = m[7, f, p] - m[11, f, p] - m[15, f, p]
                    # (A^T m) A
                    y00 = r00 + r01 + r02 + bias
                    y01 = r01 - r02 - r03 + bias
                    y10 = r10 + r11 + r12 + bias
                    y11 = r11 - r12 - r13 + bias
                    out[n, f, y, xo] = y00
                    if xo + 1 < width:
                        out[n, f, y, xo + 1] = y01
                    if y + 1 < height:
                        out[n, f, y + 1, xo] = y10
                        if xo + 1 < width:
                            out[n, f, y + 1, xo + 1] = y11


# ---------------------------------------------------------------------------
# adjoints (transposes) of the three transforms: the backward pass
# ---------------------------------------------------------------------------
# The forward is linear in the filters and in the input, so its exact gradient
# is the same pipeline run backwards with every transform replaced by its
# transpose:  dM = A dY A^T,  dU[k] = dM[k] V[k]^T,  dV[k] = U[k]^T dM[k],
# dw = G^T dU G,  dx = scatter-add of B dV B^T over the (overlapping) tiles.


@numba.njit(cache=True, nogil=True)
def output_transform_adjoint(dout, lo, hi, tiles_h, tiles_w, dm):  # pragma: no cover - compiled
    """``dm[:, f, p] = (A dY_p A^T).ravel()`` for filters ``lo <= f < hi``.

    ``dout`` (N, F, H, W) -> ``dm`` (16, F, N*TH*TW); outputs past an odd edge count as 0.
    """
    n_img, _, height, width = dout.shape
    zero = np.zeros(1, dtype=dout.dtype)[0]
    for f in range(lo, hi):
        for n in range(n_img):
            base = n * tiles_h * tiles_w
            for ty in range(tiles_h):
                y = 2 * ty
                for tx in range(tiles_w):
                    xo = 2 * tx
                    p = base + ty * tiles_w + tx
                    d00 = dout[n, f, y, xo]
                    d01 = dout[n, f, y, xo + 1] if xo + 1 < width else zero
                    d10 = dout[n, f, y + 1, xo] if y + 1 < height else zero
                    d11 = dout[n, f, y + 1, xo + 1] if (y + 1 < height and xo + 1 < width) else zero
                    # q = A dY: (4, 2)
                    q00, q01 = d00, d01
                    q10, q11 = d00 + d10, d01 + d11
                    q20, q21 = d00 - d10, d01 - d11
                    q30, q31 = -d10, -d11
                    # (A dY) A^T: (4, 4)
                    dm[0, f, p] = q00
                    dm[1, f, p] = q00 + q01
                    dm[2, f, p] = q00 - q01
                    dm[3, f, p] = -q01
                    dm[4, f, p] = q10
                    dm[5, f, p] = q10 + q11
                    dm[6, f, p] = q10 - q11
                    dm[7, f, p] = -q11
                    dm[8, f, p] = q20
                    dm[9, f, p] = q20 + q21
                    dm[10, f, p] = q20 - q21
                    dm[11, f, p] = -q21
                    dm[12, f, p] = q30
                    dm[13, f, p] = q30 + q31
                    dm[14, f, p] = q30 - q31
                    dm[15, f, p] = -q31


@numba.njit(cache=True, nogil=True)
def input_transform_adjoint(dv, lo, hi, tiles_h, tiles_w, dx):  # pragma: no cover - compiled
    """``dx[n, c] = sum_p scatter(B dV_p B^T)`` for channels ``lo <= c < hi`` (overwrites ``dx``).

    ``dv`` (16, C, N*TH*TW) -> ``dx`` (N, C, H, W). Neighbouring tiles overlap
    by two rows/columns, so contributions add; the padding border is dropped.
    """
    n_img, _, height, width = dx.shape
    plane = np.empty((2 * tiles_h + 2, 2 * tiles_w + 2), dtype=dx.dtype)
    for c in range(lo, hi):
        for n in range(n_img):
            plane[:, :] = 0
            base = n * tiles_h * tiles_w
            for ty in range(tiles_h):
                r = 2 * ty
                for tx in range(tiles_w):
                    s = 2 * tx
                    p = base + ty * tiles_w + tx
                    # e = B dV: (4, 4), row i of B applied down each column l
                    e00 = dv[0, c, p]
                    e01 = dv[1, c, p]
                    e02 = dv[2, c, p]
                    e03 = dv[3, c, p]
                    e10 = dv[4, c, p] - dv[8, c, p] + dv[12, c, p]
                    e11 = dv[5, c, p] - dv[9, c, p] + dv[13, c, p]
                    e12 = dv[6, c, p] - dv[10, c, p] + dv[14, c, p]
                    e13 = dv[7, c, p] - dv[11, c, p] + dv[15, c, p]
                    e20 = dv[4, c, p] + dv[8, c, p] - dv[0, c, p]
                    e21 = dv[5, c, p] + dv[9, c, p] - dv[1, c, p]
                    e22 = dv[6, c, p] + dv[10, c, p] - dv[2, c, p]
                    e23 = dv[7, c, p] + dv[11, c, p] - dv[3, c, p]
                    e30 = -dv[12, c, p]
                    e31 = -dv[13, c, p]
                    e32 = -dv[14, c, p]
                    e33 = -dv[15, c, p]
                    # (B dV) B^T, added into the 4x4 window
                    plane[r, s] += e00
                    plane[r, s + 1] += e01 - e02 + e03
                    plane[r, s + 2] += e01 + e02 - e00
                    plane[r, s + 3] -= e03
                    plane[r + 1, s] += e10
                    plane[r + 1, s + 1] += e11 - e12 + e13
                    plane[r + 1, s + 2] += e11 + e12 - e10
                    plane[r + 1, s + 3] -= e13
                    plane[r + 2, s] += e20
                    plane[r + 2, s + 1] += e21 - e22 + e23
                    plane[r + 2, s + 2] += e21 + e22 - e20
                    plane[r + 2, s + 3] -= e23
                    plane[r + 3, s] += e30
                    plane[r + 3, s + 1] += e31 - e32 + e33
                    plane[r + 3, s + 2] += e31 + e32 - e30
                    plane[r + 3, s + 3] -= e33
            for y in range(height):
                for xx in range(width):
                    dx[n, c, y, xx] = plane[y + 1, xx + 1]


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
