"""Fully connected (affine) layer, forward and backward: VGG's fc6, fc7 and fc8.

cs231n convention: any ``(N, d_1, ..., d_k)`` input is flattened to
``(N, D_in)`` with ``D_in = d_1 * ... * d_k`` (C-order, so a ``(C, H, W)``
feature map flattens channel-major, as PyTorch's ``x.view(N, -1)``):

.. math::

    out = x_{flat} W + b, \\quad W \\in \\mathbb{R}^{D_{in} \\times D_{out}}

    dx = dout\\, W^T \\;(\\text{reshaped to } x\\text{'s shape}), \\quad
    dW = x_{flat}^T\\, dout, \\quad db = \\textstyle\\sum_n dout_n

Cost: ``N * D_in * D_out`` MACs forward, twice that backward. In VGG-16, fc6
alone holds 25088 x 4096 = 102.8M of the 138.4M parameters.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._validate import check_float_array, check_same_dtype


class DenseCache(NamedTuple):
    """The input (in its original shape) and a reference to the weight."""

    x: np.ndarray  # (N, ...)
    w: np.ndarray  # (D_in, D_out)


def dense_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, *, name: str = "dense") -> tuple[np.ndarray, DenseCache]:
    """``out = x.reshape(N, -1) @ w + b``; return ``(out (N, D_out), cache)``.

    Parameters
    ----------
    x : ndarray, shape (N, ...) with prod(...) == D_in
    w : ndarray, shape (D_in, D_out)
    b : ndarray, shape (D_out,)
    name : str
        Layer name used in error messages.
    """
    check_float_array(x, name, "input x", min_ndim=2)
    check_float_array(w, name, "weight w", ndim=2)
    check_float_array(b, name, "bias b", ndim=1)
    check_same_dtype(name, x, **{"weight w": w, "bias b": b})
    d_in, d_out = w.shape
    n = x.shape[0]
    if x.size // n != d_in:
        raise ValueError(
            f"{name}: input {x.shape} flattens to {x.size // n} features per example "
            f"but weight w {w.shape} expects D_in = {d_in}"
        )
    if b.shape != (d_out,):
        raise ValueError(f"{name}: bias b must have shape ({d_out},), got {b.shape}")
    out = x.reshape(n, d_in) @ w  # (N, D_out)
    out += b
    return out, DenseCache(x, w)


def dense_backward(dout: np.ndarray, cache: DenseCache, *, dw_out: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``dx`` (x's shape), ``dw`` (D_in, D_out), ``db`` (D_out,) from ``dout`` (N, D_out).

    ``dw_out``: optional ``(D_in, D_out)`` array of the input's dtype to write
    ``dw`` into (and return). fc6's gradient is 25088 x 4096 = 411 MB in
    float32; a fresh array that size costs more in page faults than the GEMM
    that fills it (measured 0.4-1.5 s vs 0.1 s here), so the Dense layer hands
    back the buffer of the previous step.
    """
    x, w = cache
    name = "dense_backward"
    check_float_array(dout, name, "upstream gradient dout", ndim=2)
    check_same_dtype(name, x, dout=dout)
    n = x.shape[0]
    if dout.shape != (n, w.shape[1]):
        raise ValueError(f"{name}: dout must have shape {(n, w.shape[1])}, got {dout.shape}")
    if dw_out is not None and (dw_out.shape != w.shape or dw_out.dtype != x.dtype):
        raise ValueError(f"{name}: dw_out must be a {x.dtype} array of shape {w.shape}, "
                         f"got {dw_out.dtype} {dw_out.shape}")
    x2 = x.reshape(n, -1)        # (N, D_in)
    dx = (dout @ w.T).reshape(x.shape)
    dw = np.matmul(x2.T, dout, out=dw_out)  # (D_in, D_out)
    db = dout.sum(axis=0)
    return dx, dw, db
