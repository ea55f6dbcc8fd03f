"""Real VGG weights in and out: PyTorch checkpoints (read without PyTorch), Keras HDF5, minivgg ``.npz``.

People who study VGG already have the ImageNet weights on disk: torchvision's
``vgg16-397923af.pth`` or Keras' ``vgg16_weights_tf_dim_ordering_tf_kernels.h5``.
This module reads them with NumPy alone and renames them to the lecture's
parameter names (``conv1_1.w`` ... ``fc8.b``, see :mod:`minivgg.vgg`).

File formats
------------
PyTorch zip and legacy stream
    Read by :mod:`minivgg.io.torch_format` (its docstring describes both layouts
    and the allow-list that makes reading them safe).
Keras HDF5 (needs the optional ``h5py``, ``pip install minivgg[keras]``)
    One group per layer, named ``block1_conv1 ... block5_conv3, fc1, fc2,
    predictions``; the group's ``weight_names`` attribute lists its datasets
    (``block1_conv1_W_1:0``/``block1_conv1_b_1:0`` in the original files,
    ``block1_conv1/kernel:0``/``bias:0`` in later ones). Conv kernels are HWIO
    ``(KH, KW, C, F)``; dense kernels are ``(D_in, D_out)`` like minivgg's.
minivgg ``.npz``
    One array per parameter under minivgg's names and layouts, plus
    ``__arch__`` (a 0-d unicode array holding the architecture as JSON) and
    ``__minivgg_format__``. Read with ``allow_pickle=False``.

Key mapping
-----------
torchvision builds ``features`` as (Conv2d, ReLU) per conv and one MaxPool2d
per ``"M"`` (so VGG-16's convs are ``features.0, 2, 5, 7, 10, ...``) and
``classifier`` as Linear 0, ReLU 1, Dropout 2, Linear 3, ReLU 4, Dropout 5,
Linear 6. Its dense weights are ``(D_out, D_in)``; minivgg's are ``(D_in, D_out)``.
Keras' flatten runs over a channels-last ``(H, W, C)`` tensor while minivgg's
runs over ``(C, H, W)``, so fc1's rows are permuted:
``w_minivgg[c*H*W + h*W + w] = w_keras[h*W*C + w*C + c]``.

Cost: reading is one pass over the file; peak memory is about the file size
plus the largest storage (tensors that own their whole storage are not copied;
dense weights are returned as transposed views, not copies).
"""

from __future__ import annotations

import json
import math
import os
import re
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..configs import ARCHS, CONFIGS, layer_specs, min_input_size, resolve_config, scaled
from .files import atomic_write
from .safe_pickle import UnsafePickleError
from .torch_format import CheckpointError, read_torch_checkpoint

__all__ = [
    "CheckpointError", "UnsafePickleError", "ARCH_FIELDS", "TORCH_EXTENSIONS", "KERAS_EXTENSIONS",
    "read_torch_checkpoint", "read_keras_h5", "torchvision_names", "keras_names",
    "infer_torchvision_arch", "infer_keras_arch", "from_torchvision", "to_torchvision", "from_keras",
    "save_npz", "load_npz", "read_weights", "load_into", "load_model", "convert", "describe_arch",
]

NPZ_FORMAT_VERSION = 1
TORCH_EXTENSIONS = (".pth", ".pt")
KERAS_EXTENSIONS = (".h5", ".hdf5")
NPZ_EXTENSIONS = (".npz",)

#: The architecture metadata: exactly the keyword arguments of ``minivgg.vgg.VGG`` that fix the shapes.
ARCH_FIELDS = ("config", "num_classes", "input_size", "width", "fc_width", "in_channels")

#: torchvision's classifier indices of the three Linear layers.
_CLASSIFIER = (("fc6", 0), ("fc7", 3), ("fc8", 6))
#: Keras' names for minivgg's dense layers.
_KERAS_DENSE = (("fc6", "fc1"), ("fc7", "fc2"), ("fc8", "predictions"))
#: The configs torchvision (and Keras, for 16/19) publish weights for.
_NAMED = ("vgg11", "vgg13", "vgg16", "vgg19")


