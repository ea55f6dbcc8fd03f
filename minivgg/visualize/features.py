"""Feature maps of a named layer and first-layer filters as RGB patches (cs231n, visualising CNNs)."""

from __future__ import annotations

import numpy as np

from ..vgg import VGG


def feature_maps(model: VGG, x: np.ndarray, layer: str) -> np.ndarray:
    """Activations ``(N, C_l, H_l, W_l)`` of conv/relu/pool layer ``layer`` (inference mode)."""
    spec = next((s for s in model.specs if s.name == layer), None)
    if spec is None:
        raise KeyError(f"no layer named {layer!r}; layers are {model.layers.names()}")
    if len(spec.out_shape) != 3:
        raise ValueError(f"feature_maps: layer {layer} outputs {spec.out_shape}, not (C, H, W) feature maps")
    return model.features(x, layer=layer)


def first_layer_filters(model: VGG) -> np.ndarray:
    """conv1_1's filters as images ``(F, KH, KW, C)``, each min-max scaled to [0, 1] on its own.

    Per-filter scaling shows each filter's pattern (colour opponency, edges); it
    hides their relative norms, which :attr:`VGG.params` keeps.
    """
    w = np.asarray(model.params["conv1_1.w"], dtype=np.float64)  # (F, C, KH, KW)
    lo = w.min(axis=(1, 2, 3), keepdims=True)
    span = w.max(axis=(1, 2, 3), keepdims=True) - lo
    scaled = (w - lo) / np.where(span > 0, span, 1.0)
    return scaled.transpose(0, 2, 3, 1)  # (F, KH, KW, C)
