"""2-D convolution, forward and backward (cs231n lecture 9; VGG's only conv is 3x3/s1/p1).

Layout is NCHW. For input ``x`` (N, C, H, W), weights ``w`` (F, C, KH, KW),
bias ``b`` (F,), stride ``s`` and zero padding ``p``:

.. math::

    out[n, f, y, x] = b[f] + \\sum_{c, i, j} w[f, c, i, j] \\;
                      x_{pad}[n, c, s y + i, s x + j]

    H_{out} = \\lfloor (H + 2p - KH) / s \\rfloor + 1, \\quad
    W_{out} = \\lfloor (W + 2p - KW) / s \\rfloor + 1

(integer division: the cs231n assignment's ``/`` gives a float here and is a
bug). Backward, with upstream gradient ``dout`` (N, F, H_out, W_out):

.. math::

    db[f] = \\sum_{n,y,x} dout[n,f,y,x], \\quad
    dw[f,c,i,j] = \\sum_{n,y,x} dout[n,f,y,x]\\, x_{pad}[n,c,sy+i,sx+j],

    dx_{pad}[n,c,sy+i,sx+j] \\mathrel{+}= \\sum_f w[f,c,i,j]\\, dout[n,f,y,x].

Cost: ``N * F * H_out * W_out * C * KH * KW`` multiply-adds (MACs) forward;
backward is twice that (one product for ``dw``, one for ``dx``).

Two algorithms with the same signature (``algo=``):

* ``"naive"`` -- the loops above, written to be read. Use it on small shapes
  and as the reference the fast paths are tested against.
* ``"im2col"`` -- unroll the windows into a column matrix (Numba kernel in
  :mod:`minivgg.kernels.im2col`) and do one BLAS GEMM per image:
  ``out[n] = w.reshape(F, C*KH*KW) @ cols[n]``. Backward recomputes the columns
  (the cache keeps only ``x``) and uses ``dw += dout[n] @ cols[n].T`` and
  ``col2im(w.T @ dout[n])``. Columns are built for at most
  :data:`WORKSPACE_BYTES` worth of images at a time, so training at batch N
  does not allocate ``N*C*9*H*W`` values at once.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from ..kernels.im2col import col2im, im2col
from ._validate import check_float_array, check_positive_int, check_same_dtype

#: Upper bound on the im2col column buffer, in bytes. One image's columns are
#: always allowed even if larger (VGG-16 conv1_2 at 224x224: 576 x 50176 floats
#: = 110 MiB in float32).
WORKSPACE_BYTES = 256 * 2**20


class Conv2dCache(NamedTuple):
    """What :func:`conv2d_backward` needs: the input (not the columns) and the settings."""

    x: np.ndarray  # (N, C, H, W), the very array the previous layer returned
    w: np.ndarray  # (F, C, KH, KW), a reference to the parameter, not a copy
    stride: int
    pad: int
    algo: str


def conv_output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """``(size + 2*pad - kernel) // stride + 1`` -- floor division, as PyTorch."""
    return (size + 2 * pad - kernel) // stride + 1


def _check_conv_args(x, w, b, stride, pad, name):
    check_float_array(x, name, "input x", ndim=4)
    check_float_array(w, name, "weight w", ndim=4)
    check_float_array(b, name, "bias b", ndim=1)
    check_same_dtype(name, x, **{"weight w": w, "bias b": b})
    stride = check_positive_int(stride, name, "stride")
    pad = check_positive_int(pad, name, "pad", minimum=0)
    n, c, h, wd = x.shape
    f, wc, kh, kw = w.shape
    if wc != c:
        raise ValueError(
            f"{name}: input has {c} channels but weight w {w.shape} expects {wc} "
            "(weights are (F, C, KH, KW), input is NCHW)"
        )
    if b.shape != (f,):
        raise ValueError(f"{name}: bias b must have shape ({f},) to match weight {w.shape}, got {b.shape}")
    if kh > h + 2 * pad or kw > wd + 2 * pad:
        raise ValueError(
            f"{name}: kernel {kh}x{kw} is larger than the padded input "
            f"{h + 2 * pad}x{wd + 2 * pad} (input {h}x{wd}, pad {pad})"
        )
    return stride, pad


# ---------------------------------------------------------------------------
# naive reference: the formula, loop by loop
# ---------------------------------------------------------------------------

