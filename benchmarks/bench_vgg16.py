"""VGG-16 on this CPU against PyTorch (each in fresh processes) and the machine's own limits; writes RESULTS.md.

Usage (what ``make bench`` runs, with OpenBLAS left to pick its own kernel)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_vgg16.py \\
        [--results benchmarks/RESULTS.md] [--json out.json] [any `minivgg bench` option ...]

Runs ``minivgg bench --json`` with the options given (default: 1 and all
threads, every part, memory and start-up included), prints the report and,
with ``--results``, writes it to a Markdown file atomically, headed by the
date, machine, BLAS kernel and the exact command. Nothing is timed in this
script itself.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shlex
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from minivgg import bench  # noqa: E402
from minivgg.cli import main as cli_main  # noqa: E402
from minivgg.io.files import atomic_write  # noqa: E402

WHY_NOT_IN_PROCESS = """\
Why these figures replace the earlier ones: until this version `minivgg bench`
timed minivgg and PyTorch back to back *in one process*. Each library keeps
worker threads spinning for a while after its last task (OpenMP in PyTorch,
OpenBLAS and minivgg's pool), so each ran while the other's threads still held
the two cores; per-round ratios swung by 40-90% and their median ("0.73x" /
"0.88x PyTorch" in older READMEs) measured that interference, not either
library. Now each library runs in its own fresh process, alternating order
every round, until the per-round ratios agree (see `minivgg.bench.isolated`).
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", help="write the report to this Markdown file")
    p.add_argument("--json", help="also write the raw result as JSON to this file")
    args, passthrough = p.parse_known_args(argv)
    cmd = ["bench", "--threads", "1,all", "--startup", *passthrough, "--json"]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli_main(cmd)
    if code != 0:
        return code
    res = json.loads(buf.getvalue())
    report = bench.format_report(res)
    print(report, flush=True)
    if args.json:
        atomic_write(args.json, lambda fh: fh.write(json.dumps(res, indent=2).encode()))
    if args.results:
        m = res["machine"]
        kernels = sorted({b["architecture"] for rec in res["runs"] for b in rec["blas"]})
        env = " ".join(f"{k}={v}" for k, v in m["openblas_env"].items())
        command = ("env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_vgg16.py "
                   + shlex.join(["--results", args.results, *passthrough]))
        head = (f"# minivgg benchmark results\n\nDate: {m['date']}  \nMachine: {m['cpu']}, {m['cores']} cores  \n"
                f"BLAS kernel that ran: {', '.join(kernels) or 'unknown'}"
                f"{' (env ' + env + ')' if env else ' (OpenBLAS chose it; no OPENBLAS_* set)'}  \n"
                f"Command: `{command}`\n\n{WHY_NOT_IN_PROCESS}\n")
        text = head + "```text\n" + report + "\n```\n"
        atomic_write(args.results, lambda fh: fh.write(text.encode()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
