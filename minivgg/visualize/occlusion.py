"""Occlusion sensitivity (Zeiler & Fergus 2014, §4.2): slide a grey patch, record the score drop.

``drop[i, j] = S_c(x) - S_c(x with the patch at (i*stride, j*stride) set to fill)``.
Large positive drop: the class needed that region. Shapes: one image ``(1, C, S, S)``
-> map ``(R, R)`` with ``R = (S - patch) // stride + 1``. Cost: ``R^2`` forwards
(batched ``batch_size`` at a time, inference mode).
"""

from __future__ import annotations

import numpy as np

from ..vgg import VGG


def occlusion_map(model: VGG, x: np.ndarray, class_index: int, patch: int = 8, stride: int = 4,
                  fill: float = 0.0, batch_size: int = 32) -> np.ndarray:
    """Score drop ``(R, R)`` for a ``patch`` x ``patch`` square of value ``fill`` (0 = the mean after normalising)."""
    model.check_input(x)
    if x.shape[0] != 1:
        raise ValueError(f"occlusion_map: give one image (1, C, S, S), got {x.shape}")
    S = x.shape[-1]
    if not (1 <= patch <= S) or stride < 1:
        raise ValueError(f"occlusion_map: need 1 <= patch <= {S} and stride >= 1, got patch={patch}, stride={stride}")
    if not 0 <= class_index < model.num_classes:
        raise ValueError(f"occlusion_map: class_index must be in [0, {model.num_classes}), got {class_index}")
    base = float(model.layers.forward(x)[0, class_index])
    R = (S - patch) // stride + 1
    corners = [(i * stride, j * stride) for i in range(R) for j in range(R)]
    drops = np.empty(len(corners))
    for b in range(0, len(corners), batch_size):
        chunk = corners[b:b + batch_size]
        xs = np.repeat(x, len(chunk), axis=0)  # (B, C, S, S)
        for k, (r, c) in enumerate(chunk):
            xs[k, :, r:r + patch, c:c + patch] = fill
        drops[b:b + len(chunk)] = base - model.layers.forward(xs)[:, class_index]
    return drops.reshape(R, R)
