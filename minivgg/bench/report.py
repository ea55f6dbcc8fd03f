"""Formatters of a :func:`minivgg.bench.run` result: a text report, JSON, and a per-layer bar chart.

They only read the result dict, so a result saved as JSON on one machine can
be reported on another. Every "% sgemm" figure is relative to the sgemm rate
measured at the *start* of that run; the rate measured at the end is printed
beside it, and a warning is added when the two differ by more than 20% (the
machine was busy, so ratios measured minutes apart are unreliable).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict

import numpy as np

from ..io.files import atomic_write
from .timing import gflops


def _ms(t: dict) -> str:
    return f"{1e3 * t['median_s']:8.1f} ±{100 * t['spread']:3.0f}%"


def format_report(res: dict) -> str:
    """A readable text report of :func:`~minivgg.bench.runners.run`'s result."""
    m, peak = res["machine"], res["sgemm"]["gflops"]
    blas = "; ".join(f"{b['internal_api']} {b['version']} kernel={b['architecture']} threads={b['num_threads']}"
                     for b in m["blas"]) or "unknown (threadpoolctl not installed)"
    lines = [
        f"minivgg bench -- {res['arch']}, {m['date']}",
        f"CPU      {m['cpu']} ({m['cores']} cores), threads used: {m['threads']}",
        f"BLAS     {blas}" + (f"  env {m['openblas_env']}" if m["openblas_env"] else ""),
        f"versions python {m['python']}, numpy {m['numpy']}, numba {m['numba']}, torch {m['torch'] or '-'}",
        f"sgemm    2048^3 float32: {peak:.1f} GFLOP/s at the start, {res['sgemm_end']['gflops']:.1f} at the end "
        "(the 100% of every '% sgemm' below is the start figure)",
        "times: median of the timed runs ± spread (max-min)/median; GFLOP/s from analytic MACs",
    ]
    drift = abs(res["sgemm_end"]["gflops"] - peak) / peak
    if drift > 0.2:
        lines.append(f"WARNING  the sgemm rate moved by {100 * drift:.0f}% during the run: the machine was busy "
                     "(other processes); ratios measured minutes apart are unreliable, re-run on a quiet machine")
    if "model" in res:
        r = res["model"]
        mv = r["minivgg"]
        lines += ["", f"Whole model ({r['macs_per_image'] / 1e9:.2f} GMACs per image)",
                  f"{'':24}{'minivgg ms':>15} {'GFLOP/s':>8} {'%sgemm':>7}" +
                  (f" {'torch ms':>15} {'GFLOP/s':>8} {'ratio':>6}" if "torch" in r else "")]
        for key, label, b in (("forward", f"forward, batch {r['batch']}", r["batch"]),
                              ("train", f"fwd+bwd, batch {r['train_batch']}", r["train_batch"])):
            g = mv[f"{key}_gflops"]
            line = f"{label:24}{_ms(mv[key]):>15} {g:8.1f} {100 * g / peak:6.1f}%"
            if "torch" in r:
                tg = r["torch"][f"{key}_gflops"]
                line += f" {_ms(r['torch'][key]):>15} {tg:8.1f} {r['ratio_' + key]:5.2f}x"
            lines.append(line)
        if "torch" in r:
            lines.append("ratio = median over interleaved rounds of minivgg time / torch time (targets: forward <= 1.0x, fwd+bwd <= 1.3x)")
    if "layers" in res:
        lines += ["", "Per layer (forward in inference mode; fwd+bwd in train mode)",
                  f"{'layer':10} {'algo':9} {'fwd ms':>14} {'GFLOP/s':>8} {'%sgemm':>7} {'fwd+bwd ms':>14} "
                  f"{'GFLOP/s':>8} {'%sgemm':>7}"]
        for row in res["layers"]:
            if row["forward"]["median_s"] < 5e-4 and not row["macs"]:
                continue  # flatten, dropout at inference: nothing to see
            fg, tg = row["forward_gflops"], row.get("train_gflops")
            line = f"{row['name']:10} {row.get('algo', ''):9} {_ms(row['forward']):>14} "
            line += f"{fg:8.1f} {100 * fg / peak:6.1f}%" if fg else f"{'':8} {'':7}"
            if "train" in row:
                line += f" {_ms(row['train']):>14} "
                line += f"{tg:8.1f} {100 * tg / peak:6.1f}%" if tg else ""
            lines.append(line)
        convs = [r for r in res["layers"] if r["kind"] == "conv" and r["name"] >= "conv2_1"]
        if convs:
            macs = sum(r["macs"] for r in convs)
            secs = sum(r["forward"]["median_s"] for r in convs)
            g = gflops(macs, secs)
            lines.append(f"conv2_1..conv5_3 forward together: {g:.1f} GFLOP/s = {100 * g / peak:.1f}% of sgemm "
                         "(target >= 70%)")
    if "race" in res:
        algos = ["naive", "im2col", "winograd", "torch"]
        lines += ["", "Conv algorithms per VGG layer shape (forward ms; effective GFLOP/s = direct MACs / time)",
                  f"{'layers':26} {'x shape':>18} " + " ".join(f"{a:>18}" for a in algos) +
                  f" {'winner':>9} {'auto':>9} {'best/torch':>10}"]
        for row in res["race"]:
            cells = []
            for a in algos:
                t = row["times"].get(a)
                cells.append(f"{1e3 * t['median_s']:8.2f} ({row['gflops'][a]:6.1f})" if t else f"{'-':>18}")
            vs = f"{row['best_vs_torch']:9.2f}x" if "best_vs_torch" in row else f"{'-':>10}"
            lines.append(f"{row['layers']:26} {str(tuple(row['x_shape'])):>18} " + " ".join(f"{c:>18}" for c in cells)
                         + f" {row['winner']:>9} {row['auto']:>9} {vs}")
    if "accuracy" in res:
        a = res["accuracy"]
        lines += ["", f"fp32 error vs float64 reference, x{tuple(a['x_shape'])} w{tuple(a['w_shape'])} "
                      "(|error| / RMS of the reference)",
                  f"{'algo':9} " + " ".join(f"{k + ' max':>11} {k + ' rms':>11}" for k in ("out", "dx", "dw"))]
        for algo in ("im2col", "winograd"):
            e = a[algo]
            lines.append(f"{algo:9} " + " ".join(f"{e[k]['max_rel']:11.2e} {e[k]['rms_rel']:11.2e}"
                                                 for k in ("out", "dx", "dw")))
    if "memory" in res:
        mm = res["memory"]
        lines += ["", f"Inference memory, batch {mm['batch']}: peak above params+input "
                      f"{mm['peak_bytes'] / 2**20:.1f} MiB; bound 3 x largest activation "
                      f"({mm['largest_activation_bytes'] / 2**20:.1f} MiB) + largest conv workspace "
                      f"({mm['max_workspace_bytes'] / 2**20:.1f} MiB) = {mm['bound_bytes'] / 2**20:.1f} MiB "
                      f"-> {mm['ratio_to_bound']:.2f} of the bound"]
    if "startup" in res:
        s = res["startup"]
        lines += ["", f"Startup (fresh processes, warm Numba cache): import minivgg {s['import_s']:.2f} s "
                      f"(target < 1 s); first forward adds {s['first_forward_extra_s']:.2f} s (target <= 2 s); "
                      f"first process (may fill the cache): import {s['cold']['import_s']:.2f} s, first forward "
                      f"{s['cold']['first_forward_s']:.2f} s"]
    return "\n".join(lines)


