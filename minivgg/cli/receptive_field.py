"""``minivgg receptive-field ARCH``: receptive field, effective stride and padding per layer."""

from __future__ import annotations

import argparse

from . import UsageError
from ._common import arch_name, positive_int
from ._progress import counter


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("receptive-field", help="receptive field, effective stride and padding of each layer",
                       description="Receptive fields by the recurrences of Araujo et al. (Distill 2019); "
                                   "--measure also measures them on a real model by backpropagation.")
    p.add_argument("arch", type=arch_name, help="vgg11, vgg13, vgg16c, vgg16, vgg19 or a letter A-E")
    p.add_argument("--input-size", type=positive_int, default=None,
                   help="square input side (default: the architecture's, 224; alexnet 227)")
    p.add_argument("--measure", action="store_true",
                   help="measure each pool's field on a real model by backprop (slower: ~30 s for VGG-16)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import format_receptive_fields, receptive_fields

    try:
        rows = receptive_fields(args.arch, args.input_size)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(format_receptive_fields(rows))
    if args.measure:
        import numpy as np

        from ..analysis.verify import verify
        from ..vgg import VGG

        model = VGG(args.arch, input_size=args.input_size, dtype=np.float32, init="he")
        report = verify(model, memory=False, rf_layers="pools", progress=counter("measuring receptive fields"))
        print()
        print(report)
        return 0 if report.ok else 1
    return 0
