"""Softmax and the softmax cross-entropy loss (VGG's training objective, §3.1).

For logits ``s`` (N, K) and integer labels ``y`` (N,):

.. math::

    p_{nk} = \\frac{e^{s_{nk} - m_n}}{\\sum_j e^{s_{nj} - m_n}}, \\; m_n = \\max_j s_{nj},
    \\qquad L = -\\frac{1}{N} \\sum_n \\log p_{n, y_n},
    \\qquad \\frac{\\partial L}{\\partial s_{nk}} = \\frac{p_{nk} - [k = y_n]}{N}

Subtracting the row maximum changes nothing mathematically and keeps ``exp``
from overflowing (logits of +-1e4 are fine). ``log p`` is computed as
``(s - m) - log(sum exp(s - m))`` rather than ``log(p)``, so a probability that
underflows to 0 gives a large finite loss, not ``inf``.

Cost: a few elementwise ops on N*K values.
"""

from __future__ import annotations

import numpy as np

from ._validate import check_float_array


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``logits`` (N, K), stable for large magnitudes; same dtype."""
    check_float_array(logits, "softmax", "logits", ndim=2)
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    e /= e.sum(axis=1, keepdims=True)
    return e


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of ``softmax(logits)`` against labels; return ``(loss, dlogits)``.

    Parameters
    ----------
    logits : ndarray, shape (N, K), float32 or float64
    y : ndarray of int, shape (N,), values in ``[0, K)``

    Returns
    -------
    loss : float
        Mean over the batch.
    dlogits : ndarray, shape (N, K), dtype of ``logits``
    """
    name = "softmax_cross_entropy"
    check_float_array(logits, name, "logits", ndim=2)
    y = np.asarray(y)
    n, k = logits.shape
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name}: labels y must be integers, got dtype {y.dtype}")
    if y.shape != (n,):
        raise ValueError(f"{name}: labels y must have shape ({n},) to match logits {logits.shape}, got {y.shape}")
    if n and (y.min() < 0 or y.max() >= k):
        bad = y[(y < 0) | (y >= k)][0]
        raise ValueError(f"{name}: label {bad} is out of range for {k} classes (expected 0..{k - 1})")
    shifted = logits - logits.max(axis=1, keepdims=True)        # (N, K), max entry 0
    log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, 1), >= 0
    log_p = shifted - log_norm
    rows = np.arange(n)
    loss = -float(log_p[rows, y].mean())
    dlogits = np.exp(log_p)
    dlogits[rows, y] -= 1
    dlogits /= n
    return loss, dlogits
