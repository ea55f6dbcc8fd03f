"""Formatters of a :func:`minivgg.bench.run` result: a text report, JSON, and a per-layer bar chart.

They only read the result dict, so a result saved as JSON on one machine can
be reported on another. The sgemm rate of each thread count is measured at
the start and at the end of its part of the run; a warning is added when the
two differ by more than 20% (the machine was busy, so the figures measured in
between are unreliable).
"""

from __future__ import annotations

import os

import numpy as np

from ..io.files import atomic_write
from ..io.jsonout import dumps


def _ms(t: dict) -> str:
    return f"{1e3 * t['median_s']:8.1f} ±{100 * t['spread']:3.0f}%"


def _plural(n: int) -> str:
    return f"{n} thread{'s' if n != 1 else ''}"


def _cmp_line(label: str, c: dict, libs: list, floor_ms: str = "") -> str:
    """One fresh-process comparison: each library's median ± spread over rounds, the ratio, the rounds."""
    line = f"{label:34}"
    for lib in libs:
        line += f" {1e3 * c[lib]['median_s']:9.1f} ±{100 * c[lib]['spread']:3.0f}%"
    if "ratio" in c:
        line += f" {c['ratio']['median']:6.2f}x ±{100 * c['ratio']['spread']:3.0f}%"
    line += f"  {c['rounds']}{'' if c['converged'] else '!'}"
    return line + (f"  {floor_ms}" if floor_ms else "")


def format_report(res: dict) -> str:
    """A readable text report of :func:`minivgg.bench.suite.run`'s result."""
    libs = res.get("libs", ["minivgg"])
    lines = [f"minivgg bench -- {res['arch']}" + (f", algo={res['algo']}" if res.get("algo", "auto") != "auto" else "")
             + (f", {res['machine']['date']}" if "machine" in res else "")]
    if "machine" in res:
        m, bw = res["machine"], res["bandwidth"]
        spread = next((rec["forward"]["target_spread"] for rec in res.get("runs", []) if "forward" in rec), 0.1)
        lines += [
            f"CPU      {m['cpu']} ({m['cores']} cores)",
            f"versions python {m['python']}, numpy {m['numpy']}, numba {m['numba']}, torch {m['torch'] or '-'}",
            "BLAS env " + (", ".join(f"{k}={v}" for k, v in m["openblas_env"].items()) or "(no OPENBLAS_* set)"),
            f"memory   {bw['read_gbs']:.1f} GB/s streaming read, {bw['copy_gbs']:.1f} GB/s copy (read+write), "
            f"{bw['mbytes']} MB arrays",
            "method   each library in its own fresh process, alternating order every round; per process the "
            "median of the timed runs (warm-up discarded); ± = (max-min)/median over rounds; ratio = median of "
            "per-round minivgg/torch; last column = rounds run ('!' = the ratios did not settle within "
            f"±{100 * spread:.0f}%)",
        ]
    for rec in res.get("runs", []):
        n = rec["threads"]
        blas = "; ".join(f"{b['internal_api']} {b['version']} kernel={b['architecture']}" for b in rec["blas"]) \
            or "unknown (threadpoolctl not installed)"
        g0, g1 = rec["sgemm"]["gflops"], rec["sgemm_end"]["gflops"]
        lines += ["", f"== {_plural(n)} " + "=" * 60,
                  f"BLAS     {blas}",
                  f"sgemm    2048^3 float32: {g0:.1f} GFLOP/s at the start, {g1:.1f} at the end"]
        if abs(g1 - g0) / g0 > 0.2:
            lines.append(f"WARNING  the sgemm rate moved by {100 * abs(g1 - g0) / g0:.0f}% during the run: the "
                         "machine was busy; re-run on a quiet machine")
        head = f"{'':34}" + "".join(f" {lib + ' ms':>15}" for lib in libs) + \
            (f" {'ratio':>13}" if len(libs) == 2 else "") + "  rounds"
        fl = rec["floors"]["forward"]
        if "forward" in rec:
            lines += ["", "Whole model", head]
            floor = (f"floor: direct {1e3 * fl['direct_s']:.0f} ms, F(2x2) {1e3 * fl['F(2x2,3x3)_s']:.0f}, "
                     f"F(4x4) {1e3 * fl['F(4x4,3x3)_s']:.0f}")
            lines.append(_cmp_line(f"forward, batch {rec['forward']['request']['batch']}", rec["forward"], libs,
                                   floor))
            lines.append(_cmp_line(f"fwd+bwd, batch {rec['train']['request']['batch']}", rec["train"], libs))
        if "small_step" in rec:
            sb = rec["small_step"]["request"]["batch"]
            lines += ["", f"Small network: {rec['small_label']}", head]
            lines.append(_cmp_line(f"training step, batch {sb}", rec["small_step"], libs))
            ep = rec["small_epoch"]
            line = _cmp_line(f"epoch of {ep['request']['epoch_images']} images", ep, libs)
            ips = ", ".join(f"{lib} {ep[lib]['images_per_s']:.0f}" for lib in libs if "images_per_s" in ep[lib])
            lines += [line, f"{'':34} images/s: {ips}"]
        if "layers" in rec:
            lay = rec["layers"]
            lines += ["", f"Per layer, forward (fresh processes, {lay['rounds']} rounds); floor = max(compute at the "
                          "sgemm rate, bytes at the main-memory read rate); % = floor / time (over 100%: Winograd's "
                          "fewer multiplies, or data that fit in cache)",
                      f"{'layer':10} {'bound':>7} {'floor ms':>9}" +
                      "".join(f" {lib + ' ms':>12} {'%':>5}" for lib in libs) + (f" {'ratio':>7}" if len(libs) == 2 else "")]
            for row in lay["layers"]:
                if row["kind"] in ("flatten", "dropout"):
                    continue
                line = f"{row['name']:10} {row['bound']:>7} {1e3 * row['floor_s']:9.2f}"
                for lib in libs:
                    frac = row.get(f"{lib}_fraction")
                    line += f" {1e3 * row[lib + '_s']:12.2f} {100 * frac if frac else 0:4.0f}%"
                if "ratio" in row:
                    line += f" {row['ratio']:6.2f}x"
                lines.append(line)
            tot = {lib: sum(r[lib + "_s"] for r in lay["layers"]) for lib in libs}
            lines.append(f"{'sum':10} {'':>7} {1e3 * sum(r['floor_s'] for r in lay['layers']):9.2f}" +
                         "".join(f" {1e3 * tot[lib]:12.2f} {'':>5}" for lib in libs))
        if "race" in rec:
            algos = [a for a in ("naive", "im2col", "winograd", "winograd4") if any(a in r["times"] for r in rec["race"])]
            lines += ["", "minivgg's conv algorithms per layer shape, in this process (forward ms; "
                          "effective GFLOP/s = direct MACs / time)",
                      f"{'layers':26} {'x shape':>18} " + " ".join(f"{a:>18}" for a in algos) +
                      f" {'winner':>9} {'auto':>9}"]
            for row in rec["race"]:
                cells = []
                for a in algos:
                    t = row["times"].get(a)
                    cells.append(f"{1e3 * t['median_s']:8.2f} ({row['gflops'][a]:6.1f})" if t else f"{'-':>18}")
                lines.append(f"{row['layers']:26} {str(tuple(row['x_shape'])):>18} " +
                             " ".join(f"{c:>18}" for c in cells) + f" {row['winner']:>9} {row['auto']:>9}")
    if "accuracy" in res:
        a = res["accuracy"]
        algos = [k for k in ("im2col", "winograd", "winograd4") if k in a]
        lines += ["", f"fp32 error vs float64 reference, x{tuple(a['x_shape'])} w{tuple(a['w_shape'])} "
                      "(|error| / RMS of the reference)",
                  f"{'algo':9} " + " ".join(f"{k + ' max':>11} {k + ' rms':>11}" for k in ("out", "dx", "dw"))]
        for algo in algos:
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
        lines += ["", f"Startup (fresh processes, warm Numba cache): import minivgg {s['import_s']:.2f} s; "
                      f"first forward adds {s['first_forward_extra_s']:.2f} s; first process (may fill the "
                      f"cache): import {s['cold']['import_s']:.2f} s, first forward {s['cold']['first_forward_s']:.2f} s"]
    if res.get("verdicts"):
        lines += ["", "Targets (minivgg time / PyTorch time unless said)"]
        for v in res["verdicts"]:
            sp = f" ±{100 * v['spread']:.0f}%" if v.get("spread") is not None else ""
            lines.append(f"  {v['what']:44} {v['ratio']:5.2f}x{sp:6} target <= {v['target']:.1f}x -> "
                         f"{'met' if v['met'] else 'NOT met'}")
    return "\n".join(lines)


