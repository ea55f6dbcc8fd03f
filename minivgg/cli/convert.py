"""``minivgg convert IN OUT``: weights between formats, chosen by extension."""

from __future__ import annotations

import argparse
import pickle

from . import UsageError
from ._common import arch_name
from ._progress import counter

#: Failures of reading a user's file: all reported on one line with exit status 2.
FILE_ERRORS = (ValueError, TypeError, OSError, ImportError, EOFError, pickle.UnpicklingError)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert weights: .pth/.pt (torchvision), .h5 (Keras), .npz -> .npz",
                       description="Read a torchvision .pth/.pt (zip or legacy, without PyTorch), a Keras .h5 "
                                   "or a minivgg .npz and write minivgg's .npz (atomically).")
    p.add_argument("input", help="weights file to read (.pth, .pt, .h5, .npz)")
    p.add_argument("output", help="minivgg .npz file to write")
    p.add_argument("--arch", type=arch_name, default=None,
                   help="architecture (vgg11/13/16/19); inferred from the shapes when omitted")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io.weights import convert

    try:
        config = convert(args.input, args.output, args.arch, progress=counter(f"reading {args.input}", unit="B"))
    except FILE_ERRORS as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {args.output}: {config.describe()}")
    return 0
