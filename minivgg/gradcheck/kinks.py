"""Kinks: the coordinates where a centered difference legitimately disagrees with a correct backward.

ReLU at 0 and max-pool ties (see "Kinks" in :mod:`minivgg.gradcheck`). Kink finders feed the hints of
:func:`~minivgg.gradcheck.check_op`; :func:`activation_kinks` those of :func:`~minivgg.gradcheck.check_params`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np


# ---------------------------------------------------------------------------
# Kinks: where a centered difference legitimately disagrees
# ---------------------------------------------------------------------------


class Kinks(NamedTuple):
    """What a kink finder returns: per input name, the coordinates at a kink.

    ``masks[name]`` is a boolean array of that input's shape, True where
    perturbing the coordinate by ``+-h`` can cross a kink; ``what`` names the
    kind for the report ("ReLU kink (|x| < h)").
    """

    what: str
    masks: dict[str, np.ndarray]


#: ``finder(inputs, h, cache) -> Kinks | None``: ``inputs`` the op's unperturbed
#: inputs by name, ``h`` the step, ``cache`` what the op's forward returned beside ``out``.
KinkFinder = Callable[[Mapping[str, np.ndarray], float, Any], "Kinks | None"]


def relu_kinks(x: np.ndarray, h: float) -> np.ndarray:
    """Boolean mask of ``x``'s entries within ``h`` of ReLU's kink at 0 (``|x| < h``); shape of ``x``."""
    return np.abs(np.asarray(x)) < h


def maxpool_ties(x: np.ndarray, h: float, size: int = 2, stride: int = 2, *, live_only: bool = False) -> np.ndarray:
    """Boolean mask of max-pool inputs at a tie: within ``2h`` of their window's maximum, when another entry is too.

    For ``x`` (N, C, H, W) and ``size x size`` windows every ``stride``
    pixels: a window is *tied* when its top two entries differ by less than
    ``2h`` (the width of a centered difference, so perturbing either can change
    which one wins); every entry of a tied window within ``2h`` of its maximum
    is marked. Windows overlap when ``stride < size``; marks accumulate.
    ``live_only`` skips windows whose maximum is exactly 0: behind a ReLU those
    are dead units, which pass no gradient whichever entry wins (the ReLU's own
    kink check covers them). Cost: ``N*C*H_out*W_out*size^2`` comparisons plus
    one sort per window.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"maxpool_ties: x must be (N, C, H, W), got shape {x.shape}")
    n, c, height, width = x.shape
    ho, wo = (height - size) // stride + 1, (width - size) // stride + 1
    mask = np.zeros(x.shape, dtype=bool)
    if ho < 1 or wo < 1:
        return mask
    # every window's entries, (N, C, H_out, W_out, size*size), by strided slices of x
    win = np.stack([x[:, :, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
                    for i in range(size) for j in range(size)], axis=-1)
    if win.shape[-1] < 2:
        return mask
    top = np.sort(win, axis=-1)
    best = top[..., -1]
    tied = (best - top[..., -2]) < 2 * h  # (N, C, H_out, W_out)
    if live_only:
        tied &= best != 0
    for k in range(size * size):
        i, j = divmod(k, size)
        near = tied & (best - win[..., k] < 2 * h)
        mask[:, :, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride] |= near
    return mask


def relu_kink_finder(input: str | None = None) -> KinkFinder:
    """A kink finder for a ReLU-like op: :func:`relu_kinks` of ``input`` (default: the op's first input)."""

    def find(inputs: Mapping[str, np.ndarray], h: float, cache: Any) -> Kinks:
        key = input if input is not None else next(iter(inputs))
        return Kinks("ReLU kink (|x| < h)", {key: relu_kinks(inputs[key], h)})

    return find


def maxpool_tie_finder(size: int | None = None, stride: int | None = None, input: str | None = None) -> KinkFinder:
    """A kink finder for max-pooling: :func:`maxpool_ties` of ``input`` (default: the first input).

    ``size``/``stride`` default to the cache's ``size``/``stride`` attributes
    (minivgg's ``MaxPoolCache`` has them), else 2 and 2 (VGG's pooling).
    """

    def find(inputs: Mapping[str, np.ndarray], h: float, cache: Any) -> Kinks | None:
        key = input if input is not None else next(iter(inputs))
        x = inputs[key]
        if np.ndim(x) != 4:
            return None
        sz = size if size is not None else int(getattr(cache, "size", 2))
        st = stride if stride is not None else int(getattr(cache, "stride", 2))
        return Kinks(f"max-pool tie (two window entries within 2h = {2 * h:.0e})", {key: maxpool_ties(x, h, sz, st)})

    return find


def _auto_kinks(label: str) -> KinkFinder | None:
    """The built-in finder an op's name suggests (``relu``, ``maxpool``/``max_pool``), else None."""
    lower = label.lower()
    if "relu" in lower:
        return relu_kink_finder()
    if "maxpool" in lower or "max_pool" in lower:
        return maxpool_tie_finder()
    return None


def activation_kinks(layers: Iterable[Any], x: np.ndarray, h: float, *, margin: float | None = None) -> str | None:
    """For a whole-model check: which ReLU and max-pool layers see inputs at a kink, as one sentence.

    Runs ``x`` through ``layers`` (objects with ``.name`` and
    ``.forward(x)``, in order, such as ``model.layers``) and inspects the input
    of every layer whose class is named ``ReLU`` or contains ``MaxPool`` (with
    ``size``/``stride`` attributes): ReLU inputs closer than ``margin`` to 0,
    pool windows whose top two entries are closer than ``2 * margin``.
    ``margin`` defaults to ``h``; a parameter perturbation of ``h`` moves an
    activation by about ``h`` times the activation feeding it, so a larger
    margin can be the honest one for big activations. Returns None when no
    layer is near a kink. Use as ``check_params(..., kinks=lambda h:
    activation_kinks(model.layers, x, h))``. Cost: one forward pass.
    """
    margin = h if margin is None else margin
    found = []
    for layer in layers:
        kind = type(layer).__name__
        if kind == "ReLU":
            mask = relu_kinks(x, margin)
        elif "MaxPool" in kind:
            # behind a ReLU (no negative inputs) an all-zero window is a dead unit, not a tie that matters
            mask = maxpool_ties(x, margin, int(getattr(layer, "size", 2)), int(getattr(layer, "stride", 2)),
                                live_only=bool(x.min() >= 0))
        else:
            mask = None
        if mask is not None and mask.any():
            first = tuple(int(i) for i in np.argwhere(mask)[0])
            found.append(f"{getattr(layer, 'name', kind)} ({int(mask.sum())} inputs, first at {first})")
        x = layer.forward(x)
    if not found:
        return None
    return ("activations sit at a ReLU kink or max-pool tie (within h) in " + ", ".join(found)
            + "; a correct backward can fail there -- choose an input away from kinks to decide (this check still FAILS)")
