"""Inverted dropout, forward and backward (VGG: p = 0.5 after fc6 and fc7).

In training each element is kept with probability ``1 - p`` and scaled by
``1 / (1 - p)`` so the expected activation is unchanged; at test time the layer
is the identity (that is what "inverted" buys: nothing to rescale at test time).

.. math::

    m_i \\sim \\mathrm{Bernoulli}(1 - p), \\quad out = x \\odot m / (1 - p),
    \\quad dx = dout \\odot m / (1 - p)

The mode is an explicit ``train`` flag and randomness comes from a seeded
``numpy.random.Generator`` passed in, so runs are reproducible. The cache keeps
a ``bool`` mask (1 byte per element), not a float one.

Cost: one multiply per element.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._validate import check_float_array


class DropoutCache(NamedTuple):
    """Keep-mask (``None`` when nothing was dropped) and the scale ``1 / (1 - p)``."""

    mask: np.ndarray | None
    scale: float


def dropout_forward(x: np.ndarray, p: float = 0.5, *, train: bool, rng: np.random.Generator | int | None = None,
                    name: str = "dropout") -> tuple[np.ndarray, DropoutCache]:
    """Drop each element with probability ``p`` (training only); return ``(out, cache)``.

    Parameters
    ----------
    x : ndarray, any shape, float
    p : float in [0, 1)
        Probability of DROPPING an element (PyTorch's convention).
    train : bool
        Keyword-only on purpose: dropout must never be on by accident.
    rng : numpy.random.Generator or int seed
        Required when ``train`` and ``p > 0``.
    """
    check_float_array(x, name, "input x")
    if not isinstance(train, (bool, np.bool_)):
        raise TypeError(f"{name}: train must be a bool, got {type(train).__name__}")
    if not (0.0 <= float(p) < 1.0):
        raise ValueError(f"{name}: drop probability p must be in [0, 1), got {p!r}")
    if not train or p == 0:
        return x, DropoutCache(None, 1.0)
    if rng is None:
        raise ValueError(f"{name}: training-mode dropout needs a seeded rng (numpy Generator or int)")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    mask = rng.random(x.shape, dtype=np.float32 if x.dtype == np.float32 else np.float64) >= p
    scale = 1.0 / (1.0 - float(p))
    out = x * mask
    out *= x.dtype.type(scale)
    return out, DropoutCache(mask, scale)


def dropout_backward(dout: np.ndarray, cache: DropoutCache) -> np.ndarray:
    """``dx = dout * mask / (1 - p)``; the identity when the forward dropped nothing."""
    mask, scale = cache
    check_float_array(dout, "dropout_backward", "upstream gradient dout")
    if mask is None:
        return dout
    if dout.shape != mask.shape:
        raise ValueError(f"dropout_backward: dout must have shape {mask.shape}, got {dout.shape}")
    dx = dout * mask
    dx *= dout.dtype.type(scale)
    return dx
