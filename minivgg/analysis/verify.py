"""Prove the analytic figures of :mod:`minivgg.analysis.counts` on a real :class:`~minivgg.vgg.VGG`.

Four checks, each against the built model, never against the formulas twice:

* **parameters** -- for every layer, the sizes of the model's ``w`` and ``b``
  arrays equal the analytic ``weights`` and ``biases`` (and the layer names and
  their order are the same);
* **shapes** -- a real inference forward, run layer by layer, produces the
  analytic ``output_shape`` and ``activations`` at every layer;
* **memory** -- :mod:`tracemalloc` (which sees every NumPy allocation) measures
  the bytes a training-mode forward leaves alive (current traced memory minus
  the baseline taken with the model and the input already allocated, logits
  dropped) and compares them with ``totals.backward_bytes`` (tolerance 5%, or
  0.5 KiB of Python objects per layer on toy configs); it
  also measures the peak of an inference forward against the largest analytic
  ``working_bytes``;
* **receptive fields** -- one-hot gradients sent into the centre unit of layer
  ``L`` and backpropagated through the model's own layers mark the input
  pixels that unit sees; the bounding box of the non-zero input gradient must
  equal the analytic field clipped to the image (so "it fits" and "it covers
  the whole image" are both checked), e.g. 212 at VGG-16's pool5 and 7x7 for a
  stack of three 3x3 convs.

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
from dataclasses import dataclass, field

import numpy as np

from .counts import MIB, Summary, summarize_specs
from .receptive_field import field_bounds
from ..layers import Dropout, Sequential

MEMORY_RTOL = 0.05  #: relative tolerance of the memory checks
#: Absolute slack per layer of the kept-memory check: tracemalloc also sees the
#: Python objects of a forward (ndarray headers, cache NamedTuples, shape
#: tuples: 0.1-0.5 KiB per layer), which only matter on toy configs.
KEPT_ATOL_BYTES_PER_LAYER = 512
#: Absolute slack of the inference-peak check: NumPy's matmul/ufunc machinery
#: allocates small iteration buffers (~32 KiB) that the model does not count;
#: negligible at 224x224, visible on toy configs.
PEAK_ATOL_BYTES = 64 * 1024
#: dtype of the receptive-field measurement, whatever the model's: the smallest
#: gradient reaching a field's edge is a product of about one weight-floor
#: factor (~0.1) per layer, far above float32's 1e-38 for any VGG depth.
RF_DTYPE = np.float32


@dataclass
class Check:
    """One comparison of an analytic figure with a measured one."""

    kind: str          # "params" | "shape" | "memory" | "peak" | "receptive_field" | "config"
    layer: str
    expected: object
    measured: object
    ok: bool
    note: str = ""

    def __str__(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        return f"[{mark}] {self.kind:<15} {self.layer:<9} expected {self.expected}, measured {self.measured}" + (
            f"  ({self.note})" if self.note else "")


@dataclass
class VerifyReport:
    """All checks of :func:`verify`; ``ok`` when every one passed. ``str(report)`` is the readable proof."""

    arch: str
    input_size: int
    batch: int
    dtype: str
    checks: list = field(default_factory=list)
    memory_measured: int | None = None
    memory_analytic: int | None = None
    peak_measured: int | None = None
    peak_analytic: int | None = None
    rf_rows: list = field(default_factory=list)   # (layer, analytic (lo, hi), measured rows, measured cols, r)

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(c.ok for c in self.checks)

    def failures(self) -> list:
        """The checks that failed."""
        return [c for c in self.checks if not c.ok]

    def by_kind(self, kind: str) -> list:
        """Checks of one kind (``"params"``, ``"shape"``, ...)."""
        return [c for c in self.checks if c.kind == kind]

    def __str__(self) -> str:
        n_ok = sum(c.ok for c in self.checks)
        lines = [f"Analytic model vs real {self.arch} (input {self.input_size}x{self.input_size}, batch {self.batch}, "
                 f"{self.dtype}): {'PASS' if self.ok else 'FAIL'} ({n_ok}/{len(self.checks)} checks)"]
        for kind, title in (("params", "parameter arrays per layer"),
                            ("shape", "output shape and activations per layer")):
            cs = self.by_kind(kind)
            if cs:
                bad = [c for c in cs if not c.ok]
                lines.append(f"  {title}: {len(cs) - len(bad)}/{len(cs)} layers match")
        params = self.by_kind("params")
        if params:
            total_a = sum(c.expected for c in params if isinstance(c.expected, int))
            total_m = sum(c.measured for c in params if isinstance(c.measured, int))
            lines.append(f"    total parameters: analytic {total_a:,}, in the model's arrays {total_m:,}")
        if self.memory_measured is not None:
            rel = self.memory_measured / self.memory_analytic - 1 if self.memory_analytic else float("nan")
            lines.append(f"  kept by a training forward (tracemalloc, input excluded): measured "
                         f"{self.memory_measured:,} B ({self.memory_measured / MIB:.2f} MiB), analytic "
                         f"{self.memory_analytic:,} B ({self.memory_analytic / MIB:.2f} MiB), {100 * rel:+.2f}%")
        if self.peak_measured is not None:
            rel = self.peak_measured / self.peak_analytic - 1 if self.peak_analytic else float("nan")
            lines.append(f"  inference peak above params+input: measured {self.peak_measured:,} B "
                         f"({self.peak_measured / MIB:.2f} MiB), analytic {self.peak_analytic:,} B "
                         f"({self.peak_analytic / MIB:.2f} MiB), {100 * rel:+.2f}%")
        if self.rf_rows:
            lines.append("  receptive fields by backprop (centre unit; rows/cols with non-zero input gradient):")
            lines.append(f"    {'layer':<9} {'r':>4} {'analytic (clipped)':>19} {'measured rows':>14} "
                         f"{'measured cols':>14}")
            for name, (lo, hi), rows, cols, r in self.rf_rows:
                lines.append(f"    {name:<9} {r:>4} {f'{lo}..{hi} ({hi - lo + 1})':>19} "
                             f"{f'{rows[0]}..{rows[1]}':>14} {f'{cols[0]}..{cols[1]}':>14}")
        for c in self.failures():
            lines.append("  " + str(c))
        return "\n".join(lines)


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
                             seed: int = 0) -> dict:
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
    for name in targets:
        i = names.index(name)
        out[name] = _field_from_copies(copies[:i + 1], shapes[i])
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


# ---------------------------------------------------------------------------
# the whole proof
# ---------------------------------------------------------------------------

def verify(model, *, batch: int = 1, summary: Summary | None = None, memory: bool = True,
           receptive_field: bool = True, rf_layers=None, rf_channels: int = 8, rf_batch: int = 8,
           seed: int = 0) -> VerifyReport:
    """Check the analytic model against ``model``: parameters, shapes, memory, receptive fields.

    Parameters
    ----------
    model : minivgg.vgg.VGG
    batch : int
        Batch of the shape and memory checks.
    summary : Summary, optional
        The analytic figures to check; default ``summarize_specs(model.specs, ...)``
        at ``batch`` and the model's dtype. Pass another one to see it fail.
    memory, receptive_field : bool
        Run the (slower) tracemalloc and backprop checks.
    rf_layers, rf_channels, rf_batch
        See :func:`measure_receptive_fields`.

    Returns
    -------
    VerifyReport
        ``report.ok``, ``report.failures()``; ``print(report)`` for the proof.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"verify: batch must be an int >= 1, got {batch!r}")
    if summary is None:
        algo = next((layer.algo for layer in model.layers if hasattr(layer, "algo")), "auto")
        summary = summarize_specs(model.specs, arch=model.arch, config=model.config.layers, batch=batch,
                                  dtype=model.dtype, width=model.width, algo=algo)
    report = VerifyReport(model.arch, model.input_size, summary.batch, summary.dtype)
    _check_params(model, summary, report)
    _check_shapes(model, summary, report, seed)
    if memory:
        _check_memory(model, summary, report, seed)
    if receptive_field:
        _check_fields(model, summary, report, rf_layers, rf_channels, rf_batch, seed)
    return report


