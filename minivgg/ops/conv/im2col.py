"""Convolution as matrix products: im2col, then one BLAS GEMM per chunk of images (cs231n's fast layer).

The windows are unrolled into a column matrix by the Numba kernel
:func:`minivgg.kernels.im2col.im2col_channels`: image ``n``'s columns are
``(C*KH*KW, H_out*W_out)``, laid side by side for a chunk of images as
``cols`` (C*KH*KW, nb*H_out*W_out), and ``out = w.reshape(F, C*KH*KW) @ cols``.
Backward recomputes the columns (the cache keeps only ``x``) and uses
``dw += dout_c @ cols.T`` and ``dx = col2im(w.T @ dout_c)``. Columns are
built for at most :data:`WORKSPACE_BYTES` worth of images at a time, so
training at batch N does not allocate ``N*C*9*H*W`` values at once. The
im2col/col2im loops run on all cores (channel slices), the GEMMs on BLAS.

Cost: the forward's MACs in GEMMs, plus ``C*KH*KW*H_out*W_out`` copies per image.
"""

from __future__ import annotations

import numpy as np

from ...kernels import _parallel as threads
from ...kernels.im2col import col2im_channels, im2col_channels
from .naive import conv_output_size

#: Upper bound on the im2col column buffer, in bytes. One image's columns are
#: always allowed even if larger (VGG-16 conv1_2 at 224x224: 576 x 50176 floats
#: = 110 MiB in float32).
WORKSPACE_BYTES = 256 * 2**20


