"""Convolution by its definition, loop by loop: the reference every fast path is tested against.

.. math::

    out[n, f, y, x] = b[f] + \\sum_{c, i, j} w[f, c, i, j] \\; x_{pad}[n, c, s y + i, s x + j]

Backward: ``dw[f] += dout[n,f,y,x] * window`` and ``dx_window += dout[n,f,y,x] * w[f]``
for every output position. Slow (Python loops over N*F*H_out*W_out positions,
each a C*KH*KW dot product); use it on small shapes.
"""

from __future__ import annotations

import numpy as np


def conv_output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """``(size + 2*pad - kernel) // stride + 1`` -- floor division, as PyTorch."""
    return (size + 2 * pad - kernel) // stride + 1


def naive_forward(x, w, b, stride, pad):
    """``out`` (N, F, H_out, W_out): every output value a window's dot product with a filter, plus the bias."""
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


def naive_backward(dout, x, w, stride, pad):
    """``(dx, dw)``: each output's gradient spread back over its window (``dx``) and its filter (``dw``)."""
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