# ---------------------------------------------------------------------------
# Architecture: names, inference from shapes, validation
# ---------------------------------------------------------------------------

def _conv_names(items: list) -> list[str]:
    """minivgg conv names in order, from configs.layer_specs (the one place that names layers)."""
    return [s.name for s in layer_specs(items, input_size=min_input_size(items)) if s.kind == "conv"]


def torchvision_names(config: str | list = "vgg16") -> dict[str, str]:
    """``{minivgg name: torchvision key}``: ``"conv1_1.w" -> "features.0.weight"``, ``"fc8.b" -> "classifier.6.bias"``.

    ``features`` holds a Conv2d and a ReLU per conv (two indices) and one
    MaxPool2d per ``"M"`` (one index); ``classifier`` is Linear 0, ReLU 1,
    Dropout 2, Linear 3, ReLU 4, Dropout 5, Linear 6. torchvision's Linear
    weights are the transpose of minivgg's dense weights.
    """
    _, items = resolve_config(config)
    names: dict[str, str] = {}
    convs = iter(_conv_names(items))
    index = 0
    for item in items:
        if item == "M":
            index += 1
            continue
        name = next(convs)
        names[f"{name}.w"], names[f"{name}.b"] = f"features.{index}.weight", f"features.{index}.bias"
        index += 2
    for name, idx in _CLASSIFIER:
        names[f"{name}.w"], names[f"{name}.b"] = f"classifier.{idx}.weight", f"classifier.{idx}.bias"
    return names


def keras_names(config: str | list = "vgg16") -> dict[str, str]:
    """``{minivgg layer: Keras layer}``.

    ``conv3_2 -> block3_conv2``, ``fc6 -> fc1``, ``fc7 -> fc2``, ``fc8 -> predictions``.
    """
    _, items = resolve_config(config)
    names = {n: "block{}_conv{}".format(*n[4:].split("_")) for n in _conv_names(items)}
    names.update(dict(_KERAS_DENSE))
    return names


def _arch_from_layout(layout: list, in_channels: int, fc6_in: int, fc_width: int, num_classes: int,
                      source: str) -> dict:
    """Architecture dict from the observed conv layout (channels as found, with "M"s) and dense shapes."""
    convs = [item for item in layout if item != "M"]
    pools = layout.count("M")
    last = convs[-1] if isinstance(convs[-1], int) else convs[-1][0]
    cells, rem = divmod(fc6_in, last)
    side = math.isqrt(cells) if cells > 0 else 0
    if rem or side * side != cells or side == 0:
        raise CheckpointError(f"{source}: fc6 takes {fc6_in} inputs, which is not {last} channels x a square grid; "
                              "the dense part does not match the conv part")
    arch = {"config": layout, "num_classes": num_classes, "input_size": side * 2 ** pools, "width": 1.0,
            "fc_width": fc_width, "in_channels": in_channels}
    for name in _NAMED:  # prefer the paper's name, possibly with a width multiplier
        ref = CONFIGS[ARCHS[name]]
        if [i == "M" for i in ref] != [i == "M" for i in layout] or not all(isinstance(i, int) for i in convs):
            continue
        width = convs[0] / ref[0]
        if all(scaled(r, width) == c for r, c in zip((i for i in ref if i != "M"), convs)):
            arch.update(config=name, width=1.0 if width == 1 else width)
            break
    return arch