def _check_params(model, summary: Summary, report: VerifyReport) -> None:
    names = model.layers.names()
    expected_names = [s.name for s in summary.layers]
    if names != expected_names:
        report.checks.append(Check("params", "-", expected_names, names, False, "layer names or order differ"))
    for layer in model.layers:
        try:
            stats = summary[layer.name]
        except KeyError:
            report.checks.append(Check("params", layer.name, "no such layer", "present", False))
            continue
        w, b = layer.params.get("w"), layer.params.get("b")
        measured = (0 if w is None else w.size, 0 if b is None else b.size)
        dtypes = {a.dtype.name for a in layer.params.values()}
        ok = measured == (stats.weights, stats.biases) and dtypes <= {summary.dtype}
        report.checks.append(Check("params", layer.name, stats.params, sum(measured), ok,
                                   "" if ok else f"weights+biases analytic {stats.weights}+{stats.biases}, "
                                   f"model {measured[0]}+{measured[1]}, dtypes {sorted(dtypes)}"))


def _check_shapes(model, summary: Summary, report: VerifyReport, seed: int) -> None:
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((summary.batch, model.in_channels, model.input_size, model.input_size)).astype(model.dtype)
    for layer in model.layers:
        try:
            stats = summary[layer.name]
        except KeyError:
            continue
        try:
            h = layer.forward(h, train=False)
        except (ValueError, TypeError) as exc:
            report.checks.append(Check("shape", layer.name, stats.output_shape, "error", False,
                                       f"forward raised {type(exc).__name__}: {exc}"))
            return
        measured = (tuple(h.shape[1:]), h.size)
        ok = measured == (tuple(stats.output_shape), stats.activations)
        report.checks.append(Check("shape", layer.name, stats.output_shape, measured[0], ok,
                                   "" if ok else f"activations analytic {stats.activations:,}, measured {h.size:,}"))


