"""3x3 convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray 2015).

VGG's only convolution is 3x3, stride 1, pad 1 -- exactly the case Lavin &
Gray benchmarked. Each 2x2 output block needs 16 multiplications instead of
36 (2.25x fewer), at the price of cheap additions in three transforms (see
:mod:`minivgg.kernels.winograd` for the matrices ``B``, ``G``, ``A``):

.. math::

    U_k = (G\\, w\\, G^T)_k \\in \\mathbb{R}^{F \\times C}, \\quad
    V_k = (B^T d\\, B)_k \\in \\mathbb{R}^{C \\times P}, \\quad
    M_k = U_k V_k \\;(k = 1..16), \\quad
    out = A^T M A + b

with ``P = N * ceil(H/2) * ceil(W/2)`` tiles. Cost: ``16 * F * C * P`` MACs in
16 GEMMs versus ``9 * F * C * H * W`` for direct convolution (``4P ~ N*H*W``).

Backward is the exact transpose of that pipeline (the forward is linear in
``w`` and in ``x``), which yields *both* gradients from one transformed
``dout`` and no im2col columns at all:

.. math::

    \\hat D_k = (A\\, dout\\, A^T)_k, \\quad
    dw = G^T \\big[\\textstyle\\sum \\hat D_k V_k^T\\big] G, \\quad
    dx = \\mathrm{scatter}\\big(B\\, [U_k^T \\hat D_k]\\, B^T\\big)

(the scatter adds the overlapping 4x4 tiles back into the image and drops the
padding). ``dx`` is therefore the "full" correlation with the 180-degree
rotated, channel-swapped filter that the direct method computes, in Winograd
form; backward costs ``2 * 16 * F * C * P`` MACs.

Numerics: the transforms only add, subtract and halve, so fp32 error stays of
the order of direct convolution's (``benchmarks/bench_vgg16.py`` measures both
against a float64 reference). Workspace: ``V`` and ``M`` would be 4x the input
and 4x the output; they are built block by block over the tiles instead (a few
MiB, see :data:`PIPELINE_BLOCK_BYTES`, :data:`FORWARD_BLOCK_BYTES`), so the
data passes through the cache rather than main memory.
"""

from __future__ import annotations

import numpy as np

import sys

from ...kernels import winograd as _k  # noqa: F401  (the pipeline reads it as scheme._k)
from . import winograd_pipeline as _pipe

NAME = "winograd"

#: Winograd positions per tile: a 4x4 transformed tile, one GEMM each.
POSITIONS = 16

#: Fewest tiles per block (thinner GEMMs run far below the BLAS peak).
MIN_BLOCK_TILES = 32

#: Each kernel slice should carry at least this many (channel x tile) units of
#: work before it is worth handing to another thread.
_MIN_WORK_PER_THREAD = 4096


def supports(w_shape: tuple, stride: int, pad: int) -> bool:
    """True for the one case F(2x2, 3x3) covers: 3x3 kernel, stride 1, pad 1."""
    return tuple(w_shape[2:]) == (3, 3) and stride == 1 and pad == 1


def _check(w_shape, stride, pad):
    if not supports(w_shape, stride, pad):
        raise ValueError(
            "winograd: F(2x2, 3x3) needs a 3x3 kernel with stride 1 and pad 1, got kernel "
            f"{w_shape[2]}x{w_shape[3]}, stride {stride}, pad {pad}; use algo='im2col'"
        )


def tiles(h: int, w: int) -> tuple[int, int]:
    """Number of 2x2 output tiles along H and W: ``ceil(H/2), ceil(W/2)``."""
    return (h + 1) // 2, (w + 1) // 2


#: Forward: tiles are processed in blocks whose ``V`` + ``M`` fit in about this
#: many bytes, so the input transform, the GEMMs and the output transform pass
#: the data through the last-level cache instead of main memory.
FORWARD_BLOCK_BYTES = 4 * 2**20

#: Forward with many tiles: each thread runs the whole pipeline (transform,
#: 16 single-threaded GEMMs, inverse transform) on its own blocks of about this
#: many bytes, which stay in that core's L2 -- one synchronisation per layer
#: instead of two per block, and no trip to main memory for ``V`` and ``M``.
PIPELINE_BLOCK_BYTES = 2 * 2**20

