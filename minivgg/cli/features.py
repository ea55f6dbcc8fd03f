"""``minivgg features``: activations of a named layer (FC7 by default) for a dataset, saved as .npz."""

from __future__ import annotations

import argparse

import numpy as np

from ..io.files import atomic_write
from ..io.npz import NPZ_SUFFIXES
from ..training.transfer import FEATURE_LAYER, extract_features
from . import UsageError
from ._common import output_path, positive_int
from .train import add_data_arguments, load_checkpoint_model, load_data, thread_limit


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("features", help="save a layer's activations (FC7 by default) for a dataset split",
                       description="Run the model saved in CHECKPOINT over a split of a dataset and save the "
                                   "activations of one layer (relu7 = FC7 features by default) with the labels "
                                   "to an .npz file: arrays 'features' (N, D), 'labels' (N,), 'layer', "
                                   "'class_names'. Fit a classifier on them for transfer learning.")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint.npz written by minivgg train")
    p.add_argument("--layer", default=FEATURE_LAYER,
                   help=f"layer name, e.g. relu7 (default), fc6, pool5, conv4_2 (default {FEATURE_LAYER})")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="output file (written atomically)")
    add_data_arguments(p, from_checkpoint=True)
    p.add_argument("--split", choices=("train", "val", "test"), default="val", help="split to run (default val)")
    p.add_argument("--limit", type=positive_int, metavar="N", help="only the first N images of the split")
    p.add_argument("--batch-size", type=positive_int, default=250, help="images per forward pass (default 250)")
    p.add_argument("--threads", type=positive_int, help="limit kernels and BLAS to N threads")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    output_path(args.out, "--out", NPZ_SUFFIXES)  # the rule every .npz writer follows, before any work
    model, ckpt = load_checkpoint_model(args.checkpoint)
    if args.layer not in model.layers.names():
        raise UsageError(f"no layer named {args.layer!r} in {ckpt.config.arch}; layers are {', '.join(model.layers.names())}")
    data = load_data(args, ckpt.meta, model.dtype.name)
    x, y = data.split(args.split)
    if args.limit:
        x, y = x[:args.limit], y[:args.limit]
    with thread_limit(args.threads):
        try:
            feats = extract_features(model, x, args.layer, transform=ckpt.preprocess or data.preprocess,
                                     batch_size=args.batch_size)
        except (TypeError, ValueError) as e:
            raise UsageError(f"{data.name}/{args.split}: {e}") from e
    arrays = {"features": feats, "labels": y, "layer": np.array(args.layer),
              "class_names": np.array(data.class_names)}
    try:
        atomic_write(args.out, lambda f: np.savez(f, **arrays))
    except OSError as e:  # atomic_write's message names args.out
        raise UsageError(str(e)) from None
    print(f"wrote {args.out}: {args.layer} features {feats.shape} {feats.dtype} for {len(y):,} "
          f"{data.name} {args.split} images")
    return 0
