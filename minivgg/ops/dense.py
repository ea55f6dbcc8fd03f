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


def dense_backward(dout: np.ndarray, cache: DenseCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``dx`` (x's shape), ``dw`` (D_in, D_out), ``db`` (D_out,) from ``dout`` (N, D_out)."""
    x, w = cache
    name = "dense_backward"
    check_float_array(dout, name, "upstream gradient dout", ndim=2)
    check_same_dtype(name, x, dout=dout)
    n = x.shape[0]
    if dout.shape != (n, w.shape[1]):
        raise ValueError(f"{name}: dout must have shape {(n, w.shape[1])}, got {dout.shape}")
    x2 = x.reshape(n, -1)        # (N, D_in)
    dx = (dout @ w.T).reshape(x.shape)
    dw = x2.T @ dout             # (D_in, D_out)
    db = dout.sum(axis=0)
    return dx, dw, db
