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

The measurements themselves live in :mod:`minivgg.analysis.measure`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .counts import MIB, Summary, summarize_specs
from .receptive_field import field_bounds
from .measure import measure_memory, measure_receptive_fields

MEMORY_RTOL = 0.05  #: relative tolerance of the memory checks
#: Absolute slack per layer of the kept-memory check: tracemalloc also sees the
#: Python objects of a forward (ndarray headers, cache NamedTuples, shape
#: tuples: 0.1-0.5 KiB per layer), which only matter on toy configs.
KEPT_ATOL_BYTES_PER_LAYER = 512
#: Absolute slack of the inference-peak check: NumPy's matmul/ufunc machinery
#: allocates small iteration buffers (~32 KiB) that the model does not count;
#: negligible at 224x224, visible on toy configs.
PEAK_ATOL_BYTES = 64 * 1024


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
# the whole proof
# ---------------------------------------------------------------------------

def verify(model, *, batch: int = 1, summary: Summary | None = None, memory: bool = True,
           receptive_field: bool = True, rf_layers=None, rf_channels: int = 8, rf_batch: int = 8,
           seed: int = 0, progress: Callable[[int, int], None] | None = None) -> VerifyReport:
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
    rf_layers, rf_channels, rf_batch, progress
        See :func:`~minivgg.analysis.measure.measure_receptive_fields`.

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
        _check_fields(model, summary, report, rf_layers, rf_channels, rf_batch, seed, progress)
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


def _check_fields(model, summary: Summary, report: VerifyReport, rf_layers, rf_channels, rf_batch, seed,
                  progress=None) -> None:
    measured = measure_receptive_fields(model, rf_layers, rf_channels=rf_channels, rf_batch=rf_batch, seed=seed,
                                        progress=progress)
    for name, (rows, cols) in measured.items():
        stats = summary[name]
        _, _, lo, hi = field_bounds(stats, model.input_size)
        ok = rows == (lo, hi) and cols == (lo, hi)
        report.rf_rows.append((name, (lo, hi), rows, cols, stats.receptive_field))
        report.checks.append(Check("receptive_field", name, f"rows/cols {lo}..{hi}",
                                   f"rows {rows[0]}..{rows[1]}, cols {cols[0]}..{cols[1]}", ok,
                                   f"r = {stats.receptive_field}, j = {stats.effective_stride}, "
                                   f"P = {stats.effective_padding}"))
