"""Which VGG a file holds: inferring the :class:`~minivgg.configs.VGGConfig` from shapes, and checking fit.

A torchvision or Keras file carries no architecture record, only arrays. The
conv layout (channels per conv, a pool wherever the indices skip one) and the
dense shapes fix it: fc6's input ``C5 * s * s`` gives ``input_size = s * 2**pools``.
Every reader then checks each parameter's name and shape against the config's
:func:`~minivgg.configs.layer_specs`, and reports all problems in one message.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Mapping, Sequence

import numpy as np

from ..configs import ARCHS, CONFIGS, FIELDS, VGGConfig, scaled
from .files import CheckpointError

#: The configs torchvision (and Keras, for 16/19) publish weights for, tried in this order.
_NAMED = ("vgg11", "vgg13", "vgg16", "vgg19")

#: What a caller may pass as ``arch=`` to override what a file's shapes say.
ArchOverride = Any  # str | list | Mapping | VGGConfig | None


def config_from_layout(layout: list, in_channels: int, fc6_in: int, fc_width: int, num_classes: int,
                       source: str) -> VGGConfig:
    """The config of an observed conv layout (channels as found, with ``"M"``s) and dense shapes.

    A layout that is a paper config at some width multiplier gets the paper's
    name (``vgg16`` at width 0.25, say); any other is ``custom``.
    """
    convs = [item for item in layout if item != "M"]
    pools = layout.count("M")
    last = convs[-1] if isinstance(convs[-1], int) else convs[-1][0]
    cells, rem = divmod(fc6_in, last)
    side = math.isqrt(cells) if cells > 0 else 0
    if rem or side * side != cells or side == 0:
        raise CheckpointError(f"{source}: fc6 takes {fc6_in} inputs, which is not {last} channels x a square grid; "
                              "the dense part does not match the conv part")
    fields = dict(num_classes=num_classes, input_size=side * 2 ** pools, in_channels=in_channels,
                  fc_width=fc_width)
    for name in _NAMED:  # prefer the paper's name, possibly with a width multiplier
        ref = CONFIGS[ARCHS[name]]
        if [i == "M" for i in ref] != [i == "M" for i in layout] or not all(isinstance(i, int) for i in convs):
            continue
        width = convs[0] / ref[0]
        if all(scaled(r, width) == c for r, c in zip((i for i in ref if i != "M"), convs)):
            return _config(source, arch=name, width=1.0 if width == 1 else width, **fields)
    return _config(source, arch="custom", layers=tuple(layout), **fields)


def _config(source: str, **fields: Any) -> VGGConfig:
    try:
        return VGGConfig(**fields)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: the shapes describe no valid VGG: {exc}") from None


def apply_arch(inferred: VGGConfig, arch: ArchOverride) -> VGGConfig:
    """``inferred`` with a user's override: a name or Table-1 list replaces the layers, a mapping
    of :data:`~minivgg.configs.FIELDS` (or the older ``"config"`` key) replaces those fields,
    a :class:`VGGConfig` replaces everything.

    Raises
    ------
    ValueError
        Unknown names or fields, invalid values (before any file is touched further).
    """
    if arch is None:
        return inferred
    if isinstance(arch, VGGConfig):
        return arch
    if isinstance(arch, Mapping):
        fields = dict(arch)
        if "config" in fields:  # the key older minivgg versions used for the name or list
            fields.update(_layers_fields(fields.pop("config")))
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise ValueError(f"arch has unknown fields {unknown}; expected some of {list(FIELDS)}")
        if "arch" in fields and "layers" not in fields:
            fields["layers"] = ()
        return replace(inferred, **fields)
    return replace(inferred, **_layers_fields(arch))


def _layers_fields(name_or_list: str | Sequence) -> dict:
    if isinstance(name_or_list, str):
        VGGConfig(arch=name_or_list)  # ValueError naming the known architectures
        return {"arch": name_or_list, "layers": ()}
    return {"arch": "custom", "layers": tuple(tuple(i) if isinstance(i, list) else i for i in name_or_list)}


def expected_shapes(config: VGGConfig) -> dict[str, tuple]:
    """``{"conv1_1.w": (F, C, KH, KW), ..., "fc8.b": (num_classes,)}`` of ``config``."""
    shapes = {}
    for s in config.specs():
        if s.weight_shape is not None:
            shapes[f"{s.name}.w"], shapes[f"{s.name}.b"] = s.weight_shape, s.bias_shape
    return shapes


def fit_problems(expected: Mapping[str, tuple], params: Mapping[str, np.ndarray], *, wrong: str,
                 missing: str, extra: str) -> str | None:
    """Compare ``params`` with ``expected`` shapes; ``None`` if they fit, else one line listing the problems.

    ``wrong`` is a format with ``{want}`` and ``{got}``; ``missing``/``extra``
    describe a name on one side only. At most ten problems are spelled out.
    """
    problems = [f"{k}: " + wrong.format(want=tuple(expected[k]), got=tuple(params[k].shape))
                for k in expected if k in params and tuple(params[k].shape) != tuple(expected[k])]
    problems += [f"{k}: {missing}" for k in expected if k not in params]
    problems += [f"{k}: {extra}" for k in params if k not in expected]
    if not problems:
        return None
    more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
    return "; ".join(problems[:10]) + more


def check_fit(params: Mapping[str, np.ndarray], config: VGGConfig, source: str) -> None:
    """Every name and shape of ``params`` against ``config``; one CheckpointError listing all problems."""
    problems = fit_problems(expected_shapes(config), params, wrong="expected {want}, file has {got}",
                            missing="missing", extra="not a parameter of this architecture")
    if problems:
        raise CheckpointError(f"{source}: weights do not fit {config.describe()}: {problems}")
