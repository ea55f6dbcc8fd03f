"""Effective receptive fields (Luo, Li, Urtasun & Zemel 2016) beside the theoretical one.

Backpropagate a one-hot gradient from the centre unit of a layer (summed over its
channels, so no single filter decides the picture) and take ``|dy/dx|`` summed over
the input channels: an ``(S, S)`` heatmap. The theoretical field is the box of input
pixels the unit can depend on at all, composed from the layer specs: a conv or pool
of window ``k``, stride ``s`` and padding ``p`` maps output rows ``[a, b]`` to input
rows ``[a*s - p, b*s - p + k - 1]`` (212 px wide at pool5 of VGG-16, before clipping).
The gradient is exactly zero outside that box; inside, max-pool routing and ReLU
zeros can only remove pixels, and the mass concentrates near the centre.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..configs import LayerSpec
from ..vgg import VGG


def receptive_box(specs: list[LayerSpec], layer: str, row: int, col: int,
                  clip: int | None = None) -> tuple[int, int, int, int]:
    """Input rows/cols ``(r0, r1, c0, c1)`` (inclusive) that unit ``(row, col)`` of ``layer`` can see.

    Walks the specs from ``layer`` back to the input; ``clip=S`` clips the box to the image.
    Only the convolutional part has a spatial field (dense layers see everything).
    """
    names = [s.name for s in specs]
    if layer not in names:
        raise KeyError(f"no layer named {layer!r}; layers are {names}")
    r0, r1, c0, c1 = row, row, col, col
    for spec in reversed(specs[:names.index(layer) + 1]):
        if spec.kind in ("conv", "pool"):
            k, s, p = spec.kernel, spec.stride, spec.pad
            r0, r1, c0, c1 = r0 * s - p, r1 * s - p + k - 1, c0 * s - p, c1 * s - p + k - 1
        elif spec.kind in ("dense", "flatten", "dropout") :
            raise ValueError(f"receptive_box: {layer} is past the convolutional part; its field is the whole image")
    if clip is not None:
        r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, clip - 1), min(c1, clip - 1)
    return r0, r1, c0, c1


class EffectiveRF(NamedTuple):
    """Result of :func:`effective_receptive_field`."""

    heatmap: np.ndarray   # (S, S) sum over images and channels of |dy/dx|
    box: tuple            # (r0, r1, c0, c1) theoretical field, clipped to the image
    unclipped: tuple      # the same before clipping (its width is the textbook figure)
    mass_inside: float    # fraction of the heatmap's mass inside the box (1 up to rounding)
    area_for_mass: float  # fraction of the box's pixels that, brightest first, hold `level` of the mass
    level: float


def effective_receptive_field(model: VGG, x: np.ndarray, layer: str, level: float = 0.9) -> EffectiveRF:
    """|d y_centre / d x| for the centre unit of ``layer`` (all its channels), with the theoretical box.

    ``x`` is ``(N, C, S, S)``; the heatmap sums over the N images (Luo et al. average
    over many inputs). Cost: one forward and one backward.
    """
    spec = next((s for s in model.specs if s.name == layer), None)
    if spec is None:
        raise KeyError(f"no layer named {layer!r}; layers are {model.layers.names()}")
    if len(spec.out_shape) != 3:
        raise ValueError(f"effective_receptive_field: {layer} outputs {spec.out_shape}; pick a conv/relu/pool layer")
    if not 0 < level <= 1:
        raise ValueError(f"effective_receptive_field: level must be in (0, 1], got {level}")
    model.check_input(x)
    _, H, W = spec.out_shape
    row, col = H // 2, W // 2
    dout = np.zeros((x.shape[0], *spec.out_shape), model.dtype)
    dout[:, :, row, col] = 1.0
    heat = np.abs(model.input_gradient(x, dout, layer=layer)).sum(axis=(0, 1)).astype(np.float64)
    S = x.shape[-1]
    raw = receptive_box(model.specs, layer, row, col)
    box = receptive_box(model.specs, layer, row, col, clip=S)
    r0, r1, c0, c1 = box
    total = heat.sum()
    inside = heat[r0:r1 + 1, c0:c1 + 1]
    mass_inside = float(inside.sum() / total) if total > 0 else 0.0
    vals = np.sort(inside.ravel())[::-1]
    if total > 0:
        k = int(np.searchsorted(np.cumsum(vals), level * vals.sum() * (1 - 1e-12))) + 1
        area = min(k, vals.size) / vals.size
    else:
        area = 0.0
    return EffectiveRF(heat, box, raw, mass_inside, area, level)
