"""``minivgg summary ARCH``: the per-layer table (params, memory, MACs, receptive field) and totals."""

from __future__ import annotations

import argparse

import sys

from ..io.jsonout import dumps
from . import UsageError
from ._common import arch_name, output_path, positive_int, width_multiplier


def add_model_options(p: argparse.ArgumentParser) -> None:
    """--input-size, --batch, --dtype, --width: the options every analysis command shares."""
    p.add_argument("--input-size", type=positive_int, default=None,
                   help="square input side (default: the architecture's, 224; alexnet 227; min 32 for VGG)")
    p.add_argument("--batch", type=positive_int, default=1, help="images per batch (default 1)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="default float32")
    p.add_argument("--width", type=width_multiplier, default=1.0, help="conv channel multiplier (default 1.0)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summary", help="layer table: params, activations, memory, MACs, receptive field",
                       description="Analytic figures of a VGG from its config alone (no activations allocated).")
    p.add_argument("arch", type=arch_name,
                   help="vgg11, vgg13, vgg16c, vgg16, vgg19, vgg11-lrn, alexnet, alexnet-tv or a letter A-E")
    add_model_options(p)
    p.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output format")
    p.add_argument("--plot", metavar="FILE.png", help="also draw memory and parameters per layer (needs matplotlib)")
    p.add_argument("--lecture", action="store_true",
                   help="also show where memory and parameters sit, and the lecture's '93MB' check")
    p.set_defaults(func=run)


def summarize_args(args: argparse.Namespace):
    """``analysis.summarize`` for the parsed options; a bad combination is a UsageError (exit 2)."""
    from ..analysis import summarize

    try:
        return summarize(args.arch, input_size=args.input_size, batch=args.batch, dtype=args.dtype,
                         width=args.width)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    from .. import analysis
    from ..io.files import plot_suffixes

    if args.plot:  # before printing anything: a bad --plot path is found in a second, not after the table
        output_path(args.plot, "--plot", plot_suffixes())
    summary = summarize_args(args)
    if args.format == "json":
        print(dumps(summary.to_dict(), indent=2))
    elif args.format == "csv":
        print(analysis.to_csv(summary), end="")
    else:
        print(analysis.format_table(summary))
        if args.lecture:
            print()
            print(analysis.format_memory_vs_params(summary))
            print()
            print(analysis.format_lecture_memory_check())
    if args.plot:
        from ..analysis.plots import plot_summary

        try:
            path = plot_summary(summary, args.plot)
        except (ImportError, OSError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        print(f"wrote {path}", file=sys.stderr)
    return 0
