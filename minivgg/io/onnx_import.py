"""ONNX in: a VGG-shaped ``.onnx`` graph -> a torchvision-layout state dict (needs the optional ``onnx`` package).

Accepted graphs are a chain ``(Conv Relu)+ MaxPool ...  Flatten|Reshape  Gemm Relu [Dropout] Gemm Relu
[Dropout] Gemm`` -- minivgg's own export (:mod:`minivgg.io.onnx_export`) and the ONNX model zoo's VGG
layout. Convs must be stride 1, "same" padding ``K // 2``, one group, no dilation; pools 2x2 stride 2.
Any other node is refused, naming it. Gemm weights become torchvision's ``(D_out, D_in)`` whatever
``transB`` says; the architecture is then inferred from the shapes (:mod:`minivgg.io.torchvision`).

Memory: the protobuf is parsed whole (bounded by the file size); external-data initializers are refused.
"""

from __future__ import annotations

import os

import numpy as np

from .files import CheckpointError, check_input_file

#: Nodes that carry no parameters and change nothing at inference.
_PASS = ("Relu", "Dropout", "Identity", "Flatten", "Reshape")


def _ints(node, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return list(a.ints) if a.ints else a.i if a.type == a.INT else a.f
    return default


def read_onnx_vgg(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A VGG ``.onnx`` -> ``{"features.N.weight": ..., "classifier.6.bias": ...}`` (torchvision layout)."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise ImportError("reading .onnx needs the onnx package: pip install 'minivgg[onnx]'") from None
    source = os.fspath(path)
    check_input_file(path, "weights file")
    try:
        model = onnx.load(source, load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends: not an ONNX file
        raise CheckpointError(f"{source}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    inits = {}
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            raise CheckpointError(f"{source}: initializer {t.name} is stored in an external file; minivgg reads "
                                  "self-contained .onnx files only")
        inits[t.name] = numpy_helper.to_array(t)

    def param(node, i: int, what: str) -> np.ndarray:
        if len(node.input) <= i or node.input[i] not in inits:
            raise CheckpointError(f"{source}: node {node.name or node.op_type} ({node.op_type}) has no constant {what}")
        return inits[node.input[i]]

    state: dict[str, np.ndarray] = {}
    index, gemms = 0, 0
    for node in model.graph.node:
        label = f"node {node.name!r} ({node.op_type})" if node.name else f"a {node.op_type} node"
        if node.op_type == "Conv":
            w = param(node, 0 + 1, "weight")
            k = w.shape[2] if w.ndim == 4 else 0
            if (w.ndim != 4 or w.shape[2] != w.shape[3] or _ints(node, "strides", [1, 1]) != [1, 1]
                    or _ints(node, "pads", [0] * 4) != [k // 2] * 4 or _ints(node, "group", 1) != 1
                    or _ints(node, "dilations", [1, 1]) != [1, 1]):
                raise CheckpointError(f"{source}: {label} is not a VGG conv (square kernel, stride 1, padding K//2, "
                                      "one group, no dilation)")
            b = param(node, 2, "bias") if len(node.input) > 2 else np.zeros(w.shape[0], w.dtype)
            state[f"features.{index}.weight"], state[f"features.{index}.bias"] = w, b
            index += 2  # torchvision: Conv2d, ReLU
        elif node.op_type == "MaxPool":
            if _ints(node, "kernel_shape", None) != [2, 2] or _ints(node, "strides", [1, 1]) != [2, 2] \
                    or any(_ints(node, "pads", [0] * 4)):
                raise CheckpointError(f"{source}: {label} is not VGG's 2x2 stride-2 max-pool")
            index += 1
        elif node.op_type == "Gemm":
            if gemms == 3:
                raise CheckpointError(f"{source}: {label} is a fourth Gemm; VGG has three dense layers")
            if _ints(node, "transA", 0) or _ints(node, "alpha", 1.0) != 1.0 or _ints(node, "beta", 1.0) != 1.0:
                raise CheckpointError(f"{source}: {label} has transA/alpha/beta other than 0/1/1")
            w, b = param(node, 1, "weight"), param(node, 2, "bias")
            w = w if _ints(node, "transB", 0) else w.T  # torchvision Linear: (D_out, D_in)
            state[f"classifier.{3 * gemms}.weight"], state[f"classifier.{3 * gemms}.bias"] = w, b
            gemms += 1
        elif node.op_type not in _PASS:
            raise CheckpointError(f"{source}: unsupported {label}; minivgg reads VGG-shaped graphs of "
                                  f"Conv, Relu, MaxPool, Flatten/Reshape, Gemm, Dropout")
    if gemms != 3 or index == 0:
        raise CheckpointError(f"{source}: found {index} feature layers and {gemms} Gemm nodes; a VGG has convs "
                              "and three Gemm")
    return state


__all__ = ["read_onnx_vgg"]
