"""Measuring a built VGG: the receptive field of a unit by backprop, and memory by :mod:`tracemalloc`.

The numbers :mod:`minivgg.analysis.verify` holds against the analytic ones.

How the receptive field is made visible
---------------------------------------
A gradient can vanish for reasons that have nothing to do with geometry: a
dead ReLU, weights that cancel, a max-pool that routes each gradient to one
arg-max only. The measurement therefore runs shallow copies of the model's own
layer objects (their forward/backward code, kernel, stride and padding; the
model itself is never touched) with synthetic weights: every conv/dense
weight positive, biases +0.1 and a positive random input, so every ReLU is
active and no sum cancels. A max-pool still passes the gradient of one window
to one position per channel, so:

* each conv filter has one strong tap (0.9, at a random channel and kernel
  position) over a weak positive floor, which makes its channels differently
  shifted copies of the input that disagree about each window's arg-max
  (uniform positive weights give near-identical channels);
* the one-hot goes into the centre unit of *every* channel (all have the same
  field) of every image of a small random batch (``rf_batch``, default 8), and
  the field is the union; with continuous random inputs pool ties have
  probability 0.

Channel counts are capped (``rf_channels``, default 8; the field depends on
kernel, stride and padding only) and the copies run in float32
(:data:`RF_DTYPE`), so the check stays cheap at 224x224. Dropout runs with
``p = 0`` (the field is an inference property; there dropout is the identity).
"""

from __future__ import annotations

import copy
import gc
import tracemalloc
from typing import Callable

import numpy as np

from ..layers import Dropout, Sequential

#: dtype of the receptive-field measurement, whatever the model's: the smallest
#: gradient reaching a field's edge is a product of about one weight-floor
#: factor (~0.1) per layer, far above float32's 1e-38 for any VGG depth.
RF_DTYPE = np.float32


# ---------------------------------------------------------------------------
# receptive field by backprop
# ---------------------------------------------------------------------------

def _positive_params(layer, x_shape: tuple, cap: int, rng: np.random.Generator) -> dict:
    """Positive synthetic ``w``/``b`` (:data:`RF_DTYPE`) for a copy of ``layer`` fed ``x_shape``; channels capped.

    Conv filters get one strong tap (weight 0.9, at a random input channel and
    kernel position) over a weak positive floor (0.1 spread over the fan-in):
    every weight is > 0, so no gradient cancels and every pixel of the field is
    reachable, while the strong tap makes each channel a differently shifted
    copy of its input, so different channels disagree about a pool window's
    arg-max (with uniform positive weights all channels are near-identical
    local means and route the gradient to the same position).
    """
    w = layer.params["w"]
    if w.ndim == 4:                                    # conv (F, C, KH, KW)
        f, fan_in = min(w.shape[0], cap), x_shape[1] * w.shape[2] * w.shape[3]
        flat = np.full((f, fan_in), 0.1 / fan_in)
        flat[np.arange(f), rng.integers(0, fan_in, size=f)] += 0.9
        return {"w": flat.reshape(f, x_shape[1], w.shape[2], w.shape[3]).astype(RF_DTYPE),
                "b": np.full(f, 0.1, dtype=RF_DTYPE)}
    d_in, d_out = int(np.prod(x_shape[1:])), min(w.shape[1], cap)      # dense (D_in, D_out)
    return {"w": (rng.uniform(0.5, 1.5, size=(d_in, d_out)) / d_in).astype(RF_DTYPE),
            "b": np.full(d_out, 0.1, dtype=RF_DTYPE)}


def _synthetic_copies(model, upto: int, cap: int, batch: int, rng: np.random.Generator):
    """Shallow copies of the model's layers ``0..upto`` with positive weights, run in train mode.

    Returns ``(copies, shapes)``: each copy holds the cache of one training
    forward; ``shapes[i]`` is the output shape of copy ``i``.
    """
    h = rng.uniform(0.5, 1.5, size=(batch, model.in_channels, model.input_size, model.input_size)).astype(RF_DTYPE)
    copies, shapes = [], []
    for layer in list(model.layers)[:upto + 1]:
        c = copy.copy(layer)          # own __dict__: new params/grads/cache never reach the model
        c.grads = {}
        if layer.params:
            c.params = _positive_params(layer, h.shape, cap, rng)
        if isinstance(layer, Dropout):
            c.p = 0.0                 # identity: the field is an inference property
        h = c.forward(h, train=True)
        copies.append(c)
        shapes.append(h.shape)
    return copies, shapes


