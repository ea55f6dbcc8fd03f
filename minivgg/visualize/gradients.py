"""Input gradients: d(score)/d(image) for a class score or one unit of a named layer.

The seed gradient is one-hot: for a class ``c`` it is ``e_c`` on the logits, so
``dx[n] = dS_c(x[n]) / dx[n]`` (the raw score, not the softmax probability, as in
Simonyan 2013 §3: the probability's gradient also pushes the other classes down).
Images of a batch do not interact (no batch statistics in VGG), so one backward
gives every image's gradient. Cost: one forward and one backward of the model.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..vgg import VGG


def _unit_index(target, shape: tuple, where: str) -> tuple:
    """``target`` as an index tuple into one image's output ``shape``, validated."""
    idx = (target,) if np.isscalar(target) else tuple(target)
    if len(idx) != len(shape) or not all(isinstance(i, (int, np.integer)) for i in idx):
        raise ValueError(f"{where}: target must be {len(shape)} integer(s) indexing an output of shape {shape}, "
                         f"got {target!r}")
    if not all(0 <= i < s for i, s in zip(idx, shape)):
        raise ValueError(f"{where}: target {idx} is outside the output shape {shape}")
    return tuple(int(i) for i in idx)


def input_gradient(model: VGG, x: np.ndarray, target: int | Sequence[int], layer: str | None = None) -> np.ndarray:
    """Gradient of one output unit with respect to the input images.

    Parameters
    ----------
    model : VGG
        Run in inference mode (dropout is the identity).
    x : (N, C, S, S) array of the model's dtype
    target : int or tuple of int
        With ``layer=None``: the class index ``c`` (the unit is the logit ``S_c``).
        With ``layer``: an index into one image's output of that layer, e.g.
        ``(channel, row, col)`` for a conv/pool layer or ``(d,)`` for a dense one.
    layer : str, optional
        A layer name (``conv3_1``, ``pool5``, ``fc7``...); default the logits.

    Returns
    -------
    dx : (N, C, S, S) array
        ``dx[n] = d y[n][target] / d x[n]``.
    """
    _, dout = one_hot_seed(model, x, target, layer, "input_gradient")
    return model.input_gradient(x, dout, layer=layer)


def one_hot_seed(model: VGG, x: np.ndarray, target, layer: str | None, where: str) -> tuple[str, np.ndarray]:
    """``(layer name, dout)``: the upstream gradient that picks one unit of ``layer`` (default the logits).

    ``dout`` has the layer's output shape for the batch of ``x`` and is 1 at ``target`` in every image, 0
    elsewhere. Checks the layer name (KeyError listing the layers), the target and ``x``; ``where`` names the caller.
    """
    name = layer or model.layers.names()[-1]
    spec = next((s for s in model.specs if s.name == name), None)
    if spec is None:
        raise KeyError(f"no layer named {name!r}; layers are {model.layers.names()}")
    idx = _unit_index(target, tuple(spec.out_shape), f"{where}({name})")
    model.check_input(x)
    dout = np.zeros((x.shape[0], *spec.out_shape), dtype=model.dtype)
    dout[(slice(None), *idx)] = 1.0
    return name, dout


def scores(model: VGG, x: np.ndarray, target: int | Sequence[int], layer: str | None = None) -> np.ndarray:
    """The unit :func:`input_gradient` differentiates, ``(N,)``, from an inference-mode forward."""
    name = layer or model.layers.names()[-1]
    y = model.layers.forward(model.check_input(x), until=name)
    idx = _unit_index(target, y.shape[1:], f"scores({name})")
    return y[(slice(None), *idx)]
