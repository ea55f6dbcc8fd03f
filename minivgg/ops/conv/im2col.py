"""Convolution as matrix products: im2col, then one BLAS GEMM per image (cs231n's fast layer).

The windows are unrolled into a column matrix by the Numba kernel
:func:`minivgg.kernels.im2col.im2col_channels`: ``cols[n]`` is
``(C*KH*KW, H_out*W_out)``, and ``out[n] = w.reshape(F, C*KH*KW) @ cols[n]``.
Backward recomputes the columns (the cache keeps only ``x``) and uses
``dw += dout[n] @ cols[n].T`` and ``dx = col2im(w.T @ dout[n])``. Columns are
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


def _im2col(x, kh, kw, stride, pad, ho, wo, cols):
    """:func:`~minivgg.kernels.im2col.im2col_channels` with the channels split over the threads."""
    grain = max(1, _MIN_VALUES_PER_THREAD // max(1, x.shape[0] * kh * kw * ho * wo))
    threads.parallel_for(lambda lo, hi: im2col_channels(x, lo, hi, kh, kw, stride, pad, ho, wo, cols),
                         x.shape[1], grain)


def _col2im(cols, kh, kw, stride, pad, ho, wo, dx):
    """:func:`~minivgg.kernels.im2col.col2im_channels` with the channels split over the threads."""
    grain = max(1, _MIN_VALUES_PER_THREAD // max(1, dx.shape[0] * kh * kw * ho * wo))
    threads.parallel_for(lambda lo, hi: col2im_channels(cols, lo, hi, kh, kw, stride, pad, ho, wo, dx),
                         dx.shape[1], grain)


def is_pointwise(kh, kw, stride, pad) -> bool:
    """True for a 1x1/stride-1/pad-0 conv, which needs no columns."""
    # a 1x1/s1/p0 conv (config C) is already a GEMM on x viewed as (C, H*W)
    return kh == 1 and kw == 1 and stride == 1 and pad == 0


def im2col_forward(x, w, b, stride, pad):
    """``out`` (N, F, H_out, W_out) = ``w2 @ cols[n] + b`` per image, ``w2 = w.reshape(F, C*KH*KW)``."""
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
        chunk = min(n_img, images_per_chunk(k * hw * x.itemsize))
        cols = np.empty((chunk, k, hw), dtype=x.dtype)  # (chunk, C*KH*KW, H_out*W_out)
        for n0 in range(0, n_img, chunk):
            nb = min(chunk, n_img - n0)
            _im2col(x[n0:n0 + nb], kh, kw, stride, pad, ho, wo, cols[:nb])
            threads.parallel_matmul(w2, cols[:nb], out3[n0:n0 + nb])  # one GEMM per image
    out += b.reshape(1, f_out, 1, 1)
    return out


def im2col_backward(dout, x, w, stride, pad):
    """``(dx, dw)``: ``dw = sum_n dout[n] @ cols[n].T``, ``dx = col2im(w2.T @ dout[n])``."""
    n_img, c, h, wd = x.shape
    f_out, _, kh, kw = w.shape
    _, _, ho, wo = dout.shape
    k, hw = c * kh * kw, ho * wo
    w2 = w.reshape(f_out, k)                                   # (F, K)
    dout3 = np.ascontiguousarray(dout).reshape(n_img, f_out, hw)  # (N, F, L)
    dw2 = np.zeros((f_out, k), dtype=x.dtype)                  # (F, K)
    if is_pointwise(kh, kw, stride, pad):
        x3 = x.reshape(n_img, c, hw)                           # (N, C, L)
        for n in range(n_img):
            dw2 += dout3[n] @ x3[n].T
        dx = np.matmul(w2.T, dout3).reshape(x.shape)           # (N, C, H, W)
        return dx, dw2.reshape(w.shape)
    dx = np.zeros_like(x)
    dw_part = np.empty_like(dw2)
    chunk = min(n_img, images_per_chunk(k * hw * x.itemsize))
    cols = np.empty((chunk, k, hw), dtype=x.dtype)
    for n0 in range(0, n_img, chunk):
        nb = min(chunk, n_img - n0)
        _im2col(x[n0:n0 + nb], kh, kw, stride, pad, ho, wo, cols[:nb])
        for i in range(nb):
            dw2 += threads.parallel_matmul(dout3[n0 + i], cols[i].T, dw_part)  # (F, L) @ (L, K)
        threads.parallel_matmul(w2.T, dout3[n0:n0 + nb], cols[:nb])  # dcols, reusing the buffer
        _col2im(cols[:nb], kh, kw, stride, pad, ho, wo, dx[n0:n0 + nb])
    return dx, dw2.reshape(w.shape)