def images_per_chunk(col_bytes_per_image: int) -> int:
    """How many images' columns fit in :data:`WORKSPACE_BYTES` (at least one)."""
    return max(1, WORKSPACE_BYTES // max(1, col_bytes_per_image))


#: A channel slice handed to another thread should move at least this many values.
_MIN_VALUES_PER_THREAD = 32768


def pad_input(x: np.ndarray, pad: int) -> np.ndarray:
    """``x`` (N, C, H, W) with ``pad`` zeros on each side: (N, C, H + 2p, W + 2p) (``x`` itself when ``pad == 0``)."""
    if pad == 0:
        return x
    n, c, h, w = x.shape
    xp = np.empty((n, c, h + 2 * pad, w + 2 * pad), dtype=x.dtype)
    # zero only the border: the interior is overwritten next
    xp[:, :, :pad], xp[:, :, -pad:], xp[:, :, :, :pad], xp[:, :, :, -pad:] = 0, 0, 0, 0
    xp[:, :, pad:-pad, pad:-pad] = x
    return xp


def _im2col(x, kh, kw, stride, pad, ho, wo, cols):
    """:func:`~minivgg.kernels.im2col.im2col_channels` on the padded ``x``, channels split over the threads."""
    xp = pad_input(x, pad)
    grain = max(1, _MIN_VALUES_PER_THREAD // max(1, x.shape[0] * kh * kw * ho * wo))
    threads.parallel_for(lambda lo, hi: im2col_channels(xp, lo, hi, kh, kw, stride, ho, wo, cols),
                         x.shape[1], grain)


def _col2im(cols, kh, kw, stride, pad, ho, wo, dx):
    """:func:`~minivgg.kernels.im2col.col2im_channels` into a padded buffer, then its interior into ``dx``."""
    n, c, h, w = dx.shape
    dxp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=dx.dtype) if pad else dx
    grain = max(1, _MIN_VALUES_PER_THREAD // max(1, n * kh * kw * ho * wo))
    threads.parallel_for(lambda lo, hi: col2im_channels(cols, lo, hi, kh, kw, stride, ho, wo, dxp), c, grain)
    if pad:
        dx += dxp[:, :, pad:pad + h, pad:pad + w]


def is_pointwise(kh, kw, stride, pad) -> bool:
    """True for a 1x1/stride-1/pad-0 conv, which needs no columns."""
    # a 1x1/s1/p0 conv (config C) is already a GEMM on x viewed as (C, H*W)
    return kh == 1 and kw == 1 and stride == 1 and pad == 0


def _chunk_columns(n_img: int, k: int, hw: int, itemsize: int) -> tuple[int, np.ndarray]:
    """Images per chunk and a column buffer ``(K, chunk * L)`` for them."""
    chunk = min(n_img, images_per_chunk(k * hw * itemsize))
    return chunk, np.empty((k, chunk * hw), dtype=np.dtype(f"f{itemsize}"))


def _as_images(buf: np.ndarray, nb: int, hw: int) -> np.ndarray:
    """The first ``nb`` images of a ``(K, chunk*L)`` buffer seen as ``(nb, K, L)`` (a strided view, no copy)."""
    k = buf.shape[0]
    return buf[:, :nb * hw].reshape(k, nb, hw).transpose(1, 0, 2)


def im2col_forward(x, w, b, stride, pad):
    """``out`` (N, F, H_out, W_out) = ``w2 @ cols + b``, ``w2 = w.reshape(F, C*KH*KW)``, one GEMM per chunk.

    The columns of a chunk of images sit side by side, ``cols`` (C*KH*KW, nb * H_out*W_out),
    so one GEMM serves the whole chunk: at batch 32 on 8x8 images that is one
    call instead of 32 tiny ones (the per-call overhead dominated small
    networks). The product ``(F, nb, L)`` is then transposed into ``out``.
    """
    n_img, c, h, wd = x.shape
    f_out, _, kh, kw = w.shape
    ho, wo = conv_output_size(h, kh, stride, pad), conv_output_size(wd, kw, stride, pad)
    k, hw = c * kh * kw, ho * wo
    w2 = w.reshape(f_out, k)                       # (F, C*KH*KW)
    out = np.empty((n_img, f_out, ho, wo), dtype=x.dtype)
    out3 = out.reshape(n_img, f_out, hw)           # (N, F, H_out*W_out), a view
    if is_pointwise(kh, kw, stride, pad):
        np.matmul(w2, x.reshape(n_img, c, h * wd), out=out3)
    else:
        chunk, cols = _chunk_columns(n_img, k, hw, x.itemsize)            # (K, chunk*L)
        prod = np.empty((f_out, chunk * hw), dtype=x.dtype) if chunk > 1 else None
        for n0 in range(0, n_img, chunk):
            nb = min(chunk, n_img - n0)
            _im2col(x[n0:n0 + nb], kh, kw, stride, pad, ho, wo, _as_images(cols, nb, hw))
            if nb == 1:
                threads.parallel_matmul(w2, cols[:, :hw], out3[n0])      # (F, K) @ (K, L)
            else:
                threads.parallel_matmul(w2, cols[:, :nb * hw], prod[:, :nb * hw])  # (F, K) @ (K, nb*L)
                out3[n0:n0 + nb] = prod[:, :nb * hw].reshape(f_out, nb, hw).transpose(1, 0, 2)
    out += b.reshape(1, f_out, 1, 1)
    return out


def im2col_backward(dout, x, w, stride, pad, need_dx=True):
    """``(dx, dw)``: per chunk ``dw += dout_c @ cols.T`` and ``dx = col2im(w2.T @ dout_c)``, one GEMM each.

    ``dout_c`` is the chunk's upstream gradient laid out like the columns,
    ``(F, nb * L)`` (one transposing copy of ``dout``), so each product is a
    single GEMM whatever the batch. ``need_dx=False`` skips ``dcols`` and
    col2im and returns ``dx = None``.
    """
    n_img, c, h, wd = x.shape
    f_out, _, kh, kw = w.shape
    _, _, ho, wo = dout.shape
    k, hw = c * kh * kw, ho * wo
    w2 = w.reshape(f_out, k)                                   # (F, K)
    dout3 = np.ascontiguousarray(dout).reshape(n_img, f_out, hw)  # (N, F, L)
    if is_pointwise(kh, kw, stride, pad):
        x3 = x.reshape(n_img, c, hw)                           # (N, C, L)
        dw2 = np.einsum("nfl,ncl->fc", dout3, x3, optimize=True)
        dx = np.matmul(w2.T, dout3).reshape(x.shape) if need_dx else None  # (N, C, H, W)
        return dx, np.ascontiguousarray(dw2).reshape(w.shape)
    dw2 = np.zeros((f_out, k), dtype=x.dtype)                  # (F, K)
    dw_part = np.empty_like(dw2)
    dx = np.zeros_like(x) if need_dx else None
    chunk, cols = _chunk_columns(n_img, k, hw, x.itemsize)     # (K, chunk*L)
    dchunk = np.empty((f_out, chunk * hw), dtype=x.dtype)      # (F, chunk*L)
    for n0 in range(0, n_img, chunk):
        nb = min(chunk, n_img - n0)
        cb, db = cols[:, :nb * hw], dchunk[:, :nb * hw]
        _im2col(x[n0:n0 + nb], kh, kw, stride, pad, ho, wo, _as_images(cols, nb, hw))
        db.reshape(f_out, nb, hw)[...] = dout3[n0:n0 + nb].transpose(1, 0, 2)   # (F, nb, L)
        dw2 += threads.parallel_matmul(db, cb.T, dw_part)     # (F, nb*L) @ (nb*L, K)
        if not need_dx:
            continue
        threads.parallel_matmul(w2.T, db, cb)                  # dcols (K, nb*L), reusing the buffer
        _col2im(_as_images(cols, nb, hw), kh, kw, stride, pad, ho, wo, dx[n0:n0 + nb])
    return dx, dw2.reshape(w.shape)
