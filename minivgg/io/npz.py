"""minivgg's own file: one ``.npz`` layout for weights and for training checkpoints.

Every file minivgg writes (``minivgg convert``, ``minivgg train``'s
``checkpoint.npz``) has this layout, so every command that takes weights
also takes a training checkpoint. It is read with ``allow_pickle=False``:
nothing in it can run code.

=====================  ==========================================================
entry                  content
=====================  ==========================================================
``__minivgg__``        0-d unicode array holding JSON: ``{"format": 2, "config":
                       VGGConfig.to_dict(), "dtype": "float32", "meta": {...}}``.
                       ``meta`` is ``{}`` for plain weights; a training
                       checkpoint keeps its run state there (training settings,
                       preprocessing, data, epoch, history, generator states).
``param.<name>``       every parameter under the lecture's names (``param.conv1_1.w``)
``optim.<key>``        optimiser state (training checkpoints only)
``sched.<key>``        learning-rate schedule state (training checkpoints only)
``aux.<key>``          auxiliary arrays a tool keeps beside the model, e.g. a
                       localization checkpoint's classification network under
                       ``aux.classifier.<name>`` (its architecture in ``meta``)
=====================  ==========================================================

Older files still load: weights written with ``__arch__`` + bare parameter
names (format 1 of the weights writer), and training checkpoints written with
a ``meta`` entry holding ``"format": 1`` and a ``"model"`` record.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..configs import VGGConfig
from .architecture import check_fit
from .files import CheckpointError, atomic_write, check_input_file, check_output_path, check_zip_member, reading, zip_problem

FORMAT_VERSION = 2
HEADER = "__minivgg__"
#: Prefixes of the array groups after the header.
GROUPS = ("param", "optim", "sched", "aux")
_OLD_WEIGHTS_HEADER, _OLD_CHECKPOINT_HEADER = "__arch__", "meta"
#: The one suffix of minivgg's files (and of every .npz it writes, features included).
NPZ_SUFFIXES = (".npz",)


@dataclass
class MinivggFile:
    """A minivgg ``.npz`` read back.

    Attributes
    ----------
    path : Path
    config : VGGConfig
        The architecture the parameters belong to (already checked against them).
    params : dict
        ``{"conv1_1.w": (F, C, 3, 3), ..., "fc8.b": (num_classes,)}``.
    meta : dict
        Run state of a training checkpoint; ``{}`` for plain weights.
    optim, sched : dict
        Optimiser and schedule ``state_dict`` arrays (empty for plain weights).
    aux : dict
        Auxiliary arrays (``aux.<key>`` entries; empty unless a tool wrote some).
    """

    path: Path
    config: VGGConfig
    params: dict
    meta: dict = field(default_factory=dict)
    optim: dict = field(default_factory=dict)
    sched: dict = field(default_factory=dict)
    aux: dict = field(default_factory=dict)

    @property
    def dtype(self) -> str:
        """The parameters' dtype name (``float32`` unless the file was written from a float64 model)."""
        first = next(iter(self.params.values()), None)
        return first.dtype.name if first is not None else "float32"

    @property
    def is_checkpoint(self) -> bool:
        """True for a training checkpoint (it carries run state), False for plain weights."""
        return bool(self.meta)


