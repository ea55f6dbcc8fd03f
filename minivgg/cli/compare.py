"""``minivgg compare ARCH...``: configurations side by side, and 3x3 stacks vs one large kernel."""

from __future__ import annotations

import argparse

from . import UsageError
from ._common import arch_name, positive_int
from .summary import add_model_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="configs side by side; 3x3 stack vs one large kernel",
                       description="Parameters, MACs and memory of several VGG configurations, and the "
                                   "lecture's comparison of stacked 3x3 convs with one large kernel.")
    p.add_argument("archs", nargs="*", type=arch_name, default=["vgg11", "vgg13", "vgg16", "vgg19"],
                   help="architectures (default: vgg11 vgg13 vgg16 vgg19)")
    add_model_options(p)
    p.add_argument("--channels", type=positive_int, default=256, help="C for the 3x3-stack comparison (default 256)")
    p.add_argument("--depth", type=positive_int, default=3, help="number of stacked 3x3 convs (default 3 -> 7x7)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import compare, format_compare, format_stack_vs_large_kernel, stack_vs_large_kernel

    try:
        rows = compare(args.archs, input_size=args.input_size, batch=args.batch, dtype=args.dtype, width=args.width)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(format_compare(rows))
    print()
    print(format_stack_vs_large_kernel(stack_vs_large_kernel(args.channels, args.depth)))
    return 0
