"""Guided backpropagation (Springenberg, Dosovitskiy, Brox & Riedmiller 2015, §3.4).

The plain input gradient passes an upstream gradient through a ReLU where the
forward input was positive: ``dx = dout * (x > 0)``. Guided backprop also drops
the negative upstream gradients, so only signals that *raise* the unit flow back:

.. math:: dx = dout \\cdot [x > 0] \\cdot [dout > 0] = \\mathrm{relu\\_backward}(\\max(dout, 0))

Every other layer (conv, max-pool, dense, flatten) backpropagates exactly as in
:meth:`minivgg.vgg.VGG.input_gradient`; dropout is the identity (inference mode).
The result is not the gradient of anything: it is a picture, sharper than the
saliency map because the clamps stop positive and negative paths cancelling.
Where every ReLU is open and every upstream gradient at a ReLU is already
non-negative, it equals the plain gradient (the test checks both directions).
Shapes: ``(N, C, S, S)`` in, the same out. Cost: one forward and one backward.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..layers import Dropout, Layer, ReLU
from ..vgg import VGG
from .gradients import one_hot_seed


def forward_keeping(layers: Sequence[Layer], x: np.ndarray) -> np.ndarray:
    """Run ``layers`` keeping each one's cache (dropout as the identity, as at test time)."""
    for lay in layers:
        x = lay.forward(x, train=not isinstance(lay, Dropout))
    return x


def backward_through(layers: Sequence[Layer], dout: np.ndarray, guided: bool = False) -> np.ndarray:
    """Backpropagate ``dout`` through ``layers`` (after :func:`forward_keeping`), last layer first.

    ``guided=True`` clamps the upstream gradient at every ReLU to ``max(dout, 0)``
    before the ReLU's own backward (the guided rule above).
    """
    for lay in reversed(layers):
        if isinstance(lay, Dropout):
            continue
        if guided and isinstance(lay, ReLU):
            dout = np.maximum(dout, 0)  # dtype kept: 0 is a Python int
        dout = lay.backward(dout)
    return dout


def guided_backprop(model: VGG, x: np.ndarray, target: int | Sequence[int], layer: str | None = None) -> np.ndarray:
    """Guided-backprop image ``(N, C, S, S)`` for one unit, with the targets of :func:`input_gradient`.

    ``target`` is a class index (``layer=None``: the logit ``S_c``) or an index into one
    image's output of ``layer`` (``(channel, row, col)`` for a conv/pool layer).
    """
    name, dout = one_hot_seed(model, x, target, layer, "guided_backprop")
    chain = list(model.layers)[:model.layers.names().index(name) + 1]
    try:
        forward_keeping(chain, x)
        return backward_through(chain, dout, guided=True)
    finally:
        model.layers.clear_caches()
