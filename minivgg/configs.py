"""The paper's Table 1 as data, and the one loop that turns a config into layers.

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition" (arXiv 1409.1556), Table 1: configurations A-E. cs231n lecture 9
calls D "VGG-16" and E "VGG-19".

A config is a list read left to right:

* an ``int`` ``c``          -- a 3x3 convolution, stride 1, pad 1, to ``c`` channels,
  followed by a ReLU;
* a tuple ``(c, k)``         -- a ``k x k`` convolution (config C's 1x1 convs),
  stride 1, pad ``k // 2``, followed by a ReLU;
* ``"M"``                    -- a 2x2 max-pool with stride 2 (halves H and W);
* ``"LRN"``                  -- AlexNet's local response normalisation across
  channels with the paper's constants (size 5, alpha 1e-4, beta 0.75, k 2;
  :mod:`minivgg.ops.lrn`), no parameters (config A-LRN, ``vgg11-lrn``);
* ``("P", k, s)``            -- a ``k x k`` max-pool with stride ``s`` (AlexNet's
  overlapping 3x3/2);
* ``(c, k, s, p, g)``        -- a ``k x k`` conv to ``c`` channels, stride ``s``,
  pad ``p``, ``g`` channel groups (AlexNet's 11x11/4 and two-GPU convs), then a ReLU.

AlexNet (Krizhevsky et al. 2012) is kept here as a comparison architecture
(``"alexnet"``: the two-GPU original, 227x227 input, 60,965,224 parameters;
``"alexnet-tv"``: torchvision's single-GPU variant, 224x224, 61,100,840). Its
layers are named flat, as in Caffe: ``conv1`` ... ``conv5``, ``norm1``,
``norm2``, ``pool1``, ``pool2``, ``pool5`` (a norm or pool takes the number of
the conv before it). torchvision's ``AdaptiveAvgPool2d((6, 6))`` is not a
layer here: at 224 pool5 is already 6x6, where it is the identity.

After the convolutional part every VGG has the same classifier:
flatten -> fc6 -> ReLU -> dropout -> fc7 -> ReLU -> dropout -> fc8.

:class:`VGGConfig` is the one architecture record (a Table-1 list plus the
input, class count and widths); :func:`layer_specs` is the single place that
names layers (``conv1_1`` ... ``pool5``, ``fc6`` ... ``fc8``) and computes every
shape, and :class:`LayerSpec` holds the count formulas (parameters, MACs). The
model builder (:mod:`minivgg.vgg`), the file formats (:mod:`minivgg.io`), the
analytic model (:mod:`minivgg.analysis`) and the benchmark all read them, so
they cannot disagree about what a "VGG-16" is. The lists themselves and the
name parser live in :mod:`minivgg.architectures` (re-exported here).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np

from .architectures import (ARCHS, CONFIGS, DEFAULT_INPUT, FLAT_NAMES, ConfigItem, _is_pool_item,  # noqa: F401
                            min_input_size, resolve_config, scaled)
from .ops import conv_output_size, pool_output_size


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a VGG, with its shapes fixed by the config and input size.

    Attributes
    ----------
    name:
        The lecture's name: ``conv1_1``, ``relu1_1``, ``pool1``, ``flatten``,
        ``fc6``, ``relu6``, ``drop6``, ..., ``fc8`` (AlexNet: ``conv1``, ``norm1``, ``pool1``, ...).
    kind:
        One of ``"conv"``, ``"relu"``, ``"lrn"``, ``"pool"``, ``"flatten"``, ``"dense"``,
        ``"dropout"``.
    in_shape, out_shape:
        Per-image shapes: ``(C, H, W)`` for the convolutional part, ``(D,)``
        after flattening.
    kernel, stride, pad:
        Window size, stride and zero padding (conv and pool; 0 otherwise); for
        ``"lrn"`` ``kernel`` is the channel window (5).
    in_channels, out_channels:
        Conv channels or dense in/out features (0 for parameter-free layers).
    p:
        Drop probability (dropout only).
    groups:
        Conv channel groups (AlexNet's two GPUs: 2); the weight is ``(F, C/groups, K, K)``.
    """

    name: str
    kind: str
    in_shape: tuple
    out_shape: tuple
    kernel: int = 0
    stride: int = 0
    pad: int = 0
    in_channels: int = 0
    out_channels: int = 0
    p: float = 0.0
    groups: int = 1

    @property
    def weight_shape(self) -> tuple | None:
        """Shape of the weight: ``(F, C, KH, KW)`` for conv, ``(D_in, D_out)`` for dense."""
        if self.kind == "conv":
            return (self.out_channels, self.in_channels // self.groups, self.kernel, self.kernel)
        if self.kind == "dense":
            return (self.in_channels, self.out_channels)
        return None

    @property
    def bias_shape(self) -> tuple | None:
        """Shape of the bias, ``(F,)`` or ``(D_out,)``; ``None`` without parameters."""
        return (self.out_channels,) if self.kind in ("conv", "dense") else None

    @property
    def num_params(self) -> int:
        """Weights plus biases of this layer (0 for parameter-free layers)."""
        if self.weight_shape is None:
            return 0
        return math.prod(self.weight_shape) + math.prod(self.bias_shape)

    @property
    def macs(self) -> int:
        """Forward multiply-accumulates for ONE image (multiply by the batch for N images).

        conv: ``H_out * W_out * F * KH * KW * C / groups`` (every output value is a
        ``C/groups*KH*KW`` dot product); dense: ``D_in * D_out``; every other layer 0
        (its comparisons and additions are counted separately by the analysis).
        FLOPs are ``2 * macs``. Backward costs twice the forward (``dx`` and ``dw``).
        """
        if self.kind == "conv":
            _, ho, wo = self.out_shape
            return ho * wo * self.out_channels * self.kernel * self.kernel * (self.in_channels // self.groups)
        if self.kind == "dense":
            return self.in_channels * self.out_channels
        return 0



def _is_count(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class VGGConfig:
    """Everything that decides a VGG's layers, parameter shapes and forward math.

    The one architecture record: :class:`~minivgg.vgg.VGG` is built from it,
    every file minivgg writes stores it (:meth:`to_dict`) and reads it back
    (:meth:`from_dict`), and the analysis counts from it. It is validated once,
    here; an instance that exists is a VGG that can be built.

    Not part of it: the dtype, the initialisation and its seed, the conv
    algorithm -- they change the numbers in the arrays, not the architecture.

    Examples
    --------
    >>> VGGConfig.from_arch("vgg16").num_params
    138357544
    >>> tiny = VGGConfig.from_arch("vgg11", num_classes=10, input_size=32, width=0.125, fc_width=64)
    """

    arch: str = "vgg16"        # "vgg11" | "vgg13" | "vgg16c" | "vgg16" | "vgg19", a letter "A"-"E", or "custom"
    layers: tuple = ()         # Table 1's list, e.g. (64, "M", 128, "M", ...); () = the named arch's
    num_classes: int = 1000    # outputs of fc8 (ImageNet: 1000)
    input_size: int | None = None  # side of the square input (None: 224, AlexNet's 227); >= 2 ** pools
    in_channels: int = 3       # image channels: 3 for RGB, 1 for MNIST
    width: float = 1.0         # multiplier on every conv's channel count (1.0 = the paper)
    fc_width: int = 4096       # width of fc6 and fc7 (the paper: 4096)
    dropout: float = 0.5       # drop probability after fc6 and fc7 (the paper: 0.5)

    def __post_init__(self) -> None:
        label, items = resolve_config(list(self.layers) if self.layers else self.arch)
        if self.layers and self.arch != "custom":
            _, named = resolve_config(self.arch)
            if [tuple(i) if isinstance(i, list) else i for i in self.layers] != named:
                raise ValueError(f"VGGConfig: layers {list(self.layers)} are not {self.arch!r}'s; "
                                 "give arch='custom' for a list of your own")
            label = resolve_config(self.arch)[0]
        object.__setattr__(self, "arch", label)
        object.__setattr__(self, "layers", tuple(items))
        if self.input_size is None:
            object.__setattr__(self, "input_size", DEFAULT_INPUT.get(label, 224))
        for field_name in ("num_classes", "input_size", "in_channels", "fc_width"):
            value = getattr(self, field_name)
            if not _is_count(value) or value < 1:
                raise ValueError(f"VGGConfig {field_name} must be a positive int, got {value!r}")
            object.__setattr__(self, field_name, int(value))
        width = self.width
        if isinstance(width, bool) or not isinstance(width, (int, float, np.floating)) \
                or not math.isfinite(width) or width <= 0:
            raise ValueError(f"VGGConfig width multiplier must be a finite number > 0, got {width!r}")
        object.__setattr__(self, "width", float(width))
        p = self.dropout
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0.0 <= p < 1.0:
            raise ValueError(f"VGGConfig dropout probability must be in [0, 1), got {p!r}")
        object.__setattr__(self, "dropout", float(p))
        need = min_input_size(items)
        if self.input_size < need:
            pools = sum(1 for item in items if item == "M")
            raise ValueError(f"VGGConfig input_size {self.input_size} is too small for {pools} max-pools; "
                             f"expected at least {need}")
        if any(not isinstance(i, int) and len(i) != 2 for i in items if i not in ("M", "LRN")):
            # strided convs and overlapping pools: walk the shapes once to find a layer with nothing left
            for spec in _build_specs(self):
                if min(spec.out_shape) < 1:
                    raise ValueError(f"VGGConfig input_size {self.input_size} is too small: {spec.name} "
                                     f"would output {spec.out_shape}")

    @classmethod
    def from_arch(cls, arch: "str | Sequence[ConfigItem] | VGGConfig" = "vgg16", **fields: Any) -> "VGGConfig":
        """A config from a name (``"vgg16"``, ``"D"``), a custom Table-1 list, or another config.

        ``fields`` override the other attributes (``num_classes=10``, ...);
        an unknown field is a TypeError naming the valid ones.
        """
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise TypeError(f"VGGConfig has no field(s) {unknown}; expected some of {list(FIELDS)}")
        if isinstance(arch, VGGConfig):
            return replace(arch, **fields) if fields else arch
        if isinstance(arch, str):
            return cls(arch=arch, **fields)
        return cls(arch="custom", layers=tuple(arch), **fields)

    # -- derived ------------------------------------------------------------
    def specs(self) -> list[LayerSpec]:
        """Every layer, in order, with names and per-image shapes (:func:`layer_specs`)."""
        return _build_specs(self)

    @property
    def num_params(self) -> int:
        """Weights plus biases, from the shapes alone (no arrays are allocated)."""
        return param_count(self.specs())

    @property
    def num_pools(self) -> int:
        """Number of max-pools (5 in every VGG config, 3 in AlexNet)."""
        return sum(1 for item in self.layers if item == "M" or _is_pool_item(item))

    def describe(self) -> str:
        """One line, e.g. ``vgg16 (num_classes=1000, input_size=224, width=1, fc_width=4096, ...)``."""
        name = self.arch if self.arch != "custom" else f"custom {list(self.layers)}"
        rest = ", ".join(f"{k}={getattr(self, k):g}" if k in ("width", "dropout") else f"{k}={getattr(self, k)}"
                         for k in FIELDS[2:])
        return f"{name} ({rest})"

    # -- files --------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dict (lists, not tuples) that :meth:`from_dict` reads back to an equal config."""
        d = {k: getattr(self, k) for k in FIELDS}
        d["layers"] = [list(i) if isinstance(i, tuple) else i for i in self.layers]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "architecture record") -> "VGGConfig":
        """Read :meth:`to_dict`'s output, or either older layout minivgg wrote.

        * weights files before this record: ``{"config": "vgg16" | [list], "num_classes", "input_size",
          "width", "fc_width", "in_channels"}`` (no dropout: the paper's 0.5);
        * training checkpoints before it: ``{"arch", "config": [list], ..., "dropout", "dtype", "init",
          "seed"}`` (the last three are not architecture and are ignored here).

        Raises
        ------
        ValueError
            Naming ``source``, for unknown fields or invalid values.
        """
        if not isinstance(d, Mapping):
            raise ValueError(f"{source}: expected a dict of architecture fields, got {type(d).__name__}")
        d = dict(d)
        if "layers" not in d and "config" in d:  # an older layout
            config = d.pop("config")
            for k in ("dtype", "init", "seed"):
                d.pop(k, None)
            if isinstance(config, str):
                d.setdefault("arch", config)
            else:
                layers = [tuple(i) if isinstance(i, list) else i for i in config]
                arch = d.get("arch", "custom")
                d["arch"], d["layers"] = arch, layers
                if arch != "custom" and resolve_config(arch)[1] != layers:
                    d["arch"] = "custom"
        unknown = sorted(set(d) - set(FIELDS))
        if unknown:
            raise ValueError(f"{source}: unknown architecture field(s) {unknown}; expected {list(FIELDS)}")
        if "layers" in d:
            d["layers"] = tuple(tuple(i) if isinstance(i, list) else i for i in d["layers"])
        try:
            return cls(**d)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: invalid architecture: {exc}") from None


#: The fields of :class:`VGGConfig`, in order.
FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(VGGConfig))


def layer_specs(
    config: "str | Sequence[ConfigItem] | VGGConfig" = "vgg16",
    *,
    input_size: int | None = None,
    in_channels: int | None = None,
    num_classes: int | None = None,
    width: float | None = None,
    fc_width: int | None = None,
    dropout: float | None = None,
) -> list[LayerSpec]:
    """Every layer of a VGG, in order, with names and per-image shapes.

    Parameters
    ----------
    config:
        A :class:`VGGConfig`, ``"vgg11" | "vgg13" | "vgg16c" | "vgg16" | "vgg19"``,
        a letter ``"A"``-``"E"``, or a custom list in the format of :data:`CONFIGS`.
    input_size, in_channels, num_classes, width, fc_width, dropout:
        Override the config's fields (see :class:`VGGConfig`; unset = the
        config's, which for a name are the paper's 224, 3, 1000, 1.0, 4096, 0.5).

    Returns
    -------
    list of LayerSpec
        Conv blocks are numbered by pool: ``conv{block}_{i}``, ``relu{block}_{i}``,
        ``pool{block}``. Then ``flatten, fc6, relu6, drop6, fc7, relu7, drop7, fc8``.
    """
    given = dict(input_size=input_size, in_channels=in_channels, num_classes=num_classes, width=width,
                 fc_width=fc_width, dropout=dropout)
    return VGGConfig.from_arch(config, **{k: v for k, v in given.items() if v is not None}).specs()


def _build_specs(cfg: VGGConfig) -> list[LayerSpec]:
    """The one loop that names every layer and tracks ``(C, H, W)`` through the config."""
    specs: list[LayerSpec] = []
    c, h, w = cfg.in_channels, cfg.input_size, cfg.input_size
    block, index = 1, 0
    flat = cfg.arch in FLAT_NAMES  # AlexNet: conv1..conv5; a norm/pool is numbered by the conv before it
    convs = 0
    for item in cfg.layers:
        if item == "LRN":
            tag = f"{convs}" if flat else f"{block}_{index}"
            specs.append(LayerSpec(f"norm{tag}", "lrn", (c, h, w), (c, h, w), kernel=5))
            continue
        if item == "M" or _is_pool_item(item):
            k, st = (2, 2) if item == "M" else (item[1], item[2])
            ho, wo = pool_output_size(h, k, st), pool_output_size(w, k, st)
            specs.append(LayerSpec(f"pool{convs if flat else block}", "pool", (c, h, w), (c, ho, wo),
                                   kernel=k, stride=st))
            h, w = ho, wo
            block, index = block + 1, 0
            continue
        if isinstance(item, int):
            out_c, k, st, pad, groups = item, 3, 1, 1, 1
        elif len(item) == 2:
            out_c, k = item
            st, pad, groups = 1, k // 2, 1  # "same" padding: VGG's convs keep H and W, pools halve them
        else:
            out_c, k, st, pad, groups = item
        out_c = scaled(out_c, cfg.width) if groups == 1 else max(groups, scaled(out_c // groups, cfg.width) * groups)
        if c % groups:
            raise ValueError(f"VGGConfig: conv {convs + 1} has {groups} groups but {c} input channels; "
                             "groups must divide them")
        index, convs = index + 1, convs + 1
        tag = f"{convs}" if flat else f"{block}_{index}"
        ho, wo = conv_output_size(h, k, st, pad), conv_output_size(w, k, st, pad)
        specs.append(LayerSpec(f"conv{tag}", "conv", (c, h, w), (out_c, ho, wo),
                               kernel=k, stride=st, pad=pad, in_channels=c, out_channels=out_c, groups=groups))
        specs.append(LayerSpec(f"relu{tag}", "relu", (out_c, ho, wo), (out_c, ho, wo)))
        c, h, w = out_c, ho, wo

    d = c * h * w
    specs.append(LayerSpec("flatten", "flatten", (c, h, w), (d,)))
    for n in (6, 7):
        specs.append(LayerSpec(f"fc{n}", "dense", (d,), (cfg.fc_width,), in_channels=d, out_channels=cfg.fc_width))
        specs.append(LayerSpec(f"relu{n}", "relu", (cfg.fc_width,), (cfg.fc_width,)))
        specs.append(LayerSpec(f"drop{n}", "dropout", (cfg.fc_width,), (cfg.fc_width,), p=cfg.dropout))
        d = cfg.fc_width
    specs.append(LayerSpec("fc8", "dense", (d,), (cfg.num_classes,), in_channels=d, out_channels=cfg.num_classes))
    return specs


def param_count(specs: Sequence[LayerSpec]) -> int:
    """Total weights + biases of a list of specs (no arrays allocated)."""
    return sum(s.num_params for s in specs)
