"""torchvision's VGG state dicts <-> minivgg parameters (the keys come from :func:`minivgg.vgg.torchvision_keys`).

torchvision builds ``features`` as (Conv2d, ReLU) per conv and one MaxPool2d
per ``"M"`` (so VGG-16's convs are ``features.0, 2, 5, 7, 10, ...``) and
``classifier`` as Linear 0, ReLU 1, Dropout 2, Linear 3, ReLU 4, Dropout 5,
Linear 6. Its Linear weights are ``(D_out, D_in)``; minivgg's dense weights
are ``(D_in, D_out)``, so they are transposed (as views, not copies).
The file itself is read by :mod:`minivgg.io.torch_format`, without PyTorch.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Mapping

import numpy as np

from ..configs import VGGConfig
from ..vgg import torchvision_keys
from .architecture import ArchOverride, apply_arch, check_fit, config_from_layout
from .files import CheckpointError

#: torchvision's classifier indices of the three Linear layers.
_LINEAR_INDEX = (("fc6", 0), ("fc7", 3), ("fc8", 6))


def _is_dense_weight(name: str) -> bool:
    return name.startswith("fc") and name.endswith(".w")


def infer_torchvision_arch(state: Mapping[str, np.ndarray], source: str = "<state dict>") -> VGGConfig:
    """The :class:`VGGConfig` of a torchvision-layout VGG state dict, from its keys and shapes.

    Conv positions give the pools (an index gap of 3 instead of 2 between
    convs is a MaxPool2d); torchvision's configs all end with one pool.
    fc6's input ``C5 * s * s`` gives ``input_size = s * 2**pools`` (s = 7: 224).
    """
    if any(k.endswith("running_mean") for k in state):
        raise CheckpointError(f"{source}: batch-norm VGG (vgg*_bn) checkpoints are not supported; "
                              "minivgg builds the paper's VGG without batch norm")
    convs = sorted((int(m.group(1)), v) for k, v in state.items()
                   if (m := re.fullmatch(r"features\.(\d+)\.weight", k)))
    if not convs:
        raise CheckpointError(f"{source}: no features.N.weight keys, not a torchvision VGG "
                              f"(keys start {list(state)[:5]})")
    layout: list = []
    expected = 0
    for index, w in convs:
        if w.ndim != 4 or w.shape[2] != w.shape[3] or index < expected:
            raise CheckpointError(f"{source}: features.{index}.weight has shape {w.shape}; expected "
                                  "(F, C, K, K) with convs at least two indices apart")
        layout += ["M"] * (index - expected)  # each skipped index is one MaxPool2d
        layout.append(w.shape[0] if w.shape[2] == 3 else (w.shape[0], w.shape[2]))
        expected = index + 2
    layout.append("M")
    dense = {}
    for name, idx in _LINEAR_INDEX:
        w = state.get(f"classifier.{idx}.weight")
        if w is None or w.ndim != 2:
            raise CheckpointError(f"{source}: classifier.{idx}.weight missing or not 2-D; torchvision's VGG "
                                  "classifier has Linear layers at 0, 3 and 6")
        dense[name] = w.shape  # (D_out, D_in)
    return config_from_layout(layout, convs[0][1].shape[1], dense["fc6"][1], dense["fc6"][0],
                              dense["fc8"][0], source)


def from_torchvision(state: Mapping[str, np.ndarray], arch: ArchOverride = None,
                     source: str = "<state dict>") -> tuple[dict[str, np.ndarray], VGGConfig]:
    """torchvision state dict -> ``(minivgg params, config)``.

    Conv weights ``(F, C, KH, KW)`` and all biases are taken as they are; Linear
    weights ``(D_out, D_in)`` become transposed views ``(D_in, D_out)``.
    ``arch=None`` infers the architecture; a name (``"vgg16"``), list, dict of
    fields or :class:`VGGConfig` overrides it, and every shape is then checked.
    """
    config = apply_arch(infer_torchvision_arch(state, source), arch)
    names = torchvision_keys(config)
    missing = [t for t in names.values() if t not in state]
    extra = sorted(set(state) - set(names.values()))
    if missing or extra:
        raise CheckpointError(f"{source}: keys do not match torchvision's {config.describe()}: "
                              f"missing {missing[:6]}, unexpected {extra[:6]}")
    params = {}
    for ours, theirs in names.items():
        arr = state[theirs]
        params[ours] = arr.T if _is_dense_weight(ours) and arr.ndim == 2 else arr
    check_fit(params, config, source)
    return params, config


def to_torchvision(params: Mapping[str, np.ndarray],
                   config: str | list | VGGConfig = "vgg16") -> "OrderedDict[str, np.ndarray]":
    """minivgg params -> torchvision-named arrays in torchvision's layouts and order (Linear weights transposed back)."""
    names = torchvision_keys(config)
    missing = [k for k in names if k not in params]
    if missing:
        raise ValueError(f"to_torchvision: params lack {missing[:6]} for config {config!r}")

    def torch_order(kv: tuple[str, str]) -> tuple:
        section, index, kind = kv[1].split(".")
        return section != "features", int(index), kind != "weight"  # features first, weight before bias

    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for ours, theirs in sorted(names.items(), key=torch_order):
        arr = params[ours]
        out[theirs] = np.ascontiguousarray(arr.T) if _is_dense_weight(ours) else arr
    return out
