"""``minivgg export WEIGHTS_OR_CHECKPOINT model.onnx``: the inference graph as ONNX."""

from __future__ import annotations

import argparse

from .convert import add_io_arguments, run_writer


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export weights or a checkpoint as an ONNX inference graph",
                       description="Write Conv/Relu/MaxPool/Flatten/Gemm (and LRN and grouped Conv for A-LRN and "
                                   "AlexNet) as model.onnx (opset 17, float32). "
                                   "Needs onnx (pip install 'minivgg[onnx]').")
    add_io_arguments(p, "weights file or checkpoint (.npz, .pth, .pt, .h5, .safetensors, .onnx)", ".onnx file to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io.onnx_export import export

    return run_writer(export, args)
