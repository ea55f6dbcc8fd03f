"""``minivgg evaluate``: accuracy and loss of a checkpoint, optionally with test-time flips."""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from ..training import evaluate as ev
from . import EXIT_NONFINITE, UsageError
from ._common import positive_int
from .train import add_data_arguments, load_checkpoint_model, load_data, plural, thread_limit


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="accuracy of a checkpoint on its dataset (optionally with flip averaging)",
                       description="Rebuild the model saved in CHECKPOINT and report its loss and accuracy on a "
                                   "split of its dataset (the one it was trained on unless --data says otherwise). "
                                   "--flip averages the softmax of each image and its mirror image (paper §3.2).")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint.npz written by minivgg train")
    add_data_arguments(p, from_checkpoint=True)
    p.add_argument("--split", choices=("train", "val", "test"), default="test",
                   help="which split to score (default test: shapes from data seed (s, 2), the official test set "
                        "for cifar10/mnist)")
    p.add_argument("--flip", action="store_true", help="also report test-time horizontal-flip averaging")
    p.add_argument("--batch-size", type=positive_int, default=250, help="images per forward pass (default 250)")
    p.add_argument("--threads", type=positive_int, help="limit kernels and BLAS to N threads")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model, ckpt = load_checkpoint_model(args.checkpoint)
    data = load_data(args, ckpt.meta, model.dtype.name)
    pre = ckpt.preprocess or data.preprocess
    x, y = data.split(args.split)
    # overflow/invalid warnings would precede the one-line error below (non-finite outputs are reported there)
    with thread_limit(args.threads), np.errstate(over="ignore", invalid="ignore"):
        try:
            loss, acc = ev.loss_and_accuracy(model, x, y, transform=pre, batch_size=args.batch_size)
            flip_acc = (ev.accuracy(ev.predict_proba(model, x, transform=pre, flip=True, batch_size=args.batch_size), y)
                        if args.flip else None)
        except (TypeError, ValueError) as e:  # wrong image size/channels, labels out of range
            raise UsageError(f"{args.checkpoint} on {data.name}/{args.split}: {e}") from e
    epoch = ckpt.meta.get("epoch")
    trained = plural(epoch, "epoch") if isinstance(epoch, int) else "? epochs"
    print(f"{args.checkpoint}: {ckpt.config.describe()}, trained {trained}")
    if not math.isfinite(loss):  # finite weights can still overflow the forward pass
        print(f"minivgg evaluate: error: {args.checkpoint}: the model's outputs are not finite on {data.name}/"
              f"{args.split} (loss {loss}); its accuracy {acc:.2%} means nothing", file=sys.stderr)
        return EXIT_NONFINITE
    print(f"{data.name} {args.split} split, {len(y):,} images: loss {loss:.4f}, accuracy {acc:.2%}")
    if flip_acc is not None:
        print(f"with test-time flip averaging: accuracy {flip_acc:.2%} ({(flip_acc - acc) * 100:+.2f} points)")
    return 0
