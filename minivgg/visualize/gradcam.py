"""Grad-CAM (Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra 2017, §3).

For the feature maps ``A`` ``(K, h, w)`` of a conv-part layer and a class score ``S_c``:

.. math::

    \\alpha_k = \\frac{1}{h w} \\sum_{i,j} \\frac{\\partial S_c}{\\partial A_{k,i,j}}, \\qquad
    L = \\mathrm{ReLU}\\Big(\\sum_k \\alpha_k A_k\\Big) \\quad (h, w)

then ``L`` is upsampled bilinearly to the input ``(S, S)`` (pixel centres aligned, as an
image resize does). ``alpha_k`` is how much raising channel ``k`` everywhere at once
raises the score; the ReLU keeps the regions that argue *for* class ``c``. The
backward runs only from the logits down to the layer (the input gradient is never
formed). Cost: one forward and the backward of the layers above ``layer``.
The default layer is the last ReLU before the last pool (``relu5_3`` in VGG-16),
as in the paper; at 32x32 input that map is 2x2, so pick an earlier layer for detail.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..vgg import VGG
from .guided import backward_through, forward_keeping


class GradCAM(NamedTuple):
    """Result of :func:`grad_cam`."""

    heatmap: np.ndarray   # (N, S, S) the map upsampled to the input
    cam: np.ndarray       # (N, h, w) ReLU(sum_k alpha_k A_k) at the layer's resolution
    weights: np.ndarray   # (N, K) alpha: spatial mean of dS_c/dA
    layer: str


def default_layer(model: VGG) -> str:
    """The last ReLU of the convolutional part (before the last pool): ``relu5_3`` for VGG-16."""
    relus = [s.name for s in model.specs if s.kind == "relu" and len(s.out_shape) == 3]
    if not relus:
        raise ValueError(f"{model!r} has no ReLU in its convolutional part for Grad-CAM")
    return relus[-1]


def bilinear_matrix(n_out: int, n_in: int) -> np.ndarray:
    """``(n_out, n_in)`` matrix ``M`` with ``M @ v`` the 1-D bilinear resize of ``v`` (half-pixel centres).

    Output pixel ``i`` samples input coordinate ``u = (i + 0.5) n_in / n_out - 0.5``,
    clamped to ``[0, n_in - 1]``, between its two neighbours. Each row sums to 1.
    A 2-D map resizes as ``M_r @ L @ M_c.T``.
    """
    u = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(u).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = u - lo
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), lo] += 1 - frac
    m[np.arange(n_out), hi] += frac
    return m


def grad_cam(model: VGG, x: np.ndarray, class_index: int, layer: str | None = None) -> GradCAM:
    """Grad-CAM of class ``class_index`` at ``layer`` for images ``x`` ``(N, C, S, S)``."""
    layer = layer or default_layer(model)
    names = model.layers.names()
    spec = next((s for s in model.specs if s.name == layer), None)
    if spec is None:
        raise KeyError(f"no layer named {layer!r}; layers are {names}")
    if len(spec.out_shape) != 3:
        raise ValueError(f"grad_cam: {layer} outputs {spec.out_shape}; pick a conv/relu/pool layer (C, H, W)")
    if not 0 <= class_index < model.num_classes:
        raise ValueError(f"grad_cam: class_index must be in [0, {model.num_classes}), got {class_index}")
    model.check_input(x)
    cut = names.index(layer) + 1
    above = list(model.layers)[cut:]
    a = model.layers.forward(x, until=layer)          # (N, K, h, w), inference mode, no caches
    try:
        logits = forward_keeping(above, a)            # (N, num_classes)
        d = np.zeros_like(logits)
        d[:, class_index] = 1.0
        grad_a = backward_through(above, d)           # (N, K, h, w) dS_c/dA
    finally:
        model.layers.clear_caches()
    weights = grad_a.astype(np.float64).mean(axis=(2, 3))                    # (N, K)
    cam = np.maximum(np.einsum("nk,nkij->nij", weights, a.astype(np.float64)), 0)  # (N, h, w)
    S = x.shape[-1]
    mr, mc = bilinear_matrix(S, cam.shape[1]), bilinear_matrix(S, cam.shape[2])
    heat = np.einsum("ri,nij,cj->nrc", mr, cam, mc)                          # (N, S, S)
    return GradCAM(heat, cam, weights, layer)