def write_minivgg(path: str | os.PathLike, config: VGGConfig, params: Mapping[str, np.ndarray], *,
                  meta: Mapping[str, Any] | None = None, optim: Mapping[str, Any] | None = None,
                  sched: Mapping[str, Any] | None = None, aux: Mapping[str, Any] | None = None) -> Path:
    """Write a minivgg ``.npz`` atomically (temp file beside ``path``, then rename).

    Parameters
    ----------
    config : VGGConfig
        Stored as JSON; every parameter's name and shape is checked against it first.
    params : mapping
        ``{"conv1_1.w": ..., "fc8.b": ...}``; numeric and finite (a NaN weight is refused).
    meta, optim, sched : mapping, optional
        A training checkpoint's JSON run state and its optimiser/schedule arrays.
    aux : mapping, optional
        Further named arrays (numeric and finite), stored as ``aux.<key>``.

    Raises
    ------
    ValueError
        Wrong suffix, parameters that do not fit ``config``, non-finite values,
        ``meta`` that is not JSON (NaN included).
    TypeError
        A non-numeric parameter.
    """
    path = check_output_path(path, "", NPZ_SUFFIXES)  # before any work: suffix, directory writable
    if not isinstance(config, VGGConfig):
        raise TypeError(f"{path}: config must be a VGGConfig, got {type(config).__name__}")
    check_fit(params, config, str(path))
    arrays: dict[str, np.ndarray] = {}
    for k, v in params.items():
        v = np.asarray(v)
        if v.dtype.kind not in "fiu":
            raise TypeError(f"{path}: parameter {k} has non-numeric dtype {v.dtype}")
        if not np.isfinite(v).all():
            raise ValueError(f"{path}: parameter {k} is not finite; refusing to write it")
        arrays[f"param.{k}"] = v
    for prefix, group in (("optim", optim), ("sched", sched)):
        for k, v in (group or {}).items():
            arrays[f"{prefix}.{k}"] = np.asarray(v)
    dtype = next(iter(arrays.values())).dtype.name if arrays else "float32"
    for k, v in (aux or {}).items():
        v = np.asarray(v)
        if v.dtype.kind not in "fiu" or not np.isfinite(v).all():
            raise ValueError(f"{path}: auxiliary array {k} must be numeric and finite, got {v.dtype}")
        arrays[f"aux.{k}"] = v
    header = {"format": FORMAT_VERSION, "config": config.to_dict(), "dtype": dtype, "meta": dict(meta or {})}
    try:
        text = json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: the run state is not plain JSON ({exc})") from None
    arrays[HEADER] = np.array(text)  # 0-d unicode: loads without pickle
    return atomic_write(path, lambda fh: np.savez(fh, **arrays))


def read_minivgg(path: str | os.PathLike) -> MinivggFile:
    """Read any minivgg ``.npz`` (this layout, or either older one); names and shapes are checked.

    Every entry's ``.npy`` header is checked against the bytes the archive
    really holds before NumPy allocates the array (a header claiming a huge
    array is refused, see :func:`check_npz_entries`), and no entry is ever
    unpickled.

    Raises
    ------
    FileNotFoundError
        Nothing exists at ``path``.
    CheckpointError
        A directory or unreadable path, not an npz archive, a truncated or
        damaged one, no minivgg header, unknown format, parameters that do not
        fit the stored architecture (each message names ``path``).
    """
    path = check_input_file(path, "")
    source = str(path)
    problem = zip_problem(path, " (an .npz file is a zip archive)")
    if problem:  # say so before numpy guesses "pickle" and suggests allow_pickle
        raise CheckpointError(f"{source} {problem}: not a readable minivgg .npz")
    try:
        with reading(path, ""):
            check_npz_entries(path)
            z = np.load(path, allow_pickle=False)
            with z:
                arrays = {k: z[k] for k in z.files}
    except CheckpointError:
        raise
    except (OSError, ValueError) as exc:  # reading() already named the file for OSError
        text = str(exc) if str(exc).startswith(source) else f"{source}: {type(exc).__name__}: {exc}"
        raise CheckpointError(f"{text}; not a readable minivgg .npz") from None
    if HEADER in arrays:
        out = _read_current(arrays, path)
    elif _OLD_WEIGHTS_HEADER in arrays:
        out = _read_old_weights(arrays, path)
    elif _OLD_CHECKPOINT_HEADER in arrays:
        out = _read_old_checkpoint(arrays, path)
    else:
        raise CheckpointError(f"{source}: no {HEADER} record; not a minivgg file (arrays: {sorted(arrays)[:6]})")
    check_fit(out.params, out.config, source)
    return out