#: Backward: larger blocks, because ``dU += dM V^T`` has the block's tile count
#: as its inner dimension (small blocks make a thin, slow GEMM) and every block
#: pays one pass over the (16, F, C) accumulator.
BACKWARD_BLOCK_BYTES = 64 * 2**20


_self = sys.modules[__name__]  # the driver reads this module's constants at call time (tests change them)


def workspace_bytes_per_tile(c: int, f: int, itemsize: int) -> int:
    """Bytes of ``V`` (16, C) plus ``M`` (16, F) for one tile."""
    return _pipe.workspace_bytes_per_tile(_self, c, f, itemsize)


def block_tiles(c: int, f: int, itemsize: int, budget: int, total: int) -> int:
    """Tiles per block: as many as fit ``budget`` (at least :data:`MIN_BLOCK_TILES`, at most ``total``).

    Never more than :data:`minivgg.ops.conv.im2col.WORKSPACE_BYTES` either, the
    workspace bound every conv algorithm honours.
    """
    return _pipe.block_tiles(_self, c, f, itemsize, budget, total)


def forward_workspace_bytes(x_shape: tuple, w_shape: tuple, itemsize: int, nthreads: int | None = None) -> int:
    """Scratch bytes :func:`winograd_forward` allocates besides its output: ``U`` plus the tile blocks.

    Mirrors the forward's choice: ``nthreads`` pipelines with one
    :data:`PIPELINE_BLOCK_BYTES` block each when there are enough tiles, else
    one :data:`FORWARD_BLOCK_BYTES` block. ``nthreads`` defaults to
    :func:`minivgg.kernels._parallel.get_num_threads`.
    """
    return _pipe.forward_workspace_bytes(_self, x_shape, w_shape, itemsize, nthreads)


def transform_filters(w: np.ndarray) -> np.ndarray:
    """``U = G w G^T`` for every (filter, channel): ``w`` (F, C, 3, 3) -> (16, F, C)."""
    return _pipe.transform_filters(_self, w)


def winograd_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 1,
                     u: np.ndarray | None = None) -> np.ndarray:
    """3x3/s1/p1 convolution by F(2x2, 3x3); same result as :func:`~minivgg.ops.conv2d_forward`.

    Parameters
    ----------
    x : (N, C, H, W) C-contiguous; w : (F, C, 3, 3) C-contiguous; b : (F,)
        One floating dtype throughout (float32 or float64).
    stride, pad : must be 1 and 1.
    u : (16, F, C), optional
        ``transform_filters(w)`` computed earlier (the inference filter cache
        of :class:`minivgg.layers.Conv2d`); recomputed when not given.

    Returns
    -------
    out : (N, F, H, W)

    Cost: ``16 * F * C * N * ceil(H/2) * ceil(W/2)`` MACs in BLAS, plus
    ``O((C + F) * N * H * W)`` adds in the transforms. Workspace: ``U``
    (16 * F * C) and the blocks of ``V`` and ``M`` in flight
    (:func:`forward_workspace_bytes`). The pipeline itself:
    :mod:`minivgg.ops.conv.winograd_pipeline`.
    """
    _check(w.shape, stride, pad)
    return _pipe.forward(_self, x, w, b, u)


def winograd_backward(dout: np.ndarray, x: np.ndarray, w: np.ndarray, stride: int = 1,
                      pad: int = 1, need_dx: bool = True, u: np.ndarray | None = None
                      ) -> tuple[np.ndarray | None, np.ndarray]:
    """``(dx, dw)`` of :func:`winograd_forward` by the transposed pipeline (``db`` is the caller's).

    Parameters
    ----------
    dout : (N, F, H, W); x : (N, C, H, W); w : (F, C, 3, 3), all C-contiguous, one dtype.

    Returns
    -------
    dx : (N, C, H, W) (``None`` with ``need_dx=False``, which skips ``dV`` and its scatter), dw : (F, C, 3, 3)

    Cost: ``2 * 16 * F * C * N * ceil(H/2) * ceil(W/2)`` MACs (``dw`` and ``dx``).
    Workspace: one block of ``V`` and ``dM`` (:data:`BACKWARD_BLOCK_BYTES`), and
    ``U``, ``dU`` (16 * F * C each).
    """
    _check(w.shape, stride, pad)
    return _pipe.backward(_self, dout, x, w, u, need_dx)
