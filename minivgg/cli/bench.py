"""``minivgg bench``: minivgg against PyTorch (in fresh processes) and against this CPU's own limits.

Argument parsing, printing and the progress bar only; the runners and
formatters are in :mod:`minivgg.bench`. Two things are wired here because
they join sibling tools: the small network is the training recipe's
(:mod:`minivgg.training`), and the memory part is measured by
:func:`minivgg.analysis.measure.measure_memory` and set against
:func:`minivgg.bench.memory_bound`.
"""

from __future__ import annotations

import argparse
import sys

from . import UsageError
from ._common import arch_name, non_negative_int, output_path, positive_float, positive_int

PARTS = ("model", "small", "layers", "race", "accuracy", "memory")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="benchmark a VGG on this CPU against PyTorch and the hardware's own limits",
        description="Compare minivgg with PyTorch (each library in its own fresh process, alternating, "
                    "repeated until the per-round ratios agree) on the whole model, on the small network "
                    "'minivgg train' trains (one step and a whole epoch), and per layer; set every layer "
                    "against its floor from the sgemm rate and memory bandwidth measured in the same run; race "
                    "minivgg's conv algorithms; measure their fp32 error. Set OPENBLAS_CORETYPE as you want "
                    "BLAS to run (make bench unsets it, so OpenBLAS picks its own kernel); the report names "
                    "the kernel that ran.")
    p.add_argument("--model", default="vgg16", type=arch_name,
                   help="architecture: vgg11, vgg13, vgg16c, vgg16, vgg19 (default vgg16)")
    p.add_argument("--batch", type=positive_int, default=1, help="images per inference forward (default 1)")
    p.add_argument("--train-batch", type=positive_int, default=2,
                   help="images per forward+backward (default 2)")
    p.add_argument("--small-batch", type=positive_int, default=32,
                   help="batch of the small network's training step (default 32)")
    p.add_argument("--epoch-images", type=positive_int, default=1024,
                   help="images in the small network's timed epoch (default 1024)")
    p.add_argument("--threads", default="1,all",
                   help="thread counts, comma-separated, e.g. '1,all' (default 1,all)")
    p.add_argument("--repeats", type=positive_int, default=5, help="timed runs per process (default 5)")
    p.add_argument("--warmup", type=non_negative_int, default=2, help="discarded runs per process (default 2)")
    p.add_argument("--rounds", type=positive_int, default=3,
                   help="fresh-process rounds at least, and for the per-layer part (default 3)")
    p.add_argument("--max-rounds", type=positive_int, default=7,
                   help="rounds at most, while the ratios have not settled (default 7)")
    p.add_argument("--target-spread", type=positive_float, default=0.10,
                   help="stop once the last --rounds ratios agree within this (max-min)/median (default 0.10)")
    p.add_argument("--parts", default=",".join(PARTS),
                   help=f"comma-separated subset of {','.join(PARTS)} (default all)")
    p.add_argument("--algo", default="auto", choices=("auto", "tune", "im2col", "winograd"),
                   help="minivgg's conv algorithm: the fixed 'auto' rule (default), 'tune' (measured per "
                        "shape in each process), or one algorithm everywhere it applies")
    p.add_argument("--no-torch", action="store_true", help="do not time PyTorch even if it is installed")
    p.add_argument("--startup", action="store_true",
                   help="also time 'import minivgg' and the first forward in fresh processes")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--plot", metavar="FILE.png", help="save a per-layer bar chart, any format matplotlib writes (needs matplotlib)")
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


def _check_args(args: argparse.Namespace) -> tuple[list[int], list[str]]:
    from ..kernels._parallel import available_cores

    if args.rounds > args.max_rounds:
        raise UsageError(f"--rounds {args.rounds} is more than --max-rounds {args.max_rounds}")
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise UsageError(f"--parts: unknown {bad or 'empty list'}; choose from {', '.join(PARTS)}")
    if args.plot and "layers" not in parts:
        raise UsageError("--plot needs the 'layers' part")
    if args.plot:
        from ..io.files import plot_suffixes

        output_path(args.plot, "--plot", plot_suffixes())  # before minutes of timing, not after
    return _thread_counts(args.threads, available_cores()), parts


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


def _small_network(batch: int, epoch_images: int) -> dict:
    """The network ``minivgg train`` trains by default, with its default optimiser: the ``small`` part."""
    from ..training import TrainConfig, load_dataset, recipe_config

    data = load_dataset("shapes", n_train=64, n_val=16)  # only its shapes matter: the config is fitted to them
    config = recipe_config(data)
    tc = TrainConfig()
    return {"label": f"{config.describe()} (the shapes recipe), {tc.optimizer}, 32x32 inputs",
            "config": config.to_dict(), "batch": batch, "epoch_images": epoch_images,
            "optimizer": {"name": tc.optimizer, "lr": tc.lr, "momentum": tc.momentum,
                          "weight_decay": tc.weight_decay}}


def _memory(arch: str, num_threads: int) -> dict:
    """Inference peak of a float32 ``arch`` at batch 1 set against the analytic bound."""
    import numpy as np

    from .. import bench
    from ..analysis.measure import measure_memory
    from ..kernels._parallel import limit_threads
    from ..vgg import VGG

    with limit_threads(num_threads):
        model = VGG(arch, dtype=np.float32)
        return bench.memory_record(model, measure_memory(model, batch=1))


def run(args: argparse.Namespace) -> int:
    counts, parts = _check_args(args)
    from .. import bench
    from ._bench_worker import WORKER

    timed = [p for p in parts if p != "memory"]
    small = _small_network(args.small_batch, args.epoch_images) if "small" in parts else None
    res: dict = {}
    if timed:
        with _Progress(f"bench {args.model}") as progress:
            res = bench.run(args.model, worker=WORKER, thread_counts=counts, batch=args.batch,
                            train_batch=args.train_batch, small=small, parts=timed, use_torch=not args.no_torch,
                            repeats=args.repeats, warmup=args.warmup, min_rounds=args.rounds,
                            max_rounds=args.max_rounds, target_spread=args.target_spread, algo=args.algo,
                            progress=progress)
        res["verdicts"] = bench.verdicts(res)
    else:
        res = {"arch": args.model, "libs": ["minivgg"], "runs": []}
    if "memory" in parts:
        res["memory"] = _memory(args.model, max(counts))
    if args.startup:
        res["startup"] = bench.startup_cost(args.model, max(counts))
    if args.json:
        print(bench.to_json(res))
    else:
        print(bench.format_report(res), flush=True)
    if args.plot:
        try:
            bench.plot_report(res, args.plot)
        except ImportError:
            raise UsageError("--plot needs matplotlib (pip install matplotlib)") from None
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0