def _check_memory(model, summary: Summary, report: VerifyReport, seed: int) -> None:
    measured = measure_memory(model, summary.batch, seed=seed)
    kept, expected = measured["kept_bytes"], summary.totals.backward_bytes
    report.memory_measured, report.memory_analytic = kept, expected
    rel = abs(kept - expected) / max(expected, 1)
    slack = max(MEMORY_RTOL * expected, KEPT_ATOL_BYTES_PER_LAYER * len(summary.layers))
    report.checks.append(Check("memory", "total", f"{expected:,} B", f"{kept:,} B", abs(kept - expected) <= slack,
                               f"kept by a training forward, {100 * rel:.2f}% off; tolerance "
                               f"{100 * MEMORY_RTOL:g}% or {KEPT_ATOL_BYTES_PER_LAYER} B per layer"))
    # the image is in the baseline, so compare with the largest working set alone
    peak, expected_peak = measured["inference_peak_bytes"], max(s.working_bytes for s in summary.layers)
    report.peak_measured, report.peak_analytic = peak, expected_peak
    diff = abs(peak - expected_peak)
    ok = diff <= max(MEMORY_RTOL * expected_peak, PEAK_ATOL_BYTES)
    report.checks.append(Check("peak", summary.totals.inference_peak_layer, f"{expected_peak:,} B", f"{peak:,} B",
                               ok, f"inference working set, {100 * diff / max(expected_peak, 1):.2f}% off"))


def _check_fields(model, summary: Summary, report: VerifyReport, rf_layers, rf_channels, rf_batch, seed) -> None:
    measured = measure_receptive_fields(model, rf_layers, rf_channels=rf_channels, rf_batch=rf_batch, seed=seed)
    for name, (rows, cols) in measured.items():
        stats = summary[name]
        _, _, lo, hi = field_bounds(stats, model.input_size)
        ok = rows == (lo, hi) and cols == (lo, hi)
        report.rf_rows.append((name, (lo, hi), rows, cols, stats.receptive_field))
        report.checks.append(Check("receptive_field", name, f"rows/cols {lo}..{hi}",
                                   f"rows {rows[0]}..{rows[1]}, cols {cols[0]}..{cols[1]}", ok,
                                   f"r = {stats.receptive_field}, j = {stats.effective_stride}, "
                                   f"P = {stats.effective_padding}"))
