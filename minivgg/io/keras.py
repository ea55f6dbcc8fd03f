"""Keras' VGG weights (HDF5) -> minivgg parameters; reading needs the optional ``h5py``.

Keras files (``vgg16_weights_tf_dim_ordering_tf_kernels.h5``) hold one group
per layer, named ``block1_conv1 ... block5_conv3, fc1, fc2, predictions``; the
group's ``weight_names`` attribute lists its datasets (``block1_conv1_W_1:0`` /
``block1_conv1_b_1:0`` in the original files, ``block1_conv1/kernel:0`` /
``bias:0`` in later ones). Conv kernels are HWIO ``(KH, KW, C, F)``; dense
kernels are ``(D_in, D_out)`` like minivgg's. Keras' flatten runs over a
channels-last ``(H, W, C)`` tensor while minivgg's runs over ``(C, H, W)``, so
fc1's rows are permuted: ``w_minivgg[c*H*W + h*W + w] = w_keras[h*W*C + w*C + c]``.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any, Mapping

import numpy as np

from ..configs import VGGConfig
from .architecture import ArchOverride, apply_arch, check_fit, config_from_layout, expected_shapes
from .files import DEFLATE_MAX_RATIO, CheckpointError, check_input_file

#: Keras' names for minivgg's dense layers.
_KERAS_DENSE = (("fc6", "fc1"), ("fc7", "fc2"), ("fc8", "predictions"))


def keras_names(config: str | list | VGGConfig = "vgg16") -> dict[str, str]:
    """``{minivgg layer: Keras layer}``.

    ``conv3_2 -> block3_conv2``, ``fc6 -> fc1``, ``fc7 -> fc2``, ``fc8 -> predictions``.
    """
    convs = [s.name for s in VGGConfig.from_arch(config).specs() if s.kind == "conv"]
    names = {n: "block{}_conv{}".format(*n[4:].split("_")) for n in convs}
    names.update(dict(_KERAS_DENSE))
    return names


def read_keras_h5(path: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{keras layer name: (kernel, bias)}`` from a Keras weights file (needs h5py).

    Follows Keras' own reader: the root's ``layer_names`` attribute (or the
    ``model_weights`` group of a whole-model file), then each group's
    ``weight_names``; groups without weights (pools, flatten) are skipped.
    The kernel is the array with more than one dimension, the bias the 1-D one.
    """
    try:
        import h5py  # optional extra: only Keras files need it
    except ImportError as exc:
        raise ImportError("reading Keras .h5 weights needs h5py: pip install minivgg[keras]") from exc
    path = check_input_file(path, "Keras weights file")
    source = str(path)

    def text(v: Any) -> str:
        return v.decode("utf-8") if isinstance(v, bytes) else str(v)

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise CheckpointError(f"{source}: not a readable HDF5 file ({exc})") from None
    layers: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    where = "the root"
    try:
        with f:
            root = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
            names = [text(n) for n in root.attrs["layer_names"]] if "layer_names" in root.attrs else list(root)
            for name in names:
                where = f"group {name!r}"
                group = _member(root, name, h5py.Group, source, "group")
                if "weight_names" in group.attrs:
                    arrays = [_read_dataset(_member(group, text(w), h5py.Dataset, source, f"dataset of {name}"),
                                            source) for w in group.attrs["weight_names"]]
                else:  # files written without the attribute: every dataset below the group
                    found: list = []
                    group.visititems(lambda _n, obj: found.append(obj) if isinstance(obj, h5py.Dataset) else None)
                    arrays = [_read_dataset(d, source) for d in found]
                if not arrays:
                    continue
                kernels = [a for a in arrays if a.ndim > 1]
                biases = [a for a in arrays if a.ndim == 1]
                if len(kernels) != 1 or len(biases) != 1:
                    raise CheckpointError(f"{source}: layer {name} has arrays of shapes "
                                          f"{[a.shape for a in arrays]}; expected one kernel and one bias")
                layers[name] = (kernels[0], biases[0])
    except CheckpointError:
        raise
    except (KeyError, AttributeError, TypeError, ValueError, OSError) as exc:  # h5py's errors on odd layouts
        raise CheckpointError(f"{source}: not a Keras weights file: cannot read {where} "
                              f"({type(exc).__name__}: {exc})") from None
    return layers


def _member(group: Any, key: str, kind: type, source: str, what: str) -> Any:
    """``group[key]``, which must exist and be a ``kind`` (h5py Group or Dataset); else a CheckpointError."""
    if key not in group:
        raise CheckpointError(f"{source}: not a Keras weights file: {what} {key!r} is missing "
                              f"(under {group.name!r})")
    obj = group[key]
    if not isinstance(obj, kind):
        raise CheckpointError(f"{source}: not a Keras weights file: {group.name.rstrip('/')}/{key} is a "
                              f"{type(obj).__name__}, expected a {kind.__name__}")
    return obj