def _field_from_copies(copies, out_shape: tuple) -> tuple[tuple[int, int], tuple[int, int]]:
    """Backprop one-hots at the centre position (all channels, every image); bounding box of non-zero dx."""
    # copies of the copies: backward consumes their caches, the originals keep theirs
    # for the next layer's measurement (one forward serves every layer)
    seq = Sequential([copy.copy(c) for c in copies])
    dout = np.zeros(out_shape, dtype=RF_DTYPE)
    # every channel's unit at the centre position has the same field; seeding all
    # of them (in every image) gives the pool arg-max B*C chances to reach each corner
    if len(out_shape) == 4:
        dout[:, :, (out_shape[2] - 1) // 2, (out_shape[3] - 1) // 2] = 1   # as analysis.centre_unit
    else:
        dout[:, :] = 1                                                   # dense: every unit sees everything
    dx = seq.backward(dout)
    seen = np.any(dx != 0, axis=(0, 1))                                  # (H, W): any image, any channel
    rows, cols = np.nonzero(seen.any(axis=1))[0], np.nonzero(seen.any(axis=0))[0]
    if rows.size == 0:
        return (-1, -1), (-1, -1)
    return (int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1]))


def _rf_targets(model, layers) -> list[str]:
    if layers is None or layers == "all":
        return [s.name for s in model.specs if s.kind in ("conv", "pool", "dense")]
    if layers == "pools":
        # where the field jumps and the arg-max routing is hardest; fc6 sees the whole image
        return [s.name for s in model.specs if s.kind == "pool"] + [s.name for s in model.specs
                                                                     if s.kind == "dense"][:1]
    if isinstance(layers, str):
        layers = [layers]
    names = model.layers.names()
    for name in layers:
        if name not in names:
            raise ValueError(f"verify: no layer named {name!r} in {model.arch}; layers are {names}")
    return list(layers)


def measure_receptive_fields(model, layers=None, *, rf_channels: int = 8, rf_batch: int = 8,
                             seed: int = 0, progress: Callable[[int, int], None] | None = None) -> dict:
    """Measured field of the centre unit of each layer: ``{name: ((row_lo, row_hi), (col_lo, col_hi))}``.

    Parameters
    ----------
    model : minivgg.vgg.VGG
        Only its layers' kernel/stride/padding matter; its weights are not used
        or modified (see the module docstring).
    layers : list of str, str, None, "all" or "pools"
        Layers to measure; None/"all" = every conv, pool and dense layer,
        "pools" = every max-pool and fc6 (cheaper: the cost grows with depth).
    rf_channels : int
        Channel cap of the synthetic weights (>= 8 keeps the pool arg-max diverse).
    rf_batch : int
        Random images whose fields are united (max-pool routes to one arg-max each).
    progress : callable, optional
        ``progress(done, total)`` after each layer is measured.

    Cost: one training forward to the deepest layer, then one backward per layer
    measured, at ``rf_channels`` channels and batch ``rf_batch``.
    """
    targets = _rf_targets(model, layers)
    for label, v in (("rf_channels", rf_channels), ("rf_batch", rf_batch)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"verify: {label} must be an int >= 1, got {v!r}")
    names = model.layers.names()
    deepest = max(names.index(t) for t in targets)
    copies, shapes = _synthetic_copies(model, deepest, rf_channels, rf_batch, np.random.default_rng(seed))
    out = {}
    for done, name in enumerate(targets, 1):
        i = names.index(name)
        out[name] = _field_from_copies(copies[:i + 1], shapes[i])
        if progress is not None:
            progress(done, len(targets))
    return out


def measure_receptive_field(model, layer_name: str, **kwargs) -> tuple[int, int]:
    """``(height, width)`` of the input region that moves the centre unit of ``layer_name``.

    Measured by backprop through the model's own layers (see the module
    docstring); clipped to the image, like :func:`minivgg.analysis.receptive_field.field_bounds`.
    """
    (r0, r1), (c0, c1) = measure_receptive_fields(model, [layer_name], **kwargs)[layer_name]
    if r0 < 0:                        # no gradient reached the input at all
        return 0, 0
    return r1 - r0 + 1, c1 - c0 + 1


# ---------------------------------------------------------------------------
# memory
# ---------------------------------------------------------------------------

def measure_memory(model, batch: int = 1, *, seed: int = 0) -> dict:
    """Bytes a training forward keeps, and the peak of an inference forward, by :mod:`tracemalloc`.

    Returns ``{"kept_bytes", "inference_peak_bytes"}``, both measured above a
    baseline that already holds the model and the input batch (so the input is
    excluded). A first, unmeasured inference forward at the same batch loads the
    Numba kernels and starts the thread pool, which allocate once and for good.
    The model's training caches are cleared before and after.
    """
    x = np.random.default_rng(seed).standard_normal(
        (batch, model.in_channels, model.input_size, model.input_size)).astype(model.dtype)
    model.layers.clear_caches()
    # warm-up at the measured batch: "auto" picks the conv algorithm by batch size,
    # and a kernel's first call (JIT cache load, thread pool) allocates for good
    model.forward(x, train=False)
    gc.collect()
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = model.forward(x, train=False)
        peak = tracemalloc.get_traced_memory()[1] - base
        del out
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        out = model.forward(x, train=True)
        del out                                      # the logits are returned, not kept
        kept = tracemalloc.get_traced_memory()[0] - base
    finally:
        if started:
            tracemalloc.stop()
        model.layers.clear_caches()
    return {"kept_bytes": kept, "inference_peak_bytes": peak}