def infer_torchvision_arch(state: Mapping[str, np.ndarray], source: str = "<state dict>") -> dict:
    """Architecture dict (:data:`ARCH_FIELDS`) of a torchvision-layout VGG state dict, from keys and shapes.

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
    for name, idx in _CLASSIFIER:
        w = state.get(f"classifier.{idx}.weight")
        if w is None or w.ndim != 2:
            raise CheckpointError(f"{source}: classifier.{idx}.weight missing or not 2-D; torchvision's VGG "
                                  "classifier has Linear layers at 0, 3 and 6")
        dense[name] = w.shape  # (D_out, D_in)
    return _arch_from_layout(layout, convs[0][1].shape[1], dense["fc6"][1], dense["fc6"][0],
                             dense["fc8"][0], source)


def describe_arch(arch: Mapping) -> str:
    """One line, e.g. ``vgg16 (num_classes=1000, input_size=224, width=1.0, fc_width=4096, in_channels=3)``."""
    config = arch["config"] if isinstance(arch["config"], str) else f"custom {list(arch['config'])}"
    rest = ", ".join(f"{k}={arch[k]}" for k in ARCH_FIELDS[1:])
    return f"{config} ({rest})"


def _expected_shapes(arch: Mapping, source: str) -> dict[str, tuple]:
    try:
        specs = layer_specs(arch["config"], **{k: arch[k] for k in ARCH_FIELDS[1:]})
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{source}: invalid architecture {dict(arch)!r}: {exc}") from None
    shapes = {}
    for s in specs:
        if s.weight_shape is not None:
            shapes[f"{s.name}.w"], shapes[f"{s.name}.b"] = s.weight_shape, s.bias_shape
    return shapes


def _fit_problems(expected: Mapping[str, tuple], params: Mapping[str, np.ndarray], *, wrong: str,
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


def _check_shapes(params: Mapping[str, np.ndarray], arch: Mapping, source: str) -> None:
    """Every name and shape of ``params`` against ``arch``; one error listing all problems."""
    problems = _fit_problems(_expected_shapes(arch, source), params, wrong="expected {want}, file has {got}",
                             missing="missing", extra="not a parameter of this architecture")
    if problems:
        raise CheckpointError(f"{source}: weights do not fit {describe_arch(arch)}: {problems}")


def _apply_arch(inferred: dict, arch: str | list | Mapping | None) -> dict:
    """Merge a user's ``arch`` (name, config list or dict of :data:`ARCH_FIELDS`) over the inferred one."""
    if arch is None:
        return inferred
    if isinstance(arch, Mapping):
        unknown = set(arch) - set(ARCH_FIELDS)
        if unknown:
            raise ValueError(f"arch has unknown fields {sorted(unknown)}; expected some of {ARCH_FIELDS}")
        return {**inferred, **arch}
    resolve_config(arch)  # ValueError for unknown names, before anything else
    return {**inferred, "config": arch}


def from_torchvision(state: Mapping[str, np.ndarray], arch: str | list | Mapping | None = None,
                     source: str = "<state dict>") -> tuple[dict[str, np.ndarray], dict]:
    """torchvision state dict -> ``(minivgg params, arch)``.

    Conv weights ``(F, C, KH, KW)`` and all biases are taken as they are; Linear
    weights ``(D_out, D_in)`` become transposed views ``(D_in, D_out)``.
    ``arch=None`` infers the architecture; a name (``"vgg16"``) or dict
    overrides it, and every shape is then checked against it.
    """
    meta = _apply_arch(infer_torchvision_arch(state, source), arch)
    names = torchvision_names(meta["config"])
    missing = [t for t in names.values() if t not in state]
    extra = sorted(set(state) - set(names.values()))
    if missing or extra:
        raise CheckpointError(f"{source}: keys do not match torchvision's {describe_arch(meta)}: "
                              f"missing {missing[:6]}, unexpected {extra[:6]}")
    params = {}
    for ours, theirs in names.items():
        arr = state[theirs]
        params[ours] = arr.T if ours.startswith("fc") and ours.endswith(".w") and arr.ndim == 2 else arr
    _check_shapes(params, meta, source)
    return params, meta


