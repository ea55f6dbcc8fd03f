"""Receptive fields from a config: how much of the image each layer's units see.

The recurrence (Araujo et al., Distill 2019) over every layer ``l`` with kernel
``k``, stride ``s`` and padding ``p``:

.. math::

    r_l = r_{l-1} + (k_l - 1) j_{l-1}, \\quad j_l = j_{l-1} s_l, \\quad P_l = P_{l-1} + p_l j_{l-1}

so three stacked 3x3 convs see 7x7 (the lecture's claim), and VGG-16's pool5
sees 212 pixels with an effective stride of 32. :func:`minivgg.analysis.verify`
measures the same numbers by backpropagation through a real model.
"""

from __future__ import annotations

from typing import Sequence

from ..configs import ConfigItem
from .counts import LayerStats, summarize

def centre_unit(stats: LayerStats) -> int:
    """Index (per axis) of the centre output unit: ``(side - 1) // 2``; 0 for dense layers."""
    side = stats.output_shape[1] if len(stats.output_shape) == 3 else 1
    return (side - 1) // 2


def field_bounds(stats: LayerStats, input_size: int, index: int | None = None) -> tuple[int, int, int, int]:
    """Input rows (or columns) seen by output unit ``index`` (default: the centre unit).

    Returns ``(lo, hi, lo_clipped, hi_clipped)``, inclusive: ``lo = index*j - P``,
    ``hi = lo + r - 1``, then clipped to ``[0, input_size - 1]``. The field fits in
    the image when ``lo == lo_clipped and hi == hi_clipped``.
    """
    u = centre_unit(stats) if index is None else index
    lo = u * stats.effective_stride - stats.effective_padding
    hi = lo + stats.receptive_field - 1
    return lo, hi, max(lo, 0), min(hi, input_size - 1)


def receptive_fields(arch: str | Sequence[ConfigItem] = "vgg16", input_size: int | None = None, *,
                     kinds: Sequence[str] = ("conv", "pool", "dense"), **kwargs) -> list[dict]:
    """Receptive field, effective stride and padding of each layer, with the centre unit's span.

    ``kwargs`` go to :func:`summarize` (``width``, ``in_channels`` ...). Each row:
    ``name, type, output_shape, receptive_field, effective_stride, effective_padding,
    centre, lo, hi`` (centre unit's field, unclipped), ``visible`` (its extent inside
    the image) and ``fits`` (whole field inside the image).
    """
    summary = summarize(arch, input_size=input_size, **kwargs)
    rows = []
    for s in summary.layers:
        if s.type not in kinds:
            continue
        lo, hi, clo, chi = field_bounds(s, summary.input_size)
        rows.append({"name": s.name, "type": s.type, "output_shape": s.output_shape,
                     "receptive_field": s.receptive_field, "effective_stride": s.effective_stride,
                     "effective_padding": s.effective_padding, "centre": centre_unit(s), "lo": lo, "hi": hi,
                     "visible": chi - clo + 1, "fits": (lo, hi) == (clo, chi)})
    return rows
