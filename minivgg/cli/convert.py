"""``minivgg convert IN OUT``: weights between formats, chosen by extension."""

from __future__ import annotations

import argparse
import pickle

from . import UsageError
from ._common import arch_name
from ._progress import counter

#: Failures of reading a user's file: all reported on one line with exit status 2.
FILE_ERRORS = (ValueError, TypeError, OSError, ImportError, EOFError, pickle.UnpicklingError)


def add_io_arguments(p: argparse.ArgumentParser, input_help: str, output_help: str) -> None:
    """The ``input output [--arch]`` arguments ``convert`` and ``export`` share."""
    p.add_argument("input", help=input_help)
    p.add_argument("output", help=output_help)
    p.add_argument("--arch", type=arch_name, default=None,
                   help="architecture (vgg11/13/16/19, vgg11-lrn, alexnet, alexnet-tv); "
                        "inferred from the shapes when omitted")


def run_writer(write, args: argparse.Namespace) -> int:
    """``write(input, output, arch, progress=...) -> config``; file errors become one-line exit-2 errors."""
    try:
        config = write(args.input, args.output, args.arch, progress=counter(f"reading {args.input}", unit="B"))
    except FILE_ERRORS as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {args.output}: {config.describe()}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert weights: .pth/.pt, .h5, .npz, .safetensors, .onnx -> .npz or .pth",
                       description="Read a torchvision .pth/.pt (zip or legacy, without PyTorch), a Keras .h5, "
                                   "a minivgg .npz, a timm/torchvision .safetensors or a VGG-shaped .onnx and write "
                                   "minivgg's .npz or a torchvision-layout .pth/.pt (atomically, without PyTorch).")
    add_io_arguments(p, "weights file to read (.pth, .pt, .h5, .npz, .safetensors, .onnx)",
                     ".npz (minivgg) or .pth/.pt (torchvision state dict) file to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io.weights import convert

    return run_writer(convert, args)
