"""The Winograd pipeline shared by F(2x2, 3x3) and F(4x4, 3x3): blocks of tiles, transforms, K GEMMs, threads.

Both algorithms compute a 3x3/s1/p1 convolution the same way and differ only
in the tile (2x2 outputs from 4x4 inputs, or 4x4 from 6x6), the number ``K``
of transformed positions per tile (16 or 36) and the transform kernels. So the
driver lives here once and takes the algorithm's module ``scheme``
(:mod:`~minivgg.ops.conv.winograd` or :mod:`~minivgg.ops.conv.winograd4`),
reading at call time its

* ``POSITIONS`` (K), ``tiles(h, w)``, ``MIN_BLOCK_TILES``, ``_MIN_WORK_PER_THREAD``;
* ``FORWARD_BLOCK_BYTES``, ``PIPELINE_BLOCK_BYTES``, ``BACKWARD_BLOCK_BYTES``;
* ``transform_filters(w)`` and ``_k``, the Numba kernels module with
  ``input_transform``, ``output_transform``, ``filter_transform`` and their adjoints.

Forward, for tiles ``p0 <= p < p1`` of a block::

    V = input_transform(x)          (K, C, q)
    M = U @ V                       K GEMMs (F, C) @ (C, q)
    out = output_transform(M) + b

With many tiles and several threads, each thread runs that whole pipeline on
its own blocks, sized for its L2 (one synchronisation per layer); otherwise
the blocks go one after another with each phase spread over the threads.
Backward is the exact transpose: ``dM = output_transform_adjoint(dout)``,
``dU += dM V^T``, ``dV = U^T dM``, ``dx = input_transform_adjoint(dV)``,
``dw = filter_transform_adjoint(dU)``.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from ...kernels import _parallel as threads
from . import im2col as _im2col  # one workspace budget for every conv algorithm: _im2col.WORKSPACE_BYTES


def grain(scheme: ModuleType, units_per_item: int) -> int:
    """Items per thread slice so that each slice carries ``scheme._MIN_WORK_PER_THREAD`` units."""
    return max(1, scheme._MIN_WORK_PER_THREAD // max(1, units_per_item))


def blocks(total: int, size: int):
    """``(p0, p1)`` tile ranges of at most ``size`` covering ``0 .. total``."""
    for p0 in range(0, total, size):
        yield p0, min(total, p0 + size)


def workspace_bytes_per_tile(scheme: ModuleType, c: int, f: int, itemsize: int) -> int:
    """Bytes of ``V`` (K, C) plus ``M`` (K, F) for one tile."""
    return scheme.POSITIONS * (c + f) * itemsize


def block_tiles(scheme: ModuleType, c: int, f: int, itemsize: int, budget: int, total: int) -> int:
    """Tiles per block: as many as fit ``budget`` and the im2col workspace bound
    (at least ``scheme.MIN_BLOCK_TILES``, at most ``total``)."""
    per_tile = workspace_bytes_per_tile(scheme, c, f, itemsize)
    return max(1, min(total, max(scheme.MIN_BLOCK_TILES, min(budget, _im2col.WORKSPACE_BYTES) // per_tile)))


def use_pipeline(nthreads: int, total: int, pb: int) -> bool:
    """Per-thread pipelines pay when every thread gets at least two blocks."""
    return nthreads > 1 and total >= 2 * nthreads * pb


def forward_workspace_bytes(scheme: ModuleType, x_shape: tuple, w_shape: tuple, itemsize: int,
                            nthreads: int | None = None) -> int:
    """Scratch bytes the forward allocates besides its output: ``U`` plus the tile blocks in flight."""
    n, c, h, w = x_shape
    f = w_shape[0]
    nthreads = threads.get_num_threads() if nthreads is None else nthreads
    th, tw = scheme.tiles(h, w)
    total = n * th * tw
    per_tile = workspace_bytes_per_tile(scheme, c, f, itemsize)
    pb = block_tiles(scheme, c, f, itemsize, scheme.PIPELINE_BLOCK_BYTES, total)
    if use_pipeline(nthreads, total, pb):
        in_flight = nthreads * pb * per_tile
    else:
        in_flight = block_tiles(scheme, c, f, itemsize, scheme.FORWARD_BLOCK_BYTES, total) * per_tile
    return scheme.POSITIONS * f * c * itemsize + in_flight


def transform_filters(scheme: ModuleType, w: np.ndarray) -> np.ndarray:
    """``U = G w G^T`` for every (filter, channel): ``w`` (F, C, 3, 3) -> (K, F, C)."""
    f_out, c = w.shape[:2]
    u = np.empty((scheme.POSITIONS, f_out, c), dtype=w.dtype)
    threads.parallel_for(lambda lo, hi: scheme._k.filter_transform(w, lo, hi, u), f_out, grain(scheme, c))
    return u


def check_u(scheme: ModuleType, u: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``u`` if it is a transform of a filter bank shaped like ``w``; else a ValueError naming what it got."""
    expected = (scheme.POSITIONS, *w.shape[:2])
    if not isinstance(u, np.ndarray) or u.shape != expected or u.dtype != w.dtype or not u.flags.c_contiguous:
        got = f"{u.shape} {u.dtype}" if isinstance(u, np.ndarray) else type(u).__name__
        raise ValueError(f"{scheme.NAME}: transformed filters u must be a C-contiguous {expected} {w.dtype} array "
                         f"(transform_filters(w)), got {got}")
    return u


