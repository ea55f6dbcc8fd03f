"""``minivgg bench``: time minivgg on this CPU, as ratios to its sgemm rate and to PyTorch.

Argument parsing, printing and the progress bar only; the runners and
formatters are in :mod:`minivgg.bench`. The memory part is measured by
:func:`minivgg.analysis.measure.measure_memory` (bench and analysis are sibling
tools and do not import each other, so this command hands one's result to the
other).
"""

from __future__ import annotations

import argparse
import sys

from . import UsageError
from ._common import non_negative_int, positive_int

PARTS = ("model", "layers", "race", "accuracy", "memory")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="benchmark a VGG on this CPU (per layer, whole model, conv algorithms)",
        description="Time forward and forward+backward per layer and for the whole model, race the conv "
                    "algorithms (naive, im2col, Winograd, PyTorch) on every layer shape, and report GFLOP/s "
                    "from the analytic MACs as a % of the BLAS sgemm rate measured in the same run. "
                    "Warm-up runs are discarded; medians and spreads are reported.")
    p.add_argument("--model", default="vgg16", help="architecture: vgg11, vgg13, vgg16c, vgg16, vgg19 (default vgg16)")
    p.add_argument("--batch", type=positive_int, default=1, help="images per inference forward (default 1)")
    p.add_argument("--train-batch", type=positive_int, default=2, help="images per forward+backward (default 2)")
    p.add_argument("--threads", default="all",
                   help="thread counts, comma-separated, e.g. '1,all' (default all cores)")
    p.add_argument("--repeats", type=positive_int, default=5, help="timed runs per measurement (default 5)")
    p.add_argument("--warmup", type=non_negative_int, default=1, help="discarded runs before timing (default 1)")
    p.add_argument("--parts", default=",".join(PARTS),
                   help=f"comma-separated subset of {','.join(PARTS)} (default all)")
    p.add_argument("--no-torch", action="store_true", help="do not time PyTorch even if it is installed")
    p.add_argument("--startup", action="store_true",
                   help="also time 'import minivgg' and the first forward in fresh processes")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--plot", metavar="FILE.png", help="save a per-layer bar chart (needs matplotlib)")
    p.set_defaults(func=run)


def _thread_counts(text: str, cores: int) -> list[int]:
    counts = []
    for item in text.split(","):
        item = item.strip().lower()
        if item in ("all", ""):
            counts.append(cores)
            continue
        try:
            n = int(item)
        except ValueError:
            raise UsageError(f"--threads expects integers or 'all', got {item!r}") from None
        if not 1 <= n <= cores:
            raise UsageError(f"--threads {n} is impossible on this machine: use 1..{cores} (the cores available)")
        counts.append(n)
    return list(dict.fromkeys(counts))  # keep order, drop repeats


def _check_args(args: argparse.Namespace) -> tuple[str, list[int], list[str]]:
    from ..configs import ARCHS, CONFIGS
    from ..kernels._parallel import available_cores

    name = args.model.strip().lower()
    if len(name) == 1 and name.upper() in CONFIGS:  # a letter: its readable name
        name = next(k for k, v in ARCHS.items() if v == name.upper())
    if name not in ARCHS:
        raise UsageError(f"unknown model {args.model!r}; choose from {', '.join(ARCHS)}")
    for label, value in (("--batch", args.batch), ("--train-batch", args.train_batch), ("--repeats", args.repeats)):
        if value < 1:
            raise UsageError(f"{label} must be >= 1, got {value}")
    if args.warmup < 0:
        raise UsageError(f"--warmup must be >= 0, got {args.warmup}")
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise UsageError(f"--parts: unknown {bad or 'empty list'}; choose from {', '.join(PARTS)}")
    if args.plot and not any(p in parts for p in ("layers", "race")):
        raise UsageError("--plot needs the 'layers' or 'race' part")
    return name, _thread_counts(args.threads, available_cores()), parts


class _Progress:
    """A tqdm bar fed by :func:`minivgg.bench.run`'s ``progress(step, done, total)`` callback."""

    def __init__(self, label: str):
        self.label, self.bar = label, None

    def __call__(self, step: str, done: int, total: int) -> None:
        from tqdm.auto import tqdm

        if self.bar is None:  # disable=None: no bar when stderr is not a terminal (logs, pipes)
            self.bar = tqdm(total=total, desc=self.label, unit="step", leave=False, disable=None)
        self.bar.set_postfix_str(step)
        self.bar.update(done - self.bar.n)

    def __enter__(self) -> "_Progress":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def _measure_memory(arch: str, num_threads: int) -> dict:
    """Inference peak of a float32 ``arch`` at batch 1, under the thread count the timings use."""
    import numpy as np

    from ..analysis.measure import measure_memory
    from ..kernels._parallel import limit_threads
    from ..vgg import VGG

    with limit_threads(num_threads):
        return measure_memory(VGG(arch, dtype=np.float32), batch=1)


def run(args: argparse.Namespace) -> int:
    arch, counts, parts = _check_args(args)
    from .. import bench

    timed = [p for p in parts if p != "memory"]
    results = []
    for n in counts:
        memory = _measure_memory(arch, n) if "memory" in parts else None
        with _Progress(f"bench {arch}, {n} thread{'s' if n > 1 else ''}") as progress:
            res = bench.run(arch, batch=args.batch, train_batch=args.train_batch, num_threads=n,
                            repeats=args.repeats, warmup=args.warmup, use_torch=not args.no_torch, parts=timed,
                            startup=args.startup, memory=memory, progress=progress)
        results.append(res)
        if not args.json:
            print(bench.format_report(res), flush=True)
            print()
    if args.json:
        print(bench.to_json(results[0] if len(results) == 1 else results))
    if args.plot:
        try:
            bench.plot_report(results[-1], args.plot)
        except ImportError:
            raise UsageError("--plot needs matplotlib (pip install matplotlib)") from None
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0
