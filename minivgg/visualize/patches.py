"""Maximally activating patches (Zeiler & Fergus 2014, §4; cs231n "Visualizing what ConvNets learn").

For one unit -- channel ``k`` of a conv-part layer -- run a dataset through the
model and, in each image, find the position where the channel fires most. The
``k`` images whose best position fires most are the unit's top images, each
cropped to the receptive field of the winning position: the input pixels that
position can depend on at all (:func:`minivgg.visualize.receptive.receptive_box`,
composed from the layer specs; near a border the box is clipped to the image, so
those crops are smaller). One patch per image, so one image cannot fill the grid.
Cost: one inference forward of the dataset up to ``layer``, ``batch_size`` images at a time.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..vgg import VGG
from .receptive import receptive_box


class TopPatches(NamedTuple):
    """Result of :func:`top_patches`, best first (all arrays of length ``k``)."""

    index: np.ndarray       # (k,) image indices into the dataset
    row: np.ndarray         # (k,) winning row in the layer's map
    col: np.ndarray         # (k,) winning column
    activation: np.ndarray  # (k,) the unit's value there (the image's maximum over positions)
    boxes: list             # k tuples (r0, r1, c0, c1), inclusive, clipped to the image
    crops: list             # k arrays (C, r1 - r0 + 1, c1 - c0 + 1) cut from the dataset images
    layer: str
    channel: int


def top_patches(model: VGG, x: np.ndarray, layer: str, channel: int, k: int = 9,
                batch_size: int = 64) -> TopPatches:
    """The ``k`` images of ``x`` ``(N, C, S, S)`` where channel ``channel`` of ``layer`` peaks highest.

    Ties keep dataset order (the earlier image, and within an image the first position in
    row-major order, wins).
    """
    spec = next((s for s in model.specs if s.name == layer), None)
    if spec is None:
        raise KeyError(f"no layer named {layer!r}; layers are {model.layers.names()}")
    if len(spec.out_shape) != 3:
        raise ValueError(f"top_patches: {layer} outputs {spec.out_shape}; pick a conv/relu/pool layer (C, H, W)")
    C, H, W = spec.out_shape
    if not 0 <= channel < C:
        raise ValueError(f"top_patches: {layer} has {C} channels, got channel {channel}")
    model.check_input(x)
    if not 1 <= k <= len(x):
        raise ValueError(f"top_patches: need 1 <= k <= {len(x)} (the dataset size), got k={k}")
    if batch_size < 1:
        raise ValueError(f"top_patches: batch_size must be >= 1, got {batch_size}")
    best = np.empty(len(x))
    where = np.empty(len(x), dtype=np.int64)
    for b in range(0, len(x), batch_size):
        a = model.layers.forward(x[b:b + batch_size], until=layer)[:, channel].reshape(-1, H * W)  # (B, H*W)
        where[b:b + len(a)] = a.argmax(axis=1)
        best[b:b + len(a)] = a[np.arange(len(a)), where[b:b + len(a)]]
    order = np.argsort(-best, kind="stable")[:k]
    rows, cols = where[order] // W, where[order] % W
    S = x.shape[-1]
    boxes = [receptive_box(model.specs, layer, int(r), int(c), clip=S) for r, c in zip(rows, cols)]
    crops = [x[i, :, r0:r1 + 1, c0:c1 + 1].copy() for i, (r0, r1, c0, c1) in zip(order, boxes)]
    return TopPatches(order, rows, cols, best[order], boxes, crops, layer, channel)