def to_torchvision(params: Mapping[str, np.ndarray], config: str | list = "vgg16") -> "OrderedDict[str, np.ndarray]":
    """minivgg params -> torchvision-named arrays in torchvision's layouts (Linear weights transposed back)."""
    names = torchvision_names(config)
    missing = [k for k in names if k not in params]
    if missing:
        raise ValueError(f"to_torchvision: params lack {missing[:6]} for config {config!r}")
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    def torch_order(kv: tuple[str, str]) -> tuple:
        section, index, kind = kv[1].split(".")
        return section != "features", int(index), kind != "weight"  # torch's order: features first, weight then bias

    for ours, theirs in sorted(names.items(), key=torch_order):
        arr = params[ours]
        out[theirs] = np.ascontiguousarray(arr.T) if ours.startswith("fc") and ours.endswith(".w") else arr
    return out


# ---------------------------------------------------------------------------
# Keras HDF5
# ---------------------------------------------------------------------------

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
    source = str(path)

    def text(v: Any) -> str:
        return v.decode("utf-8") if isinstance(v, bytes) else str(v)

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        if not Path(path).exists():
            raise FileNotFoundError(f"{source}: no such file") from None
        raise CheckpointError(f"{source}: not a readable HDF5 file ({exc})") from None
    layers: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with f:
        root = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
        names = [text(n) for n in root.attrs["layer_names"]] if "layer_names" in root.attrs else list(root)
        for name in names:
            group = root[name]
            if "weight_names" in group.attrs:
                arrays = [np.asarray(group[text(w)]) for w in group.attrs["weight_names"]]
            else:  # files written without the attribute: every dataset below the group
                found: list[np.ndarray] = []
                group.visititems(lambda _n, obj: found.append(np.asarray(obj)) if isinstance(obj, h5py.Dataset)
                                 else None)
                arrays = found
            if not arrays:
                continue
            kernels = [a for a in arrays if a.ndim > 1]
            biases = [a for a in arrays if a.ndim == 1]
            if len(kernels) != 1 or len(biases) != 1:
                raise CheckpointError(f"{source}: layer {name} has arrays of shapes {[a.shape for a in arrays]}; "
                                      "expected one kernel and one bias")
            layers[name] = (kernels[0], biases[0])
    return layers