def _read_dataset(ds: Any, source: str) -> np.ndarray:
    """A numeric dataset as an ndarray, after checking the file stores (about) the bytes its shape claims.

    HDF5 can declare a terabyte dataset whose chunks were never written (they
    read as the fill value); such a claim is refused before ``np.asarray``
    allocates it. Compressed chunks may expand at most deflate's 1032:1.
    """
    if ds.dtype.kind not in "biuf":
        raise CheckpointError(f"{source}: dataset {ds.name} has dtype {ds.dtype}; Keras weights are numeric")
    need = math.prod(ds.shape or ()) * ds.dtype.itemsize
    stored = ds.id.get_storage_size()
    if need > DEFLATE_MAX_RATIO * stored + (1 << 20):
        raise CheckpointError(f"{source}: dataset {ds.name} claims shape {ds.shape} ({need} bytes) but the file "
                              f"stores {stored} bytes of it")
    return np.asarray(ds)


def infer_keras_arch(layers: Mapping[str, tuple], source: str = "<keras weights>") -> VGGConfig:
    """The :class:`VGGConfig` of Keras layer names and shapes.

    ``block{b}_conv{i}`` (each block ends in a pool), then ``fc1``, ``fc2``, ``predictions``.
    """
    blocks: dict[int, dict[int, np.ndarray]] = {}
    for name, (kernel, _bias) in layers.items():
        m = re.fullmatch(r"block(\d+)_conv(\d+)", name)
        if m:
            blocks.setdefault(int(m.group(1)), {})[int(m.group(2))] = kernel
    if not blocks:
        raise CheckpointError(f"{source}: no block<b>_conv<i> layers, not a Keras VGG (layers: {list(layers)[:6]})")
    missing = [n for _, n in _KERAS_DENSE if n not in layers]
    if missing:
        raise CheckpointError(f"{source}: no {missing} layers; a '_notop' file has no classifier, "
                              "use the full weights file")
    layout: list = []
    for b in range(1, max(blocks) + 1):
        convs = blocks.get(b, {})
        if sorted(convs) != list(range(1, len(convs) + 1)) or not convs:
            raise CheckpointError(f"{source}: block{b} convs are {sorted(convs)}; expected block{b}_conv1, 2, ...")
        for i in sorted(convs):
            k = convs[i]
            if k.ndim != 4 or k.shape[0] != k.shape[1]:
                raise CheckpointError(f"{source}: block{b}_conv{i} kernel has shape {k.shape}; "
                                      "expected HWIO (K, K, C, F)")
            layout.append(k.shape[3] if k.shape[0] == 3 else (k.shape[3], k.shape[0]))
        layout.append("M")
    fc1, fc3 = layers["fc1"][0], layers["predictions"][0]
    return config_from_layout(layout, blocks[1][1].shape[2], fc1.shape[0], fc1.shape[1], fc3.shape[1], source)


def from_keras(layers: Mapping[str, tuple], arch: ArchOverride = None,
               source: str = "<keras weights>") -> tuple[dict[str, np.ndarray], VGGConfig]:
    """Keras layers -> ``(minivgg params, config)``.

    Conv kernels HWIO ``(KH, KW, C, F)`` -> OIHW ``(F, C, KH, KW)`` (Keras'
    "tf_kernels" are cross-correlations like minivgg's, so no flip). Dense
    kernels are already ``(D_in, D_out)``, but fc1's rows are re-ordered from
    Keras' channels-last flatten ``(H, W, C)`` to minivgg's ``(C, H, W)``.
    """
    config = apply_arch(infer_keras_arch(layers, source), arch)
    names = keras_names(config)
    missing = [k for k in names.values() if k not in layers]
    if missing:
        raise CheckpointError(f"{source}: Keras layers {missing[:6]} missing for {config.describe()}")
    params: dict[str, np.ndarray] = {}
    for ours, theirs in names.items():
        kernel, bias = layers[theirs]
        if ours.startswith("conv"):
            w = kernel.transpose(3, 2, 0, 1)  # (KH, KW, C, F) -> (F, C, KH, KW)
        elif ours == "fc6":
            c5 = expected_shapes(config)[[k for k in names if k.startswith("conv")][-1] + ".w"][0]
            cells = kernel.shape[0] // max(c5, 1)
            side = math.isqrt(cells)
            if side * side * c5 != kernel.shape[0]:
                raise CheckpointError(f"{source}: fc1 kernel {kernel.shape} is not (H*W*{c5}, D) for a square grid")
            # Keras row h*W*C + w*C + c  ->  minivgg row c*H*W + h*W + w
            w = kernel.reshape(side, side, c5, -1).transpose(2, 0, 1, 3).reshape(kernel.shape[0], -1)
        else:
            w = kernel
        params[f"{ours}.w"], params[f"{ours}.b"] = w, bias
    check_fit(params, config, source)
    return params, config
