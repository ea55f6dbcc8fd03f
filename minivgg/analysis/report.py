"""Text, CSV and table views of a :class:`~minivgg.analysis.counts.Summary`: what ``minivgg summary`` prints.

Sizes are given in bytes and in both MiB (2**20) and MB (10**6), never mixed:
the lecture's "~93MB" is the mix (see :mod:`minivgg.analysis.lecture`).
"""

from __future__ import annotations

import csv
import io
from typing import Sequence

from ..configs import ARCHS
from .counts import MB, MIB, Summary

def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


def format_bytes(nbytes: int) -> str:
    """``"61,915,648 B = 59.05 MiB = 61.92 MB"`` -- both units, never mixed."""
    return f"{nbytes:,} B = {nbytes / MIB:,.2f} MiB = {nbytes / MB:,.2f} MB"


def format_table(summary: Summary) -> str:
    """The per-layer table (torchinfo-like columns plus memory and receptive field) and the totals."""
    head = (f"{'Layer':<9} {'Type':<7} {'Output shape':>13} {'Params':>12} {'Activations':>12} "
            f"{'Act MiB':>8} {'Kept MiB':>8} {'MACs':>15} {'RF':>4} {'j':>3} {'P':>3}")
    rule = "-" * len(head)
    lines = [f"{summary.arch} ({'custom' if summary.arch == 'custom' else _config_letter(summary.arch)}), "
             f"input {summary.in_channels}x{summary.input_size}x{summary.input_size}, batch {summary.batch}, "
             f"{summary.dtype}" + (f", width x{summary.width:g}" if summary.width != 1.0 else ""), rule, head, rule]
    for s in summary.layers:
        lines.append(f"{s.name:<9} {s.type:<7} {_shape(s.output_shape):>13} {s.params:>12,} {s.activations:>12,} "
                     f"{s.activation_bytes / MIB:>8.2f} {s.kept_bytes / MIB:>8.2f} {s.macs:>15,} "
                     f"{s.receptive_field:>4} {s.effective_stride:>3} {s.effective_padding:>3}")
    t = summary.totals
    lines += [rule,
              f"Parameters        {t.params:,} ({t.weights:,} weights + {t.biases:,} biases)",
              f"Parameter memory  {format_bytes(t.param_bytes)}",
              f"MACs              {t.macs:,}  (FLOPs = 2 x MACs = {t.flops:,})",
              f"Not in FLOPs      bias adds {t.bias_adds:,}, ReLU compares {t.relu_compares:,}, "
              f"pool compares {t.pool_compares:,}",
              f"Input batch       {format_bytes(t.input_bytes)}",
              "Forward activations (every layer output its own array; flatten a view)",
              f"                  {t.activations:,} values = {format_bytes(t.forward_bytes)}",
              "Kept for backward (this implementation, input excluded)",
              f"                  {format_bytes(t.backward_bytes)}",
              f"                  of which uint8 arg-max / bool masks: {t.kept_index_bytes:,} B",
              f"Inference peak    {format_bytes(t.inference_peak_bytes)}",
              f"                  (params + input + working set of {t.inference_peak_layer})",
              "Act = activations of the whole batch; Kept = bytes a train-mode forward keeps, by allocating layer; "
              "RF/j/P = receptive field, effective stride, effective padding in input pixels."]
    return "\n".join(lines)


_CSV_FIELDS = ("name", "type", "output_shape", "weights", "biases", "params", "activations", "activation_bytes",
               "macs", "flops", "receptive_field", "effective_stride", "effective_padding", "bias_adds",
               "relu_compares", "pool_compares", "kept_bytes", "workspace_bytes", "working_bytes")


def to_csv(summary: Summary) -> str:
    """One CSV row per layer (header first); ``output_shape`` written as ``64x224x224``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(_CSV_FIELDS)
    for s in summary.layers:
        d = s.to_dict()
        d["output_shape"] = _shape(s.output_shape)
        writer.writerow([d[k] for k in _CSV_FIELDS])
    return buf.getvalue()


def _config_letter(label: str) -> str:
    return ARCHS.get(label, label)


def format_receptive_fields(rows: Sequence[dict]) -> str:
    """Table of :func:`receptive_fields` rows."""
    lines = [f"{'layer':<9} {'output':>12} {'field r':>8} {'stride j':>9} {'pad P':>6}  centre unit sees rows"]
    for r in rows:
        span = f"{r['lo']}..{r['hi']}" + ("" if r["fits"] else f"  (wider than the image: {r['visible']} visible)")
        lines.append(f"{r['name']:<9} {_shape(r['output_shape']):>12} {r['receptive_field']:>8} "
                     f"{r['effective_stride']:>9} {r['effective_padding']:>6}  {span}")
    lines.append("r_l = r_{l-1} + (k_l - 1) j_{l-1}, j_l = j_{l-1} s_l, P_l = P_{l-1} + p_l j_{l-1} "
                 "(Araujo et al., Distill 2019); fc layers as convs over the last map (VGG Sec. 3.2).")
    return "\n".join(lines)