def infer_keras_arch(layers: Mapping[str, tuple], source: str = "<keras weights>") -> dict:
    """Architecture dict from Keras layer names and shapes.

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
    return _arch_from_layout(layout, blocks[1][1].shape[2], fc1.shape[0], fc1.shape[1], fc3.shape[1], source)


def from_keras(layers: Mapping[str, tuple], arch: str | list | Mapping | None = None,
               source: str = "<keras weights>") -> tuple[dict[str, np.ndarray], dict]:
    """Keras layers -> ``(minivgg params, arch)``.

    Conv kernels HWIO ``(KH, KW, C, F)`` -> OIHW ``(F, C, KH, KW)`` (Keras'
    "tf_kernels" are cross-correlations like minivgg's, so no flip). Dense
    kernels are already ``(D_in, D_out)``, but fc1's rows are re-ordered from
    Keras' channels-last flatten ``(H, W, C)`` to minivgg's ``(C, H, W)``.
    """
    meta = _apply_arch(infer_keras_arch(layers, source), arch)
    names = keras_names(meta["config"])
    missing = [k for k in names.values() if k not in layers]
    if missing:
        raise CheckpointError(f"{source}: Keras layers {missing[:6]} missing for {describe_arch(meta)}")
    params: dict[str, np.ndarray] = {}
    for ours, theirs in names.items():
        kernel, bias = layers[theirs]
        if ours.startswith("conv"):
            w = kernel.transpose(3, 2, 0, 1)  # (KH, KW, C, F) -> (F, C, KH, KW)
        elif ours == "fc6":
            c5 = _expected_shapes(meta, source)[[k for k in names if k.startswith("conv")][-1] + ".w"][0]
            cells = kernel.shape[0] // max(c5, 1)
            side = math.isqrt(cells)
            if side * side * c5 != kernel.shape[0]:
                raise CheckpointError(f"{source}: fc1 kernel {kernel.shape} is not (H*W*{c5}, D) for a square grid")
            # Keras row h*W*C + w*C + c  ->  minivgg row c*H*W + h*W + w
            w = kernel.reshape(side, side, c5, -1).transpose(2, 0, 1, 3).reshape(kernel.shape[0], -1)
        else:
            w = kernel
        params[f"{ours}.w"], params[f"{ours}.b"] = w, bias
    _check_shapes(params, meta, source)
    return params, meta


# ---------------------------------------------------------------------------
# minivgg .npz
# ---------------------------------------------------------------------------

def _arch_json(arch: Mapping) -> str:
    missing = [k for k in ARCH_FIELDS if k not in arch]
    if missing:
        raise ValueError(f"architecture metadata lacks {missing}; expected the fields {ARCH_FIELDS}")
    config = arch["config"] if isinstance(arch["config"], str) else [
        list(i) if isinstance(i, tuple) else i for i in arch["config"]]
    return json.dumps({**{k: arch[k] for k in ARCH_FIELDS}, "config": config})


def save_npz(path: str | os.PathLike, params: Mapping[str, np.ndarray], arch_metadata: Mapping) -> None:
    """Write minivgg weights to ``path`` (.npz), atomically (temp file in the same folder + rename).

    Parameters
    ----------
    params : mapping
        ``{"conv1_1.w": (F, C, 3, 3), ..., "fc8.b": (num_classes,)}`` in minivgg layouts.
    arch_metadata : mapping
        The :data:`ARCH_FIELDS` (as returned by :func:`read_weights`, or
        ``{"config": model.arch, ...}``); stored as JSON in ``__arch__``.

    Every shape is checked against the architecture first; nothing is pickled.
    """
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise ValueError(f"{path}: minivgg weights are written as .npz, got suffix {path.suffix!r}")
    meta_text = _arch_json(arch_metadata)
    _check_shapes(params, json.loads(meta_text), str(path))
    arrays = {k: np.asarray(v) for k, v in params.items()}
    for k, v in arrays.items():
        if v.dtype.kind not in "fiu":
            raise TypeError(f"{path}: parameter {k} has non-numeric dtype {v.dtype}")
    arrays["__arch__"] = np.array(meta_text)  # 0-d unicode, loads without pickle
    arrays["__minivgg_format__"] = np.array(NPZ_FORMAT_VERSION)
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


def load_npz(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Read a minivgg ``.npz``: ``(params, arch)``; names and shapes are checked against ``arch``."""
    source = str(path)
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise CheckpointError(f"{source}: holds a single array, not a minivgg .npz archive")
        with z:
            files = list(z.files)
            if "__arch__" not in files:
                raise CheckpointError(f"{source}: no __arch__ record; not a minivgg weights file "
                                      f"(arrays: {files[:6]})")
            version = int(z["__minivgg_format__"]) if "__minivgg_format__" in files else NPZ_FORMAT_VERSION
            if version != NPZ_FORMAT_VERSION:
                raise CheckpointError(f"{source}: minivgg weights format {version}; this minivgg reads "
                                      f"{NPZ_FORMAT_VERSION}")
            meta = json.loads(str(z["__arch__"][()]))
            params = {k: z[k] for k in files if not k.startswith("__")}
    except (zipfile.BadZipFile, EOFError, json.JSONDecodeError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{source}: damaged .npz ({type(exc).__name__}: {exc})") from None
    if not isinstance(meta, dict) or any(k not in meta for k in ARCH_FIELDS):
        raise CheckpointError(f"{source}: __arch__ must hold the fields {ARCH_FIELDS}, got {meta!r}")
    if not isinstance(meta["config"], str):
        meta["config"] = [tuple(i) if isinstance(i, list) else i for i in meta["config"]]
    _check_shapes(params, meta, source)
    return params, meta


# ---------------------------------------------------------------------------
# Any file -> model
# ---------------------------------------------------------------------------

def _kind_of(path: Path) -> str:
    ext = path.suffix.lower()
    if ext in TORCH_EXTENSIONS:
        return "torch"
    if ext in KERAS_EXTENSIONS:
        return "keras"
    if ext in NPZ_EXTENSIONS:
        return "npz"
    raise ValueError(f"{path}: unknown weights file extension {ext!r}; expected one of "
                     f"{TORCH_EXTENSIONS + KERAS_EXTENSIONS + NPZ_EXTENSIONS}")


def read_weights(path: str | os.PathLike, arch: str | list | Mapping | None = None
                 ) -> tuple[dict[str, np.ndarray], dict]:
    """Any supported weights file -> ``(minivgg params, arch)``, chosen by extension.

    ``.pth``/``.pt``: torchvision layout (zip or legacy, read without torch);
    ``.h5``/``.hdf5``: Keras layout (needs h5py); ``.npz``: minivgg's own.
    ``arch`` (a name such as ``"vgg16"``, a config list, or a dict of
    :data:`ARCH_FIELDS`) overrides what is inferred from the shapes.

    Raises
    ------
    FileNotFoundError, CheckpointError (a ValueError), UnsafePickleError, ImportError (h5py missing).
    """
    path = Path(path)
    kind = _kind_of(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    if kind == "torch":
        return from_torchvision(read_torch_checkpoint(path), arch, str(path))
    if kind == "keras":
        return from_keras(read_keras_h5(path), arch, str(path))
    params, meta = load_npz(path)
    if arch is not None:
        meta = _apply_arch(meta, arch)
        _check_shapes(params, meta, str(path))
    return params, meta


def load_into(model: Any, path: str | os.PathLike) -> dict:
    """Load a weights file into an existing ``minivgg.vgg.VGG``, all or nothing.

    Every name and shape is compared with the model first; on any mismatch a
    ValueError lists each offending key with the model's and the file's
    shapes, and the model keeps its old weights. Values are converted to the
    model's dtype. Returns the file's architecture dict.
    """
    params, meta = read_weights(path)
    problems = _fit_problems({k: v.shape for k, v in model.params.items()}, params,
                             wrong="model {want}, file {got}", missing="missing from the file", extra="not in the model")
    if problems:
        raise ValueError(f"{path}: weights for {describe_arch(meta)} do not fit {model!r}: {problems}")
    model.load_params(params)  # validates again (finite values), then assigns
    return meta


def load_model(path: str | os.PathLike, arch: str | list | Mapping | None = None, *, dtype=np.float32,
               **kwargs: Any) -> Any:
    """Build the ``minivgg.vgg.VGG`` a weights file describes and load it.

    ``kwargs`` go to ``VGG`` (e.g. ``algo``, ``dropout``); the shape-fixing
    fields come from the file (or ``arch``).
    """
    from ..vgg import VGG  # floor 4; imported here so reading files never builds a model

    params, meta = read_weights(path, arch)
    kwargs.setdefault("init", "none")  # every weight is about to be overwritten: skip sampling 138M normals
    model = VGG(meta["config"], **{k: meta[k] for k in ARCH_FIELDS[1:]}, dtype=dtype, **kwargs)
    model.load_params(params)
    return model


def convert(in_path: str | os.PathLike, out_path: str | os.PathLike,
            arch: str | list | Mapping | None = None) -> dict:
    """Convert a weights file (``.pth``/``.pt``, ``.h5``, ``.npz``) to minivgg ``.npz``.

    Only ``.npz`` is written: producing a ``.pth`` or ``.h5`` would need torch or
    Keras' writer, and minivgg reads those formats without them. Returns the
    architecture dict. The output is written atomically.
    """
    out = Path(out_path)
    if out.suffix.lower() not in NPZ_EXTENSIONS:
        raise ValueError(f"{out}: minivgg converts to .npz only (got {out.suffix or 'no suffix'!r}); "
                         "writing .pth/.h5 would need torch/Keras")
    params, meta = read_weights(in_path, arch)
    save_npz(out, params, meta)
    return meta