def forward(scheme: ModuleType, x: np.ndarray, w: np.ndarray, b: np.ndarray,
            u: np.ndarray | None = None) -> np.ndarray:
    """The forward pipeline; ``x`` (N, C, H, W), ``w`` (F, C, 3, 3) C-contiguous, one dtype -> (N, F, H, W)."""
    k = scheme.POSITIONS
    n_img, c, h, wd = x.shape
    f_out = w.shape[0]
    th, tw = scheme.tiles(h, wd)
    total = n_img * th * tw
    u = scheme.transform_filters(w) if u is None else check_u(scheme, u, w)   # (K, F, C)
    out = np.empty((n_img, f_out, h, wd), dtype=x.dtype)
    nthreads = threads.get_num_threads()
    pb = block_tiles(scheme, c, f_out, x.itemsize, scheme.PIPELINE_BLOCK_BYTES, total)
    if use_pipeline(nthreads, total, pb):
        _pipelined_forward(scheme, x, u, b, out, th, tw, total, pb)
        return out
    # few tiles (or one thread): one block after another, each phase spread over the threads
    pb = block_tiles(scheme, c, f_out, x.itemsize, scheme.FORWARD_BLOCK_BYTES, total)
    v_buf = np.empty(k * c * pb, dtype=x.dtype)
    m_buf = np.empty(k * f_out * pb, dtype=x.dtype)
    g = grain(scheme, pb)
    kern = scheme._k
    for p0, p1 in blocks(total, pb):
        q = p1 - p0
        v = v_buf[:k * c * q].reshape(k, c, q)                  # transformed tiles, contiguous
        m = m_buf[:k * f_out * q].reshape(k, f_out, q)          # their products with U
        threads.parallel_for(lambda lo, hi: kern.input_transform(x, lo, hi, p0, p1, th, tw, v), c, g)
        threads.parallel_matmul(u, v, m)                        # K GEMMs (F, C) @ (C, q)
        threads.parallel_for(lambda lo, hi: kern.output_transform(m, b, lo, hi, p0, p1, th, tw, out), f_out, g)
    return out


def _pipelined_forward(scheme, x, u, b, out, th, tw, total, pb):
    """Each thread: for each of its tile blocks, transform -> K GEMMs (1 BLAS thread) -> inverse transform."""
    k, kern = scheme.POSITIONS, scheme._k
    c, f_out = x.shape[1], out.shape[1]
    todo = list(blocks(total, pb))

    def work(lo, hi):
        v_buf = np.empty(k * c * pb, dtype=x.dtype)
        m_buf = np.empty(k * f_out * pb, dtype=x.dtype)
        for p0, p1 in todo[lo:hi]:
            q = p1 - p0
            v = v_buf[:k * c * q].reshape(k, c, q)
            m = m_buf[:k * f_out * q].reshape(k, f_out, q)
            kern.input_transform(x, 0, c, p0, p1, th, tw, v)
            np.matmul(u, v, out=m)
            kern.output_transform(m, b, 0, f_out, p0, p1, th, tw, out)

    with threads.blas_single_threaded():  # the threads are the parallelism; BLAS must not oversubscribe
        threads.parallel_for(work, len(todo))


def backward(scheme: ModuleType, dout: np.ndarray, x: np.ndarray, w: np.ndarray, u: np.ndarray | None = None,
             need_dx: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
    """``(dx, dw)`` by the transposed pipeline (``dx`` is ``None`` with ``need_dx=False``, skipping ``dV``)."""
    k, kern = scheme.POSITIONS, scheme._k
    n_img, c, h, wd = x.shape
    f_out = w.shape[0]
    th, tw = scheme.tiles(h, wd)
    total = n_img * th * tw
    u = scheme.transform_filters(w) if u is None else check_u(scheme, u, w)
    u_t = u.transpose(0, 2, 1)                                  # (K, C, F), a view
    du = np.zeros((k, f_out, c), dtype=x.dtype)                 # sum over blocks of dM_k V_k^T
    du_part = np.empty_like(du)
    dx = np.zeros_like(x) if need_dx else None                  # tiles overlap: contributions add
    pb = block_tiles(scheme, c, f_out, x.itemsize, scheme.BACKWARD_BLOCK_BYTES, total)
    v_buf = np.empty(k * c * pb, dtype=x.dtype)
    dm_buf = np.empty(k * f_out * pb, dtype=x.dtype)
    g = grain(scheme, pb)
    for i, (p0, p1) in enumerate(blocks(total, pb)):
        q = p1 - p0
        v = v_buf[:k * c * q].reshape(k, c, q)
        dm = dm_buf[:k * f_out * q].reshape(k, f_out, q)
        threads.parallel_for(lambda lo, hi: kern.input_transform(x, lo, hi, p0, p1, th, tw, v), c, g)
        threads.parallel_for(lambda lo, hi: kern.output_transform_adjoint(dout, lo, hi, p0, p1, th, tw, dm),
                             f_out, g)
        # dU += dM V^T: (K, F, q) @ (K, q, C); the first block writes, later ones add
        threads.parallel_matmul(dm, v.transpose(0, 2, 1), du if i == 0 else du_part)
        if i > 0:
            du += du_part
        if not need_dx:
            continue
        threads.parallel_matmul(u_t, dm, v)                     # dV = U^T dM: (K, C, q), reuses V
        threads.parallel_for(lambda lo, hi: kern.input_transform_adjoint(v, lo, hi, p0, p1, th, tw, dx), c, g)
    dw = np.empty_like(w)
    threads.parallel_for(lambda lo, hi: kern.filter_transform_adjoint(du, lo, hi, dw), f_out, grain(scheme, c))
    return dx, dw