def check_npz_entries(path: Path) -> None:
    """Check every entry of an ``.npz`` before NumPy reads it: sizes bounded by the archive, no pickles.

    For each zip member: its declared size must fit the archive
    (:func:`~minivgg.io.files.check_zip_member`), it must be an ``.npy`` array
    of version 1.0 or 2.0 whose dtype holds no Python objects, and the data
    the header promises (``prod(shape) * itemsize`` bytes) must be exactly the
    bytes that follow the header. Only then may ``np.load`` allocate the array.

    Raises
    ------
    CheckpointError
        Naming ``path``, the entry and the mismatch.
    """
    source = str(path)
    archive_size = path.stat().st_size
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            name = info.filename
            check_zip_member(info, archive_size, source)
            if not name.endswith(".npy"):
                raise CheckpointError(f"{source}: entry {name!r} is not an .npy array; not a minivgg .npz")
            with zf.open(info) as fh:
                try:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        shape, _fortran, dtype = np.lib.format.read_array_header_1_0(fh)
                    elif version == (2, 0):
                        shape, _fortran, dtype = np.lib.format.read_array_header_2_0(fh)
                    else:
                        raise CheckpointError(f"{source}: entry {name!r} is .npy version {version}; "
                                              "minivgg reads versions 1.0 and 2.0")
                except CheckpointError:
                    raise
                except (ValueError, SyntaxError, TypeError) as exc:
                    raise CheckpointError(f"{source}: entry {name!r} has a damaged .npy header ({exc})") from None
                header_len = fh.tell()
            if dtype.hasobject:
                raise CheckpointError(f"{source}: entry {name!r} holds Python objects (a pickle); minivgg files "
                                      "hold only plain arrays and never load pickles")
            need = math.prod(shape) * dtype.itemsize
            if info.file_size - header_len != need:
                raise CheckpointError(f"{source}: entry {name!r} claims a {dtype} array of shape {shape} "
                                      f"({need} bytes) but holds {info.file_size - header_len} bytes "
                                      "(truncated or damaged file)")


def _json_entry(arrays: dict, key: str, source: str) -> Any:
    entry = arrays.pop(key)
    if entry.dtype.kind != "U" or entry.ndim != 0:
        raise CheckpointError(f"{source}: {key} must be a 0-d text entry, got {entry.dtype} {entry.shape}")
    try:
        return json.loads(str(entry[()]))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{source}: {key} is not valid JSON ({exc})") from None


def _config(record: Any, source: str) -> VGGConfig:
    try:
        return VGGConfig.from_dict(record, source)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None


def _grouped(arrays: dict, source: str) -> dict[str, dict]:
    groups: dict[str, dict] = {g: {} for g in GROUPS}
    for k, v in arrays.items():
        prefix, _, rest = k.partition(".")
        if prefix not in groups or not rest:
            raise CheckpointError(f"{source}: unexpected entry {k!r}; a minivgg file holds "
                                  f"{', '.join(g + '.<name>' for g in GROUPS)}")
        groups[prefix][rest] = v
    return groups


def _read_current(arrays: dict, path: Path) -> MinivggFile:
    source = str(path)
    header = _json_entry(arrays, HEADER, source)
    if not isinstance(header, dict) or header.get("format") != FORMAT_VERSION or "config" not in header:
        found = header.get("format") if isinstance(header, dict) else header
        raise CheckpointError(f"{source}: minivgg file format {found!r}; this minivgg reads {FORMAT_VERSION}")
    meta = header.get("meta") or {}
    if not isinstance(meta, dict):
        raise CheckpointError(f"{source}: meta must be a JSON object, got {type(meta).__name__}")
    g = _grouped(arrays, source)
    return MinivggFile(path, _config(header["config"], source), g["param"], meta, g["optim"], g["sched"], g["aux"])


def _read_old_weights(arrays: dict, path: Path) -> MinivggFile:
    """Format 1 of the weights writer: ``__arch__`` JSON, ``__minivgg_format__`` and bare parameter names."""
    source = str(path)
    record = _json_entry(arrays, _OLD_WEIGHTS_HEADER, source)
    version = arrays.pop("__minivgg_format__", np.array(1))
    if int(version) != 1:
        raise CheckpointError(f"{source}: minivgg weights format {int(version)}; this minivgg reads 1 and "
                              f"{FORMAT_VERSION}")
    params = {k: v for k, v in arrays.items() if not k.startswith("__")}
    return MinivggFile(path, _config(record, source), params)


def _read_old_checkpoint(arrays: dict, path: Path) -> MinivggFile:
    """Format 1 of the trainer: ``meta`` JSON with ``"format": 1`` and ``"model"``, then prefixed arrays."""
    source = str(path)
    meta = _json_entry(arrays, _OLD_CHECKPOINT_HEADER, source)
    if not isinstance(meta, dict) or meta.get("format") != 1 or "model" not in meta:
        found = meta.get("format") if isinstance(meta, dict) else meta
        raise CheckpointError(f"{source}: unsupported checkpoint format {found!r}")
    meta = dict(meta)
    meta.pop("format")
    config = _config(meta.pop("model"), source)
    g = _grouped(arrays, source)
    return MinivggFile(path, config, g["param"], meta, g["optim"], g["sched"])
