"""``minivgg ensemble``: average the softmax of several checkpoints (paper §4.3) and compare with each."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ..training import evaluate as ev
from . import EXIT_NONFINITE, UsageError
from ._common import DistinctPaths, positive_int
from .train import add_data_arguments, load_checkpoint_model, load_data, thread_limit


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ensemble", help="accuracy of an ensemble of checkpoints vs each member",
                       description="Average the softmax outputs of several checkpoints (e.g. the same recipe "
                                   "trained with --seed 0, 1, 2) and report every member's accuracy and the "
                                   "ensemble's. The data default to the first checkpoint's dataset.")
    p.add_argument("checkpoints", nargs="+", metavar="CKPT", action=DistinctPaths, help="checkpoint.npz files written by minivgg train")
    add_data_arguments(p, from_checkpoint=True)
    p.add_argument("--split", choices=("train", "val", "test"), default="test", help="split to score (default test)")
    p.add_argument("--flip", action="store_true", help="average each model over the image and its mirror image too")
    p.add_argument("--batch-size", type=positive_int, default=250, help="images per forward pass (default 250)")
    p.add_argument("--threads", type=positive_int, help="limit kernels and BLAS to N threads")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = [load_checkpoint_model(path) for path in args.checkpoints]
    first = loaded[0][1]
    for path, (model, ckpt) in zip(args.checkpoints, loaded):
        if model.num_classes != loaded[0][0].num_classes:
            raise UsageError(f"{path} predicts {model.num_classes} classes but {args.checkpoints[0]} "
                             f"predicts {loaded[0][0].num_classes}; an ensemble needs the same classes")
        if args.data is None and ckpt.meta.get("data", {}).get("name") != first.meta.get("data", {}).get("name"):
            raise UsageError(f"{path} was trained on {ckpt.meta.get('data', {}).get('name')} but "
                             f"{args.checkpoints[0]} on {first.meta.get('data', {}).get('name')}")
    data = load_data(args, first.meta, loaded[0][0].dtype.name)
    x, y = data.split(args.split)
    models = [m for m, _ in loaded]
    transforms = [c.preprocess or data.preprocess for _, c in loaded]
    # overflow/invalid warnings would precede the one-line error below (non-finite outputs are reported there)
    with thread_limit(args.threads), np.errstate(over="ignore", invalid="ignore"):
        try:
            report = ev.evaluate_ensemble(models, x, y, transforms=transforms, flip=args.flip,
                                          batch_size=args.batch_size)
        except (TypeError, ValueError) as e:
            raise UsageError(f"{data.name}/{args.split}: {e}") from e
    if report.nonfinite:  # finite weights can still overflow the forward pass
        bad = ", ".join(args.checkpoints[i] for i in report.nonfinite)
        print(f"minivgg ensemble: error: the outputs of {bad} are not finite on {data.name}/{args.split}; "
              "the accuracies would mean nothing", file=sys.stderr)
        return EXIT_NONFINITE
    print(f"{len(models)} models on {data.name} {args.split} split")
    print(ev.format_ensemble_report(report, args.checkpoints))
    return 0
