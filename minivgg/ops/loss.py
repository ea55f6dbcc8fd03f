"""Softmax and the softmax cross-entropy loss (VGG's training objective, §3.1), and the squared-L2 loss.

The squared-L2 ("Euclidean") loss is what the paper's localization net
(Appendix A) regresses boxes with; see :func:`l2_loss`.

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


def l2_loss(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Squared Euclidean distance between predictions and targets, mean over the batch: ``(loss, dpred)``.

    The localization loss of Simonyan & Zisserman, Appendix A ("the logistic
    regression objective is replaced with a Euclidean loss, which penalises the
    deviation of the predicted bounding box parameters from the ground-truth").

    .. math::

        L = \\frac{1}{N} \\sum_{n=1}^N \\lVert p_n - t_n \\rVert_2^2
          = \\frac{1}{N} \\sum_{n,d} (p_{nd} - t_{nd})^2,
        \\qquad \\frac{\\partial L}{\\partial p_{nd}} = \\frac{2 (p_{nd} - t_{nd})}{N}

    Normalisation: the sum over the D coordinates of one sample (no 1/2, no
    1/D), then the mean over the N samples -- so the loss of one box is its
    squared distance, whatever the batch size. (Caffe's ``EuclideanLoss``
    is half of this; ``torch.nn.functional.mse_loss(reduction="sum") / N``
    equals it.)

    Parameters
    ----------
    pred : ndarray, shape (N, D), float32 or float64
    target : ndarray, shape (N, D), same dtype as ``pred`` (not differentiated)

    Returns
    -------
    loss : float
    dpred : ndarray, shape (N, D), dtype of ``pred``

    Cost: 3 N D flops.
    """
    name = "l2_loss"
    check_float_array(pred, name, "pred", ndim=2)
    check_float_array(target, name, "target", ndim=2)
    if target.shape != pred.shape:
        raise ValueError(f"{name}: target must have the shape of pred {pred.shape}, got {target.shape}")
    if target.dtype != pred.dtype:
        raise TypeError(f"{name}: target dtype {target.dtype} differs from pred dtype {pred.dtype}")
    n = pred.shape[0]
    if n == 0:
        raise ValueError(f"{name}: empty batch (pred has shape {pred.shape})")
    diff = pred - target  # (N, D)
    loss = float(np.einsum("nd,nd->", diff, diff, dtype=np.float64)) / n
    dpred = diff * pred.dtype.type(2.0 / n)
    return loss, dpred
