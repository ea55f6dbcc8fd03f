"""``minivgg export WEIGHTS_OR_CHECKPOINT model.onnx``: the inference graph as ONNX."""

from __future__ import annotations

import argparse

from . import UsageError
from ._common import arch_name
from ._progress import counter
from .convert import FILE_ERRORS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export weights or a checkpoint as an ONNX inference graph",
                       description="Write Conv/Relu/MaxPool/Flatten/Gemm as model.onnx (opset 17, float32). "
                                   "Needs onnx (pip install 'minivgg[onnx]').")
    p.add_argument("input", help="weights file or checkpoint (.npz, .pth, .pt, .h5, .safetensors, .onnx)")
    p.add_argument("output", help=".onnx file to write")
    p.add_argument("--arch", type=arch_name, default=None,
                   help="architecture (vgg11/13/16/19); inferred from the shapes when omitted")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io.onnx_export import export

    try:
        config = export(args.input, args.output, args.arch, progress=counter(f"reading {args.input}", unit="B"))
    except FILE_ERRORS as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {args.output}: {config.describe()}")
    return 0
