"""3x3 convolution by Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray 2015, section 4.2).

The larger sibling of :mod:`minivgg.ops.conv.winograd` (F(2x2, 3x3)): each 4x4
output block comes from a 6x6 input tile with 36 multiplications instead of
144 -- 4x fewer than direct convolution (F(2x2) saves 2.25x). The transforms
``B`` (6x6), ``G`` (6x3), ``A`` (6x4) for the points 0, ±1, ±2 are written out
in :mod:`minivgg.kernels.winograd4`:

.. math::

    U_k = (G\\, w\\, G^T)_k \\in \\mathbb{R}^{F \\times C}, \\quad
    V_k = (B^T d\\, B)_k \\in \\mathbb{R}^{C \\times P}, \\quad
    M_k = U_k V_k \\;(k = 1..36), \\quad
    out = A^T M A + b

with ``P = N * ceil(H/4) * ceil(W/4)`` tiles. Cost: ``36 * F * C * P`` MACs in
36 GEMMs versus ``9 * F * C * H * W`` direct (``16 P ~ N*H*W``), plus
``O((C + F) * N * H * W)`` adds in the transforms -- which now weigh more,
since the GEMMs shrank 4x but the tiles carry 36/16 values per input pixel
(F(2x2): 16/4). A width or height that is not a multiple of 4 wastes the
overhanging part of the last tile (VGG's 14x14 block 5: 16x16 computed, 31 %
more than needed).

Backward is the exact transpose of that pipeline, as for F(2x2):

.. math::

    \\hat D_k = (A\\, dout\\, A^T)_k, \\quad
    dw = G^T \\big[\\textstyle\\sum \\hat D_k V_k^T\\big] G, \\quad
    dx = \\mathrm{scatter}\\big(B\\, [U_k^T \\hat D_k]\\, B^T\\big)

costing ``2 * 36 * F * C * P`` MACs.

Numerics: ``G`` has entries 1/6 and 1/24 and ``A^T`` powers up to 8, so in
float32 the RMS error is 4-11x direct convolution's (~2e-6 relative, max
~5e-5: fine for inference and training; measured per VGG-16 layer by
:func:`minivgg.bench.conv_algos.winograd_error_table`); float64 agrees with
direct convolution to ~1e-14. Workspace: ``V`` and ``M`` are built block by
block over the tiles, as for F(2x2) (:func:`forward_workspace_bytes`).
"""

from __future__ import annotations

import numpy as np

import sys

from ...kernels import winograd4 as _k  # noqa: F401  (the pipeline reads it as scheme._k)
from . import winograd_pipeline as _pipe  # the same pipeline as F(2x2, 3x3), with 36 positions

NAME = "winograd4"

#: Each kernel slice should carry at least this many (channel x tile) units of work.
_MIN_WORK_PER_THREAD = 4096

#: Winograd positions per tile: a 6x6 transformed tile, one GEMM each.
POSITIONS = 36

#: Forward with few tiles: each block's ``V`` + ``M`` fit in about this many bytes (last-level cache).
FORWARD_BLOCK_BYTES = 4 * 2**20

#: Forward with many tiles: each thread runs transform -> 36 GEMMs -> inverse transform on its own
#: blocks of about this many bytes (its L2), one synchronisation per layer.
PIPELINE_BLOCK_BYTES = 2 * 2**20

#: Backward: larger blocks, because ``dU += dM V^T`` has the block's tile count as its inner dimension.
BACKWARD_BLOCK_BYTES = 64 * 2**20

#: Fewest tiles per block: below this the GEMMs ``(F, C) @ (C, q)`` get too thin for BLAS, and ``U``
#: (36 MiB in float32 at F = C = 512) is streamed from memory once per block. 64 keeps VGG-16's
#: 28x28 layers at batch 1 (49 tiles) in one block (54 vs 66 ms with 32 on the loaded test machine: noisy).
MIN_BLOCK_TILES = 64


def supports(w_shape: tuple, stride: int, pad: int) -> bool:
    """True for the one case F(4x4, 3x3) covers: 3x3 kernel, stride 1, pad 1."""
    return tuple(w_shape[2:]) == (3, 3) and stride == 1 and pad == 1