def _naive_forward(x, w, b, stride, pad):
    n_img, _, h, wd = x.shape
    f_out, _, kh, kw = w.shape
    ho, wo = conv_output_size(h, kh, stride, pad), conv_output_size(wd, kw, stride, pad)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))  # (N, C, H+2p, W+2p)
    out = np.empty((n_img, f_out, ho, wo), dtype=x.dtype)
    for n in range(n_img):
        for f in range(f_out):
            for y in range(ho):
                for xo in range(wo):
                    window = xp[n, :, y * stride:y * stride + kh, xo * stride:xo * stride + kw]  # (C, KH, KW)
                    out[n, f, y, xo] = np.sum(window * w[f]) + b[f]
    return out


def _naive_backward(dout, x, w, stride, pad):
    n_img, _, h, wd = x.shape
    f_out, _, kh, kw = w.shape
    _, _, ho, wo = dout.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for n in range(n_img):
        for f in range(f_out):
            for y in range(ho):
                for xo in range(wo):
                    ys, xs = y * stride, xo * stride
                    g = dout[n, f, y, xo]
                    dw[f] += g * xp[n, :, ys:ys + kh, xs:xs + kw]
                    dxp[n, :, ys:ys + kh, xs:xs + kw] += g * w[f]
    dx = dxp[:, :, pad:pad + h, pad:pad + wd]
    return np.ascontiguousarray(dx), dw


# ---------------------------------------------------------------------------
# im2col + GEMM
# ---------------------------------------------------------------------------