def to_json(res: dict) -> str:
    """:func:`~minivgg.bench.runners.run`'s result as indented JSON."""
    return json.dumps(res, indent=2, default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__") else str(o))


def plot_report(res: dict, path: str) -> str:
    """Per-layer bar chart (forward GFLOP/s per conv layer, with the sgemm line) saved to ``path``.

    Needs matplotlib (imported here, not at module import). Writes atomically
    (temp file in the same directory, then ``os.replace``). Returns ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if "layers" not in res and "race" not in res:
        raise ValueError("plot_report: the result has neither 'layers' nor 'race'; run with those parts")
    fig, axes = plt.subplots(1, 2 if "race" in res else 1, figsize=(14, 4.5), squeeze=False)
    peak = res["sgemm"]["gflops"]
    if "layers" in res:
        ax = axes[0, 0]
        rows = [r for r in res["layers"] if r["macs"]]
        xs = np.arange(len(rows))
        ax.bar(xs - 0.2, [r["forward_gflops"] for r in rows], 0.4, label="forward")
        if all("train_gflops" in r for r in rows):
            ax.bar(xs + 0.2, [r["train_gflops"] for r in rows], 0.4, label="fwd+bwd")
        ax.axhline(peak, color="k", ls="--", lw=1, label=f"sgemm {peak:.0f}")
        ax.set_xticks(xs, [r["name"] for r in rows], rotation=60, fontsize=8)
        ax.set_ylabel("GFLOP/s (analytic MACs)")
        ax.set_title(f"{res['arch']} per layer, {res['machine']['threads']} threads")
        ax.legend(fontsize=8)
    if "race" in res:
        ax = axes[0, -1]
        algos = [a for a in ("im2col", "winograd", "torch") if any(a in r["gflops"] for r in res["race"])]
        xs = np.arange(len(res["race"]))
        width = 0.8 / max(1, len(algos))
        for i, a in enumerate(algos):
            ax.bar(xs + (i - (len(algos) - 1) / 2) * width, [r["gflops"].get(a, 0) for r in res["race"]], width,
                   label=a)
        ax.axhline(peak, color="k", ls="--", lw=1)
        ax.set_xticks(xs, [r["layers"].split(",")[0] for r in res["race"]], rotation=60, fontsize=8)
        ax.set_ylabel("effective GFLOP/s")
        ax.set_title("conv algorithms per layer shape")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fmt = (os.path.splitext(path)[1] or ".png")[1:]
    try:
        atomic_write(path, lambda fh: fig.savefig(fh, format=fmt))
    finally:
        plt.close(fig)
    return path
