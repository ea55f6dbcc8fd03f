"""The paper's Table 1 as data, and the one loop that turns a config into layers.

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition" (arXiv 1409.1556), Table 1: configurations A-E. cs231n lecture 9
calls D "VGG-16" and E "VGG-19".

A config is a list read left to right:

* an ``int`` ``c``          -- a 3x3 convolution, stride 1, pad 1, to ``c`` channels,
  followed by a ReLU;
* a tuple ``(c, k)``         -- a ``k x k`` convolution (config C's 1x1 convs),
  stride 1, pad ``k // 2``, followed by a ReLU;
* ``"M"``                    -- a 2x2 max-pool with stride 2 (halves H and W).

After the convolutional part every VGG has the same classifier:
flatten -> fc6 -> ReLU -> dropout -> fc7 -> ReLU -> dropout -> fc8.

:func:`layer_specs` is the single place that names layers (``conv1_1`` ...
``pool5``, ``fc6`` ... ``fc8``) and computes every shape; both the model builder
(:mod:`minivgg.vgg`) and the analytic model (:mod:`minivgg.analysis.counts`) read it,
so they cannot disagree about what a "VGG-16" is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

ConfigItem = Union[int, tuple, str]

# One line per configuration, as in Table 1 of the paper.
CONFIGS: dict[str, list[ConfigItem]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [64, 64, "M", 128, 128, "M", 256, 256, (256, 1), "M", 512, 512, (512, 1), "M", 512, 512, (512, 1), "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}

# Readable names for the letters; "vgg16" is config D, not C.
ARCHS: dict[str, str] = {
    "vgg11": "A",
    "vgg13": "B",
    "vgg16c": "C",
    "vgg16": "D",
    "vgg19": "E",
}

#: Number of 2x2 max-pools in every paper config; the input must survive them.
NUM_POOLS = 5


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a VGG, with its shapes fixed by the config and input size.

    Attributes
    ----------
    name:
        The lecture's name: ``conv1_1``, ``relu1_1``, ``pool1``, ``flatten``,
        ``fc6``, ``relu6``, ``drop6``, ..., ``fc8``.
    kind:
        One of ``"conv"``, ``"relu"``, ``"pool"``, ``"flatten"``, ``"dense"``,
        ``"dropout"``.
    in_shape, out_shape:
        Per-image shapes: ``(C, H, W)`` for the convolutional part, ``(D,)``
        after flattening.
    kernel, stride, pad:
        Window size, stride and zero padding (conv and pool; 0 otherwise).
    in_channels, out_channels:
        Conv channels or dense in/out features (0 for parameter-free layers).
    p:
        Drop probability (dropout only).
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

    @property
    def weight_shape(self) -> tuple | None:
        """Shape of the weight: ``(F, C, KH, KW)`` for conv, ``(D_in, D_out)`` for dense."""
        if self.kind == "conv":
            return (self.out_channels, self.in_channels, self.kernel, self.kernel)
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
        return _prod(self.weight_shape) + _prod(self.bias_shape)

    @property
    def macs(self) -> int:
        """Forward multiply-accumulates for ONE image (multiply by the batch for N images).

        conv: ``H_out * W_out * F * KH * KW * C`` (every output value is a
        ``C*KH*KW`` dot product); dense: ``D_in * D_out``; every other layer 0
        (its comparisons and additions are counted separately by the analysis).
        FLOPs are ``2 * macs``. Backward costs twice the forward (``dx`` and ``dw``).
        """
        if self.kind == "conv":
            _, ho, wo = self.out_shape
            return ho * wo * self.out_channels * self.kernel * self.kernel * self.in_channels
        if self.kind == "dense":
            return self.in_channels * self.out_channels
        return 0


def _prod(shape: Sequence[int]) -> int:
    n = 1
    for dim in shape:
        n *= dim
    return n


def resolve_config(config: str | Sequence[ConfigItem]) -> tuple[str, list[ConfigItem]]:
    """Turn ``"vgg16"``, ``"D"`` or a custom list into ``(label, list)``.

    Raises
    ------
    ValueError
        For an unknown name or a malformed custom list.
    """
    if isinstance(config, str):
        key = config.strip()
        if key.lower() in ARCHS:
            return key.lower(), list(CONFIGS[ARCHS[key.lower()]])
        if key.upper() in CONFIGS and len(key) == 1:
            return key.upper(), list(CONFIGS[key.upper()])
        known = ", ".join(list(ARCHS) + list(CONFIGS))
        raise ValueError(f"unknown VGG architecture {config!r}; expected one of {known} or a custom list")
    items = list(config)
    if not items:
        raise ValueError("custom VGG config is empty; expected a list like [64, 'M', 128, 'M']")
    for i, item in enumerate(items):
        ok = (
            item == "M"
            or (isinstance(item, int) and not isinstance(item, bool) and item > 0)
            or (
                isinstance(item, (tuple, list))
                and len(item) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in item)
                and item[1] % 2 == 1
            )
        )
        if not ok:
            raise ValueError(
                f"custom VGG config item {i} is {item!r}; expected a positive int (3x3 conv), "
                "a (channels, odd kernel) pair, or 'M' (2x2 max-pool)"
            )
    return "custom", [tuple(i) if isinstance(i, list) else i for i in items]


def scaled(channels: int, width: float) -> int:
    """Channels after a width multiplier: ``max(1, round(channels * width))``."""
    return max(1, int(round(channels * width)))


def min_input_size(config: Sequence[ConfigItem]) -> int:
    """Smallest square input that every pool of ``config`` can halve: ``2 ** pools``."""
    return 2 ** sum(1 for item in config if item == "M")


def layer_specs(
    config: str | Sequence[ConfigItem] = "vgg16",
    *,
    input_size: int = 224,
    in_channels: int = 3,
    num_classes: int = 1000,
    width: float = 1.0,
    fc_width: int = 4096,
    dropout: float = 0.5,
) -> list[LayerSpec]:
    """Every layer of a VGG, in order, with names and per-image shapes.

    Parameters
    ----------
    config:
        ``"vgg11" | "vgg13" | "vgg16c" | "vgg16" | "vgg19"``, a letter ``"A"``-``"E"``,
        or a custom list in the format of :data:`CONFIGS`.
    input_size:
        Side of the square input image (224 in the paper). Must be at least
        ``2 ** (number of pools)`` so every pool has something to halve.
    in_channels:
        Image channels (3 for RGB).
    num_classes:
        Outputs of fc8.
    width:
        Multiplier on every conv's channel count (1.0 = the paper).
    fc_width:
        Width of fc6 and fc7 (4096 in the paper).
    dropout:
        Drop probability after fc6 and fc7 (0.5 in the paper); 0 removes
        nothing, the dropout layers stay so names do not shift.

    Returns
    -------
    list of LayerSpec
        Conv blocks are numbered by pool: ``conv{block}_{i}``, ``relu{block}_{i}``,
        ``pool{block}``. Then ``flatten, fc6, relu6, drop6, fc7, relu7, drop7, fc8``.
    """
    _, items = resolve_config(config)
    for label, value in (("input_size", input_size), ("in_channels", in_channels),
                         ("num_classes", num_classes), ("fc_width", fc_width)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"VGG {label} must be a positive int, got {value!r}")
    if not (isinstance(width, (int, float)) and width > 0):
        raise ValueError(f"VGG width multiplier must be > 0, got {width!r}")
    if not (0.0 <= float(dropout) < 1.0):
        raise ValueError(f"VGG dropout probability must be in [0, 1), got {dropout!r}")
    need = min_input_size(items)
    if input_size < need:
        pools = sum(1 for item in items if item == "M")
        raise ValueError(
            f"VGG input_size {input_size} is too small for {pools} max-pools; expected at least {need}"
        )

    specs: list[LayerSpec] = []
    c, h, w = in_channels, input_size, input_size
    block, index = 1, 0
    for item in items:
        if item == "M":
            ho, wo = (h - 2) // 2 + 1, (w - 2) // 2 + 1
            specs.append(LayerSpec(f"pool{block}", "pool", (c, h, w), (c, ho, wo), kernel=2, stride=2))
            h, w = ho, wo
            block, index = block + 1, 0
            continue
        out_c, k = (item, 3) if isinstance(item, int) else item
        out_c = scaled(out_c, width)
        index += 1
        pad = k // 2
        ho, wo = h + 2 * pad - k + 1, w + 2 * pad - k + 1
        specs.append(LayerSpec(f"conv{block}_{index}", "conv", (c, h, w), (out_c, ho, wo),
                               kernel=k, stride=1, pad=pad, in_channels=c, out_channels=out_c))
        specs.append(LayerSpec(f"relu{block}_{index}", "relu", (out_c, ho, wo), (out_c, ho, wo)))
        c, h, w = out_c, ho, wo

    d = c * h * w
    specs.append(LayerSpec("flatten", "flatten", (c, h, w), (d,)))
    for n, d_out in ((6, fc_width), (7, fc_width)):
        specs.append(LayerSpec(f"fc{n}", "dense", (d,), (d_out,), in_channels=d, out_channels=d_out))
        specs.append(LayerSpec(f"relu{n}", "relu", (d_out,), (d_out,)))
        specs.append(LayerSpec(f"drop{n}", "dropout", (d_out,), (d_out,), p=float(dropout)))
        d = d_out
    specs.append(LayerSpec("fc8", "dense", (d,), (num_classes,), in_channels=d, out_channels=num_classes))
    return specs


def param_count(specs: Sequence[LayerSpec]) -> int:
    """Total weights + biases of a list of specs (no arrays allocated)."""
    return sum(s.num_params for s in specs)
