"""Local Response Normalisation across channels (Krizhevsky et al. 2012 §3.3; VGG paper §4.1, config A-LRN).

For input ``a`` (N, C, H, W), window ``size`` = n and constants ``k, alpha, beta``:

.. math::

    s[n, c, y, x] = k + \\alpha \\sum_{c' = c - \\lfloor n/2 \\rfloor}^{c + \\lfloor (n-1)/2 \\rfloor}
                    a[n, c', y, x]^2, \\qquad
    b[n, c, y, x] = a[n, c, y, x] \\; s[n, c, y, x]^{-\\beta}

(channels outside ``[0, C)`` count as 0). AlexNet's constants are the defaults:
``size=5, alpha=1e-4, beta=0.75, k=2``.

**The convention trap.** This is the paper's formula: ``alpha`` multiplies the
plain *sum* of squares. PyTorch's :class:`torch.nn.LocalResponseNorm` and
Caffe's LRN layer multiply the *mean* (they divide ``alpha`` by ``size``), so
the paper's layer equals ``torch.nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2)``
(``alpha_torch = size * alpha_paper``). The window is PyTorch's: ``size // 2``
channels before ``c`` and ``(size - 1) // 2`` after, symmetric for odd sizes
(the paper's n = 5); an even size is accepted and leans one channel towards
the lower channels, exactly as in PyTorch.

Backward, with upstream gradient ``g`` (the window of ``c`` contains ``j``
exactly when ``c`` lies in ``[j - (size-1)//2, j + size//2]``, the mirrored window):

.. math::

    \\frac{\\partial L}{\\partial a_j} = g_j s_j^{-\\beta}
        - 2 \\alpha \\beta \\, a_j \\sum_{c \\ni j} g_c \\, a_c \\, s_c^{-\\beta - 1}

Cost: about ``size`` multiply-adds per element for each of the two window sums
(forward one, backward one) plus one ``pow`` per element; no parameters.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._validate import check_float_array, check_positive_int, check_real, check_same_dtype


class LRNCache(NamedTuple):
    """What :func:`lrn_backward` needs: the input, the denominator base ``s`` and the constants."""

    x: np.ndarray      # (N, C, H, W), the input itself (no copy)
    scale: np.ndarray  # (N, C, H, W), s = k + alpha * window sum of x^2
    size: int
    alpha: float
    beta: float
    k: float


def _window_sum(v: np.ndarray, before: int, after: int) -> np.ndarray:
    """``out[:, c] = sum(v[:, c - before : c + after + 1])`` over channels (axis 1), clipped to ``[0, C)``.

    A loop over the ``before + after + 1`` offsets of shifted slice additions:
    exact sums (no cumulative-sum cancellation), ``size`` adds per element.
    """
    out = v.copy()
    c = v.shape[1]
    for d in range(1, min(before, c - 1) + 1):   # channel c - d contributes to c
        out[:, d:] += v[:, :c - d]
    for d in range(1, min(after, c - 1) + 1):    # channel c + d contributes to c
        out[:, :c - d] += v[:, d:]
    return out


def _check_constants(size, alpha, beta, k, name):
    size = check_positive_int(size, name, "size (channels in the window)")
    alpha = check_real(alpha, name, "alpha", 0)
    beta = check_real(beta, name, "beta", 0)
    k = check_real(k, name, "k", 0, low_open=True)  # k > 0 keeps s > 0, so s ** -beta is finite
    return size, alpha, beta, k


def lrn_forward(x: np.ndarray, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0,
                *, name: str = "lrn") -> tuple[np.ndarray, LRNCache]:
    """Normalise each activation by its neighbours across channels; return ``(out, cache)``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), float32 or float64
    size : int
        Channels in the window (paper: 5); ``size // 2`` before, ``(size - 1) // 2`` after.
    alpha, beta : float
        ``alpha >= 0`` multiplies the SUM of squares (the paper's convention, not
        PyTorch's mean: see the module docstring); ``beta >= 0`` is the exponent.
    k : float
        ``k > 0``, the additive constant.
    name : str
        Layer name used in error messages.

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : LRNCache

    Cost: ``size`` multiply-adds and one ``pow`` per element.
    """
    check_float_array(x, name, "input x", ndim=4)
    size, alpha, beta, k = _check_constants(size, alpha, beta, k, name)
    dt = x.dtype.type
    scale = dt(k) + dt(alpha) * _window_sum(x * x, size // 2, (size - 1) // 2)  # (N, C, H, W)
    out = x * scale ** dt(-beta)
    return out, LRNCache(x, scale, size, alpha, beta, k)


def lrn_backward(dout: np.ndarray, cache: LRNCache) -> np.ndarray:
    """``dx = g s^{-beta} - 2 alpha beta x * mirrored_window_sum(g x s^{-beta-1})``, shape (N, C, H, W)."""
    x, scale, size, alpha, beta, _ = cache
    name = "lrn_backward"
    check_float_array(dout, name, "upstream gradient dout", ndim=4)
    if dout.shape != x.shape:
        raise ValueError(f"{name}: dout must have the forward output's shape {x.shape}, got {dout.shape}")
    check_same_dtype(name, x, dout=dout)
    dt = x.dtype.type
    s_pow = scale ** dt(-beta)                          # s^-beta
    inner = dout * x * s_pow / scale                    # g_c a_c s_c^(-beta-1)
    # c's window holds j  <=>  j's mirrored window (after//before swapped) holds c
    back = _window_sum(inner, (size - 1) // 2, size // 2)
    return dout * s_pow - dt(2.0 * alpha * beta) * x * back
