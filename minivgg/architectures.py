"""The architectures as data: the paper's Table 1 (configs A-E), A-LRN and AlexNet, and the one name parser.

Simonyan & Zisserman (arXiv 1409.1556) Table 1; Krizhevsky et al. 2012 (AlexNet)
for the comparison architecture. The grammar of a config list is in
:mod:`minivgg.configs`, which turns a list into layers; this module only holds
the lists, the names that point at them and the checks of a custom list, so
the tables can grow (AlexNet, A-LRN) without the layer builder growing with them.
"""

from __future__ import annotations

from typing import Any, Sequence, Union

ConfigItem = Union[int, tuple, str]

# One line per configuration, as in Table 1 of the paper.
CONFIGS: dict[str, list[ConfigItem]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [64, 64, "M", 128, 128, "M", 256, 256, (256, 1), "M", 512, 512, (512, 1), "M", 512, 512, (512, 1), "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    # AlexNet: conv (c, k, stride, pad, groups), overlapping pools ("P", 3, 2)
    "AlexNet": [(96, 11, 4, 0, 1), "LRN", ("P", 3, 2), (256, 5, 1, 2, 2), "LRN", ("P", 3, 2),
                (384, 3, 1, 1, 1), (384, 3, 1, 1, 2), (256, 3, 1, 1, 2), ("P", 3, 2)],
    "AlexNet-tv": [(64, 11, 4, 2, 1), ("P", 3, 2), (192, 5, 1, 2, 1), ("P", 3, 2),
                   (384, 3, 1, 1, 1), (256, 3, 1, 1, 1), (256, 3, 1, 1, 1), ("P", 3, 2)],
}

# Readable names for the letters; "vgg16" is config D, not C.
ARCHS: dict[str, str] = {
    "vgg11": "A",
    "vgg13": "B",
    "vgg16c": "C",
    "vgg16": "D",
    "vgg19": "E",
    "vgg11-lrn": "A-LRN",
    "alexnet": "AlexNet",
    "alexnet-tv": "AlexNet-tv",
}

#: Architectures whose layers are named flat (``conv1``, ``norm1``, ``pool1``) rather than by VGG block.
FLAT_NAMES = frozenset({"alexnet", "alexnet-tv"})

#: Input side each named architecture expects when none is given (VGG's 224; AlexNet's original 227).
DEFAULT_INPUT = {"alexnet": 227}


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
        if key.upper() == "A-LRN":
            return "A-LRN", list(CONFIGS["A-LRN"])
        known = ", ".join(list(ARCHS) + list(CONFIGS))
        raise ValueError(f"unknown architecture {config!r}; expected a VGG name, one of {known}, or a custom list")
    items = list(config)
    if not items:
        raise ValueError("custom VGG config is empty; expected a list like [64, 'M', 128, 'M']")
    for i, item in enumerate(items):
        ok = (
            item in ("M", "LRN")
            or _is_pool_item(item)
            or _is_conv5_item(item)
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
                "a (channels, odd kernel) pair, (channels, kernel, stride, pad, groups), "
                "'M' (2x2 max-pool), ('P', kernel, stride) or 'LRN'"
            )
    return "custom", [tuple(i) if isinstance(i, list) else i for i in items]


def _pos(v: Any, minimum: int = 1) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= minimum


def _is_pool_item(item: Any) -> bool:
    """``("P", k, s)``: a k x k max-pool with stride s."""
    return isinstance(item, (tuple, list)) and len(item) == 3 and item[0] == "P" and _pos(item[1]) and _pos(item[2])


def _is_conv5_item(item: Any) -> bool:
    """``(c, k, stride, pad, groups)``; ``groups`` must divide ``c`` (the input side is checked when built)."""
    return (isinstance(item, (tuple, list)) and len(item) == 5 and _pos(item[0]) and _pos(item[1])
            and _pos(item[2]) and _pos(item[3], 0) and _pos(item[4]) and item[0] % item[4] == 0)


def scaled(channels: int, width: float) -> int:
    """Channels after a width multiplier: ``max(1, round(channels * width))``."""
    return max(1, int(round(channels * width)))


def min_input_size(config: Sequence[ConfigItem]) -> int:
    """Smallest square input that every pool of ``config`` can halve: ``2 ** pools``."""
    return 2 ** sum(1 for item in config if item == "M" or _is_pool_item(item))
