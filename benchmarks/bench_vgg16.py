"""VGG-16 on this CPU: minivgg against PyTorch and the machine's sgemm rate, as ratios measured in one run.

Usage::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_vgg16.py \\
        [--threads 1,all] [--repeats 5] [--json out.json] [--plot layers.png] [--results benchmarks/RESULTS.md]

Prints the tables of ``minivgg bench`` for each thread count plus the start-up
cost (import and first forward, measured in fresh processes), and the verdict
on each target as a ratio. ``--results`` also writes the text to a Markdown
file (atomically). Nothing here changes the process's thread settings for good:
:func:`minivgg.bench.run` restores them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from minivgg import VGG, bench  # noqa: E402
from minivgg.analysis.verify import measure_memory  # noqa: E402
from minivgg.kernels import _parallel as threads  # noqa: E402


def verdict(res: dict) -> list[str]:
    """One line per issue target: measured ratio, target, met or not."""
    out = []
    peak = res["sgemm"]["gflops"]
    if "model" in res and "ratio_forward" in res["model"]:
        r = res["model"]
        out.append(f"forward batch {r['batch']}: {r['ratio_forward']:.2f}x PyTorch (target <= 1.0x) -> "
                   f"{'met' if r['ratio_forward'] <= 1.0 else 'NOT met'}")
        out.append(f"fwd+bwd batch {r['train_batch']}: {r['ratio_train']:.2f}x PyTorch (target <= 1.3x) -> "
                   f"{'met' if r['ratio_train'] <= 1.3 else 'NOT met'}")
    if "layers" in res:
        convs = [r for r in res["layers"] if r["kind"] == "conv" and r["name"] >= "conv2_1"]
        g = bench.gflops(sum(r["macs"] for r in convs), sum(r["forward"]["median_s"] for r in convs))
        out.append(f"conv2_1..conv5_3 forward: {100 * g / peak:.0f}% of sgemm (target >= 70%) -> "
                   f"{'met' if g >= 0.7 * peak else 'NOT met'}")
    if "race" in res:
        wins = [f"{r['layers']}={r['winner']}" for r in res["race"]]
        out.append("fastest minivgg algorithm per layer shape: " + ", ".join(wins))
    if "accuracy" in res:
        a = res["accuracy"]
        worse = [k for k in ("out", "dx", "dw") if a["winograd"][k]["rms_rel"] > a["im2col"][k]["rms_rel"]]
        out.append("Winograd fp32 RMS error vs direct (im2col): "
                   + ", ".join(f"{k} {a['winograd'][k]['rms_rel'] / a['im2col'][k]['rms_rel']:.2f}x"
                               for k in ("out", "dx", "dw"))
                   + (" (higher on " + ", ".join(worse) + ")" if worse else " (no worse)"))
    if "memory" in res:
        m = res["memory"]
        out.append(f"inference peak above params: {m['ratio_to_bound']:.2f} of the bound "
                   f"(3 x largest activation + workspace) -> {'met' if m['ratio_to_bound'] <= 1 else 'NOT met'}")
    if "startup" in res:
        s = res["startup"]
        out.append(f"import minivgg: {s['import_s']:.2f} s (target < 1 s) -> {'met' if s['import_s'] < 1 else 'NOT met'}; "
                   f"first forward adds {s['first_forward_extra_s']:.2f} s (target <= 2 s) -> "
                   f"{'met' if s['first_forward_extra_s'] <= 2 else 'NOT met'}")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="vgg16")
    p.add_argument("--threads", default="1,all", help="comma-separated thread counts ('all' = every core)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--json", help="also write the raw results as JSON to this file")
    p.add_argument("--plot", help="bar chart of the last thread count's per-layer results")
    p.add_argument("--results", help="write the text report to this Markdown file")
    args = p.parse_args(argv)
    cores = threads.available_cores()
    counts = list(dict.fromkeys(cores if t.strip() == "all" else int(t) for t in args.threads.split(",")))
    texts, results = [], []
    for i, n in enumerate(counts):
        with threads.limit_threads(n):  # the memory figure of the thread count the timings use
            memory = measure_memory(VGG(args.model, dtype=np.float32), batch=1)
        res = bench.run(args.model, batch=1, train_batch=2, num_threads=n, repeats=args.repeats,
                        warmup=args.warmup, startup=(n == cores), memory=memory)
        results.append(res)
        text = bench.format_report(res) + "\n\nVerdict (" + f"{n} thread{'s' if n > 1 else ''}):\n  " + \
            "\n  ".join(verdict(res))
        print(text + "\n", flush=True)
        texts.append(text)
    report = "\n\n".join(texts)
    if args.json:
        _write(args.json, bench.to_json(results))
    if args.plot:
        bench.plot_report(results[-1], args.plot)
    if args.results:
        m = results[0]["machine"]
        blas = ", ".join(f"{b['internal_api']} {b['version']} ({b['architecture']} kernel)" for b in m["blas"])
        head = (f"# minivgg benchmark results\n\nDate: {m['date']}  \nMachine: {m['cpu']}, {m['cores']} cores  \n"
                f"BLAS: {blas}  \nCommand: `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python "
                f"benchmarks/bench_vgg16.py --threads {args.threads} --repeats {args.repeats} "
                f"--results benchmarks/RESULTS.md`\n\n")
        _write(args.results, head + "```text\n" + report + "\n```\n")
    return 0


def _write(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a results file is for everyone
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


if __name__ == "__main__":
    sys.exit(main())
