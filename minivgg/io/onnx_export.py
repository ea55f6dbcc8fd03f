"""ONNX out: a minivgg model's inference graph as an ``.onnx`` file (needs the optional ``onnx`` package).

One node per layer of :meth:`~minivgg.configs.VGGConfig.specs`, in order:

=========  ==============================================================
minivgg    ONNX (opset 17)
=========  ==============================================================
conv       ``Conv(x, W (F, C, K, K), B)``, strides 1, pads ``K // 2``
relu       ``Relu``
pool       ``MaxPool`` kernel 2, stride 2
flatten    ``Flatten(axis=1)``: ``(N, C, H, W) -> (N, C*H*W)``, row-major, as minivgg
dense      ``Gemm(x, W (D_in, D_out), b)``: ``x @ W + b``, minivgg's own layout (``transB=0``)
dropout    nothing: the graph is inference only (dropout is the identity)
=========  ==============================================================

Input ``input`` ``(N, C, S, S)`` float32 with a symbolic batch, output ``logits`` ``(N, classes)``.
Cost: the parameters are copied once into the protobuf (a VGG-16 file is ~553 MB, protobuf's 2 GB cap is far).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from ..configs import VGGConfig
from ..layers import LRN
from .files import atomic_write, check_output_path

OPSET = 17
ONNX_EXTENSIONS = (".onnx",)


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("writing .onnx needs the onnx package: pip install 'minivgg[onnx]'") from None
    return onnx


def onnx_model(params: Mapping[str, np.ndarray], config: VGGConfig):
    """The ``onnx.ModelProto`` of a VGG with ``params`` (minivgg names, float32) and ``config``; checked by ``onnx.checker``."""
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, x = [], [], "input"
    for spec in config.specs():
        out = spec.name
        if spec.kind in ("conv", "dense"):
            w, b = f"{spec.name}.w", f"{spec.name}.b"
            inits += [numpy_helper.from_array(np.asarray(params[w], np.float32), w),
                      numpy_helper.from_array(np.asarray(params[b], np.float32), b)]
            if spec.kind == "conv":
                nodes.append(helper.make_node("Conv", [x, w, b], [out], name=spec.name,
                                              kernel_shape=[spec.kernel] * 2, strides=[spec.stride] * 2,
                                              pads=[spec.pad] * 4, group=spec.groups))
            else:
                nodes.append(helper.make_node("Gemm", [x, w, b], [out], name=spec.name, transB=0))
        elif spec.kind == "relu":
            nodes.append(helper.make_node("Relu", [x], [out], name=spec.name))
        elif spec.kind == "lrn":
            # ONNX's LRN divides alpha by size (as Caffe and torch do); minivgg's, like the paper's, does
            # not: alpha_onnx = size * alpha_paper (see minivgg.ops.lrn).
            lrn = LRN(spec.name, spec.kernel)  # the constants the model itself uses for this layer
            nodes.append(helper.make_node("LRN", [x], [out], name=spec.name, size=lrn.size,
                                          alpha=lrn.size * lrn.alpha, beta=lrn.beta, bias=lrn.k))
        elif spec.kind == "pool":
            nodes.append(helper.make_node("MaxPool", [x], [out], name=spec.name,
                                          kernel_shape=[spec.kernel] * 2, strides=[spec.stride] * 2))
        elif spec.kind == "flatten":
            nodes.append(helper.make_node("Flatten", [x], [out], name=spec.name, axis=1))
        elif spec.kind == "dropout":
            continue  # inference graph: dropout is the identity
        else:
            raise ValueError(f"onnx_model: layer {spec.name} of kind {spec.kind!r} has no ONNX mapping yet")
        x = out
    nodes[-1].output[0] = "logits"
    graph = helper.make_graph(
        nodes, f"minivgg_{config.arch}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                       ["N", config.in_channels, config.input_size, config.input_size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", config.num_classes])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="minivgg",
                              doc_string=f"minivgg {config.describe()}")
    model.ir_version = 8  # what onnxruntime >= 1.10 reads; opset 17 needs IR >= 8
    onnx.checker.check_model(model)
    return model


def write_onnx(path: str | os.PathLike, params: Mapping[str, np.ndarray], config: VGGConfig) -> Path:
    """Write the inference graph of ``params``/``config`` to ``path`` (``.onnx``), atomically."""
    out = check_output_path(path, "output", ONNX_EXTENSIONS)
    data = onnx_model(params, config).SerializeToString()
    return atomic_write(out, lambda fh: fh.write(data))


def export(in_path: str | os.PathLike, out_path: str | os.PathLike, arch=None, *, progress=None) -> VGGConfig:
    """Any weights file or checkpoint minivgg reads -> an ``.onnx`` inference graph. Returns the architecture."""
    from .weights import read_weights

    _onnx()  # fail before reading a 500 MB input
    check_output_path(out_path, "output", ONNX_EXTENSIONS)
    params, config = read_weights(in_path, arch, progress=progress)
    write_onnx(out_path, params, config)
    return config


__all__ = ["OPSET", "onnx_model", "write_onnx", "export"]