def to_json(res: dict) -> str:
    """:func:`~minivgg.bench.runners.run`'s result as indented JSON."""
    return dumps(res, indent=2, default=str)


def plot_report(res: dict, path: str) -> str:
    """Per-layer chart of the last thread count's run: each library's forward time against the layer's floor.

    Needs matplotlib (imported here, not at module import). Writes atomically
    (temp file in the same directory, then ``os.replace``). Returns ``path``.

    Raises
    ------
    ValueError
        The result has no per-layer part.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = [r for r in res.get("runs", []) if "layers" in r]
    if not recs:
        raise ValueError("plot_report: the result has no 'layers' part; run the benchmark with it")
    rec = recs[-1]
    rows = [r for r in rec["layers"]["layers"] if r["kind"] in ("conv", "dense")]
    libs = res["libs"]
    fig, ax = plt.subplots(figsize=(12, 4.5))
    xs = np.arange(len(rows))
    width = 0.8 / (len(libs) + 1)
    for i, lib in enumerate(libs):
        ax.bar(xs + (i - len(libs) / 2) * width, [1e3 * r[lib + "_s"] for r in rows], width, label=lib)
    ax.bar(xs + (len(libs) / 2) * width, [1e3 * r["floor_s"] for r in rows], width, label="floor", color="0.7")
    ax.set_xticks(xs, [r["name"] for r in rows], rotation=60, fontsize=8)
    ax.set_ylabel("forward ms (fresh processes)")
    ax.set_title(f"{res['arch']} per layer, {_plural(rec['threads'])}; floor = max(compute, memory)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fmt = (os.path.splitext(path)[1] or ".png")[1:]
    try:
        atomic_write(path, lambda fh: fig.savefig(fh, format=fmt))
    finally:
        plt.close(fig)
    return path
