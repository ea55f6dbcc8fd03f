"""``minivgg experiment NAME``: one of the lecture's measurable claims, trained and measured on the embedded data.

The experiments themselves live in :mod:`minivgg.training.experiments`; this
command runs one, prints its table (or JSON), writes ``DIR/NAME.json`` and
``DIR/NAME.png``, and reports progress on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..io.jsonout import dumps
from ..training import experiments
from ..training.checkpoint import write_json
from . import UsageError
from ._common import output_path, positive_int, seed


def register(sub: argparse._SubParsersAction) -> None:
    names = experiments.NAMES
    p = sub.add_parser("experiment", help="run one of the lecture's claims as an experiment (table, JSON, plot)",
                       description="Train and measure one of the lecture's claims on the embedded shapes with "
                                   "one shared recipe, print a table beside the paper's figure with a verdict, "
                                   "and write DIR/NAME.json and DIR/NAME.png. Experiments: "
                                   + "; ".join(f"{n}: {experiments.TITLES[n]}" for n in names)
                                   + ". The full runs take minutes; --quick about a minute (a smoke run).")
    p.add_argument("name", metavar="NAME", choices=names, help=f"one of: {', '.join(names)}")
    p.add_argument("--quick", action="store_true", help="a run of about a minute (tiny nets, few images)")
    p.add_argument("--seed", type=seed, default=0, help="data seed and first training seed (default 0)")
    p.add_argument("--out", metavar="DIR", default="experiments",
                   help="directory for NAME.json and NAME.png, created if needed (default ./experiments)")
    p.add_argument("--no-plot", action="store_true", help="do not draw NAME.png (no matplotlib needed)")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of the table")
    p.add_argument("--threads", type=positive_int, help="limit kernels and BLAS to N threads")
    p.set_defaults(func=run)


def _check_plotting() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("the plot needs matplotlib (pip install 'minivgg[plot]'); or pass --no-plot") from None


def run(args: argparse.Namespace) -> int:
    from .train import thread_limit

    module = experiments.get(args.name)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out!r} is not a directory")
    if not args.no_plot:
        _check_plotting()  # before minutes of training, not after
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {args.out!r}: cannot create the directory: {e.strerror or e}") from None
    json_path = output_path(out / f"{args.name}.json", "--out")
    png_path = None if args.no_plot else output_path(out / f"{args.name}.png", "--out")

    def progress(message: str) -> None:
        print(f"minivgg experiment {args.name}: {message}", file=sys.stderr, flush=True)

    with thread_limit(args.threads):
        result = module.run(quick=args.quick, seed=args.seed, progress=progress)
    record = result.to_json()
    try:
        write_json(json_path, record)
    except OSError as e:
        raise UsageError(str(e)) from None
    if png_path is not None:
        module.plot(result, png_path)
    if args.json:
        print(dumps(record, indent=1))
    else:
        print(result.table())
        print(f"\n({result.seconds:.0f} s; {'quick run' if result.quick else 'full run'})")
    written = f"{json_path}" + (f" and {png_path}" if png_path is not None else "")
    print(f"minivgg experiment {args.name}: wrote {written}", file=sys.stderr)
    return 0