def _check(w_shape, stride, pad):
    if not supports(w_shape, stride, pad):
        raise ValueError(
            "winograd4: F(4x4, 3x3) needs a 3x3 kernel with stride 1 and pad 1, got kernel "
            f"{w_shape[2]}x{w_shape[3]}, stride {stride}, pad {pad}; use algo='im2col'"
        )


def tiles(h: int, w: int) -> tuple[int, int]:
    """Number of 4x4 output tiles along H and W: ``ceil(H/4), ceil(W/4)``."""
    return (h + 3) // 4, (w + 3) // 4


_self = sys.modules[__name__]  # the driver reads this module's constants at call time (tests change them)


def workspace_bytes_per_tile(c: int, f: int, itemsize: int) -> int:
    """Bytes of ``V`` (36, C) plus ``M`` (36, F) for one tile."""
    return _pipe.workspace_bytes_per_tile(_self, c, f, itemsize)


def block_tiles(c: int, f: int, itemsize: int, budget: int, total: int) -> int:
    """Tiles per block: as many as fit ``budget`` and the im2col workspace bound
    (at least :data:`MIN_BLOCK_TILES`, at most ``total``)."""
    return _pipe.block_tiles(_self, c, f, itemsize, budget, total)


def forward_workspace_bytes(x_shape: tuple, w_shape: tuple, itemsize: int, nthreads: int | None = None) -> int:
    """Scratch bytes :func:`winograd4_forward` allocates besides its output: ``U`` plus the tile blocks.

    Mirrors the forward's choice between the per-thread pipeline and the
    phase-parallel loop; ``nthreads`` defaults to
    :func:`minivgg.kernels._parallel.get_num_threads`.
    """
    return _pipe.forward_workspace_bytes(_self, x_shape, w_shape, itemsize, nthreads)


def transform_filters(w: np.ndarray) -> np.ndarray:
    """``U = G w G^T`` for every (filter, channel): ``w`` (F, C, 3, 3) -> (36, F, C)."""
    return _pipe.transform_filters(_self, w)


def winograd4_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 1,
                      u: np.ndarray | None = None) -> np.ndarray:
    """3x3/s1/p1 convolution by F(4x4, 3x3); same result as :func:`~minivgg.ops.conv2d_forward`.

    Parameters
    ----------
    x : (N, C, H, W) C-contiguous; w : (F, C, 3, 3) C-contiguous; b : (F,)
        One floating dtype throughout (float32 or float64).
    stride, pad : must be 1 and 1.
    u : (36, F, C), optional
        ``transform_filters(w)`` computed earlier (the inference filter cache).

    Returns
    -------
    out : (N, F, H, W), dtype of ``x``

    Cost: ``36 * F * C * N * ceil(H/4) * ceil(W/4)`` MACs in BLAS (~ 1/4 of
    direct), plus ``O((C + F) * N * H * W)`` adds in the transforms.
    Workspace: ``U`` (36 * F * C) and the blocks of ``V`` and ``M`` in flight
    (:func:`forward_workspace_bytes`).
    """
    _check(w.shape, stride, pad)
    return _pipe.forward(_self, x, w, b, u)


def winograd4_backward(dout: np.ndarray, x: np.ndarray, w: np.ndarray, stride: int = 1,
                       pad: int = 1, need_dx: bool = True, u: np.ndarray | None = None
                       ) -> tuple[np.ndarray | None, np.ndarray]:
    """``(dx, dw)`` of :func:`winograd4_forward` by the transposed pipeline (``db`` is the caller's).

    Parameters
    ----------
    dout : (N, F, H, W); x : (N, C, H, W); w : (F, C, 3, 3), all C-contiguous, one dtype.

    Returns
    -------
    dx : (N, C, H, W) (``None`` with ``need_dx=False``), dw : (F, C, 3, 3)

    Cost: ``2 * 36 * F * C * N * ceil(H/4) * ceil(W/4)`` MACs (``dw`` and ``dx``).
    Workspace: one block of ``V`` and ``dM`` (:data:`BACKWARD_BLOCK_BYTES`), and
    ``U``, ``dU`` (36 * F * C each).
    """
    _check(w.shape, stride, pad)
    return _pipe.backward(_self, dout, x, w, u, need_dx)