def _images_per_chunk(col_bytes_per_image: int) -> int:
    return max(1, WORKSPACE_BYTES // max(1, col_bytes_per_image))


def _is_pointwise(kh, kw, stride, pad) -> bool:
    # a 1x1/s1/p0 conv (config C) is already a GEMM on x viewed as (C, H*W)
    return kh == 1 and kw == 1 and stride == 1 and pad == 0


def _im2col_forward(x, w, b, stride, pad):
    n_img, c, h, wd = x.shape
    f_out, _, kh, kw = w.shape
    ho, wo = conv_output_size(h, kh, stride, pad), conv_output_size(wd, kw, stride, pad)
    k, hw = c * kh * kw, ho * wo
    w2 = w.reshape(f_out, k)                       # (F, C*KH*KW)
    out = np.empty((n_img, f_out, ho, wo), dtype=x.dtype)
    out3 = out.reshape(n_img, f_out, hw)           # (N, F, H_out*W_out), a view
    if _is_pointwise(kh, kw, stride, pad):
        np.matmul(w2, x.reshape(n_img, c, h * wd), out=out3)
    else:
        chunk = min(n_img, _images_per_chunk(k * hw * x.itemsize))
        cols = np.empty((chunk, k, hw), dtype=x.dtype)  # (chunk, C*KH*KW, H_out*W_out)
        for n0 in range(0, n_img, chunk):
            nb = min(chunk, n_img - n0)
            im2col(x[n0:n0 + nb], kh, kw, stride, pad, ho, wo, cols[:nb])
            np.matmul(w2, cols[:nb], out=out3[n0:n0 + nb])  # one GEMM per image
    out += b.reshape(1, f_out, 1, 1)
    return out


def _im2col_backward(dout, x, w, stride, pad):
    n_img, c, h, wd = x.shape
    f_out, _, kh, kw = w.shape
    _, _, ho, wo = dout.shape
    k, hw = c * kh * kw, ho * wo
    w2 = w.reshape(f_out, k)                                   # (F, K)
    dout3 = np.ascontiguousarray(dout).reshape(n_img, f_out, hw)  # (N, F, L)
    dw2 = np.zeros((f_out, k), dtype=x.dtype)                  # (F, K)
    if _is_pointwise(kh, kw, stride, pad):
        x3 = x.reshape(n_img, c, hw)                           # (N, C, L)
        for n in range(n_img):
            dw2 += dout3[n] @ x3[n].T
        dx = np.matmul(w2.T, dout3).reshape(x.shape)           # (N, C, H, W)
        return dx, dw2.reshape(w.shape)
    dx = np.zeros_like(x)
    chunk = min(n_img, _images_per_chunk(k * hw * x.itemsize))
    cols = np.empty((chunk, k, hw), dtype=x.dtype)
    for n0 in range(0, n_img, chunk):
        nb = min(chunk, n_img - n0)
        im2col(x[n0:n0 + nb], kh, kw, stride, pad, ho, wo, cols[:nb])
        for i in range(nb):
            dw2 += dout3[n0 + i] @ cols[i].T                   # (F, L) @ (L, K)
        np.matmul(w2.T, dout3[n0:n0 + nb], out=cols[:nb])     # dcols, reusing the buffer
        col2im(cols[:nb], kh, kw, stride, pad, ho, wo, dx[n0:n0 + nb])
    return dx, dw2.reshape(w.shape)


ForwardImpl = Callable[[np.ndarray, np.ndarray, np.ndarray, int, int], np.ndarray]
BackwardImpl = Callable[[np.ndarray, np.ndarray, np.ndarray, int, int], tuple]

#: name -> (forward(x, w, b, stride, pad), backward(dout, x, w, stride, pad) -> (dx, dw)).
ALGORITHMS: dict[str, tuple[ForwardImpl, BackwardImpl]] = {
    "naive": (_naive_forward, _naive_backward),
    "im2col": (_im2col_forward, _im2col_backward),
}


def choose_algorithm(x_shape: tuple, w_shape: tuple, stride: int, pad: int, algo: str) -> str:
    """Resolve ``"auto"`` to a concrete algorithm name; validate any other name."""
    if algo == "auto":
        return "im2col"
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown convolution algorithm {algo!r}; expected 'auto' or one of {sorted(ALGORITHMS)}")
    return algo


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 1,
                   *, algo: str = "auto", name: str = "conv2d") -> tuple[np.ndarray, Conv2dCache]:
    """Convolve ``x`` with ``w`` and add ``b``; return ``(out, cache)``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), float32 or float64
    w : ndarray, shape (F, C, KH, KW), same dtype as ``x``
    b : ndarray, shape (F,), same dtype as ``x``
    stride, pad : int
        Stride >= 1 and zero padding >= 0 on each side.
    algo : {"auto", "naive", "im2col", ...}
        Keys of :data:`ALGORITHMS`; ``"auto"`` picks the fastest available.
    name : str
        Layer name used in error messages.

    Returns
    -------
    out : ndarray, shape (N, F, H_out, W_out), dtype of ``x``
        ``H_out = (H + 2*pad - KH) // stride + 1`` (likewise ``W_out``).
    cache : Conv2dCache
        Keeps ``x`` itself (no copy) for :func:`conv2d_backward`.

    Cost: ``N*F*H_out*W_out*C*KH*KW`` MACs.
    """
    stride, pad = _check_conv_args(x, w, b, stride, pad, name)
    algo = choose_algorithm(x.shape, w.shape, stride, pad, algo)
    x = np.ascontiguousarray(x)
    out = ALGORITHMS[algo][0](x, np.ascontiguousarray(w), b, stride, pad)
    return out, Conv2dCache(x, w, stride, pad, algo)


def conv2d_backward(dout: np.ndarray, cache: Conv2dCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of a convolution: ``dx, dw, db = conv2d_backward(dout, cache)``.

    Parameters
    ----------
    dout : ndarray, shape (N, F, H_out, W_out)
        Upstream gradient, same dtype as the forward input.
    cache : Conv2dCache
        From :func:`conv2d_forward`.

    Returns
    -------
    dx : (N, C, H, W), dw : (F, C, KH, KW), db : (F,)

    Cost: ``2 * N*F*H_out*W_out*C*KH*KW`` MACs (``dw`` and ``dx``).
    """
    x, w, stride, pad, algo = cache
    name = "conv2d_backward"
    check_float_array(dout, name, "upstream gradient dout", ndim=4)
    check_same_dtype(name, x, dout=dout)
    n, _, h, wd = x.shape
    f, _, kh, kw = w.shape
    expected = (n, f, conv_output_size(h, kh, stride, pad), conv_output_size(wd, kw, stride, pad))
    if dout.shape != expected:
        raise ValueError(f"{name}: dout must have the forward output's shape {expected}, got {dout.shape}")
    dx, dw = ALGORITHMS[algo][1](dout, x, np.ascontiguousarray(w), stride, pad)
    db = dout.sum(axis=(0, 2, 3))
    return dx, dw, db
