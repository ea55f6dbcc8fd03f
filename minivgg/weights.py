"""Real VGG weights in and out: PyTorch checkpoints (read without PyTorch), Keras HDF5, minivgg ``.npz``.

People who study VGG already have the ImageNet weights on disk: torchvision's
``vgg16-397923af.pth`` or Keras' ``vgg16_weights_tf_dim_ordering_tf_kernels.h5``.
This module reads them with NumPy alone and renames them to the lecture's
parameter names (``conv1_1.w`` ... ``fc8.b``, see :mod:`minivgg.vgg`).

File formats
------------
PyTorch zip (``torch.save`` since 1.6)
    A zip archive with one top folder (its name varies): ``<top>/data.pkl`` is the
    pickled state dict in which every tensor's data is replaced by a *persistent
    id* ``("storage", torch.FloatStorage, key, location, numel)``; the bytes of
    storage ``key`` are the member ``<top>/data/<key>``; ``<top>/byteorder`` says
    ``little`` or ``big`` (absent in old files: little).
PyTorch legacy stream (before 1.6, and ``_use_new_zipfile_serialization=False``)
    Five pickles back to back -- the magic number ``0x1950a86a20f9469cfc6c``, the
    protocol version 1001, a sys-info dict (byte order, type sizes), the state
    dict (persistent ids as above plus a sixth field, an optional storage view
    ``(view_key, offset, numel)``), and the list of storage keys -- followed, per
    key in that list's order, by an int64 element count and the raw bytes. The
    torchvision VGG files of 2017 are in this format and rebuild tensors with
    ``torch._utils._rebuild_tensor`` (4 arguments) rather than ``_rebuild_tensor_v2``.
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

Safety
------
A pickle is a program: its ``GLOBAL`` opcode imports any callable and
``REDUCE`` calls it, so ``pickle.load`` on a downloaded file runs whatever the
file says. minivgg never calls it on user files. Every global a checkpoint names
is looked up in :func:`_TorchReader.allowed`, which maps the handful torch
writes (``collections.OrderedDict``, the tensor/parameter rebuild functions,
the storage types) to stand-ins defined here that only build NumPy arrays;
anything else (``os.system``, ``builtins.eval``...) raises
:class:`~minivgg.safe_pickle.UnsafePickleError` naming the global when the
opcode is read, before any call. Offsets, sizes and strides from the file are
checked against the storage before :func:`numpy.lib.stride_tricks.as_strided`
touches memory.

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

import io
import json
import math
import os
import pickle
import re
import tempfile
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .configs import ARCHS, CONFIGS, layer_specs, min_input_size, resolve_config, scaled
from .safe_pickle import RestrictedUnpickler, UnsafePickleError

__all__ = [
    "CheckpointError", "UnsafePickleError", "ARCH_FIELDS", "TORCH_EXTENSIONS", "KERAS_EXTENSIONS",
    "read_torch_checkpoint", "read_keras_h5", "torchvision_names", "keras_names",
    "infer_torchvision_arch", "infer_keras_arch", "from_torchvision", "to_torchvision", "from_keras",
    "save_npz", "load_npz", "read_weights", "load_into", "load_model", "convert", "describe_arch",
]

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
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


class CheckpointError(ValueError):
    """A weights file is truncated, corrupt, of an unknown format, or does not hold a VGG."""


# ---------------------------------------------------------------------------
# PyTorch checkpoints
# ---------------------------------------------------------------------------

# Storage class name -> NumPy dtype code of one element as stored ("bf16" is
# read as uint16 and widened, NumPy has no bfloat16).
_STORAGE_DTYPES = {
    "FloatStorage": "f4", "DoubleStorage": "f8", "HalfStorage": "f2", "BFloat16Storage": "bf16",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "b1", "UntypedStorage": "u1",
}


def _refuse_build(self, state) -> None:
    """``__setstate__`` of every stand-in: the BUILD opcode may not rewrite our objects."""
    raise UnsafePickleError(f"refusing BUILD (attribute assignment) on {type(self).__name__}")


class _StorageType:
    """Stand-in for ``torch.FloatStorage`` & co.: a name and an element dtype, not callable."""

    __slots__ = ("name", "code")
    __setstate__ = _refuse_build

    def __init__(self, name: str, code: str) -> None:
        self.name, self.code = name, code

    @property
    def itemsize(self) -> int:
        return 2 if self.code == "bf16" else np.dtype(self.code).itemsize

    def decode(self, buf: bytearray | bytes, byteorder: str) -> np.ndarray:
        """Raw bytes -> flat native-endian array (bfloat16 widened to float32: bits << 16)."""
        order = "<" if byteorder == "little" else ">"
        raw = np.frombuffer(buf, dtype=np.dtype(order + ("u2" if self.code == "bf16" else self.code)))
        if self.code == "bf16":
            return (raw.astype(np.uint32) << 16).view(np.float32)
        if not raw.dtype.isnative:
            return raw.astype(raw.dtype.newbyteorder("="))
        return raw


class _TypeMarker:
    """Stand-in for ``torch.Tensor`` / ``torch.nn.Parameter`` as named by ``_rebuild_from_type_v2``."""

    __slots__ = ("name",)
    __setstate__ = _refuse_build

    def __init__(self, name: str) -> None:
        self.name = name


class _RootStorage:
    """One storage of the file: its type, element count and (once read) its flat data."""

    __slots__ = ("key", "stype", "numel", "flat", "users")
    __setstate__ = _refuse_build

    def __init__(self, key: str, stype: _StorageType, numel: int) -> None:
        self.key, self.stype, self.numel = key, stype, numel
        self.flat: np.ndarray | None = None
        self.users = 0  # tensors built on it; a sole full-size user may take the buffer without a copy

    @property
    def nbytes(self) -> int:
        return self.numel * self.stype.itemsize


class _StorageRef:
    """What a persistent id resolves to: a root storage, or a view ``[offset, offset + numel)`` of one."""

    __slots__ = ("root", "offset", "numel")
    __setstate__ = _refuse_build

    def __init__(self, root: _RootStorage, offset: int, numel: int) -> None:
        self.root, self.offset, self.numel = root, offset, numel


class _LazyTensor:
    """A tensor whose storage bytes come later (legacy files put them after the pickle)."""

    __slots__ = ("storage", "offset", "size", "stride")
    __setstate__ = _refuse_build

    def __init__(self, storage: _StorageRef, offset: int, size: tuple, stride: tuple) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def materialize(self) -> np.ndarray:
        """The tensor as an ndarray: ``as_strided`` over the (already bounds-checked) flat storage."""
        root, flat = self.storage.root, self.storage.root.flat
        assert flat is not None  # _check_all_read ran first
        start = self.storage.offset + self.offset
        numel = math.prod(self.size)
        contiguous = self.stride == _contiguous_strides(self.size)
        if contiguous and root.users == 1 and start == 0 and numel == root.numel:
            return flat.reshape(self.size)  # sole owner of the whole storage: no copy needed
        if numel == 0:
            return np.zeros(self.size, dtype=flat.dtype)
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[start:], shape=self.size, strides=tuple(s * item for s in self.stride), writeable=False)
        return view.copy()  # own the memory: no aliasing between tensors that shared a storage


def _contiguous_strides(size: tuple) -> tuple:
    strides, step = [], 1
    for n in reversed(size):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def _text(value: Any, what: str, source: str) -> str:
    """Pickled strings may be str (Python 3) or bytes (Python 2 files)."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        raise CheckpointError(f"{source}: {what} must be a string, got {type(value).__name__}")
    return value


def _nonneg_int(value: Any, what: str, source: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise CheckpointError(f"{source}: {what} must be a non-negative int, got {value!r}")
    return value


class _TorchReader:
    """State of one checkpoint read: the storages the pickle names and the stand-in globals."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.roots: dict[str, _RootStorage] = {}
        self._types = {name: _StorageType(name, code) for name, code in _STORAGE_DTYPES.items()}
        self._rebuilders = (self.rebuild_tensor, self.rebuild_tensor_v2)

    def allowed(self) -> dict[tuple[str, str], Any]:
        """The allow-list: torch's global names -> this reader's stand-ins. Nothing else resolves."""
        table: dict[tuple[str, str], Any] = {
            ("collections", "OrderedDict"): OrderedDict,
            ("torch._utils", "_rebuild_tensor"): self.rebuild_tensor,
            ("torch._utils", "_rebuild_tensor_v2"): self.rebuild_tensor_v2,
            ("torch._utils", "_rebuild_parameter"): self.rebuild_parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): self.rebuild_parameter_with_state,
            ("torch._tensor", "_rebuild_from_type_v2"): self.rebuild_from_type_v2,
            ("torch", "Tensor"): _TypeMarker("torch.Tensor"),
            ("torch._tensor", "Tensor"): _TypeMarker("torch.Tensor"),
            ("torch.nn.parameter", "Parameter"): _TypeMarker("torch.nn.Parameter"),
        }
        for name, stype in self._types.items():
            table[("torch", name)] = stype
        table[("torch.storage", "UntypedStorage")] = self._types["UntypedStorage"]
        return table

    # -- persistent ids: ("storage", type, key, location, numel[, view]) ------
    def persistent_load(self, pid: Any) -> _StorageRef:
        src = self.source
        if not isinstance(pid, tuple) or not pid:
            raise CheckpointError(f"{src}: unexpected persistent id {pid!r}; expected a storage reference tuple")
        tag = _text(pid[0], "persistent id tag", src)
        if tag != "storage":
            raise CheckpointError(
                f"{src}: persistent id of kind {tag!r}; only tensor storages are supported "
                "(a whole pickled nn.Module? re-save it with torch.save(model.state_dict(), path))")
        if len(pid) not in (5, 6):
            raise CheckpointError(f"{src}: storage reference {pid!r} must have 5 or 6 fields")
        stype, key, _location, numel = pid[1:5]
        view = pid[5] if len(pid) == 6 else None
        if not isinstance(stype, _StorageType):
            raise CheckpointError(f"{src}: storage type must be one of torch.{{{', '.join(_STORAGE_DTYPES)}}}, "
                                  f"got {stype!r}")
        key = _text(key, "storage key", src)
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", key):
            raise CheckpointError(f"{src}: malformed storage key {key!r}")
        numel = _nonneg_int(numel, f"element count of storage {key}", src)
        root = self.roots.get(key)
        if root is None:
            root = self.roots[key] = _RootStorage(key, stype, numel)
        elif root.stype is not stype or root.numel != numel:
            raise CheckpointError(f"{src}: storage {key} is declared twice with different types or sizes "
                                  f"({root.stype.name}[{root.numel}] vs {stype.name}[{numel}])")
        if view is None:
            return _StorageRef(root, 0, numel)
        if not isinstance(view, tuple) or len(view) != 3:
            raise CheckpointError(f"{src}: storage view of {key} must be (key, offset, numel), got {view!r}")
        offset = _nonneg_int(view[1], f"view offset into storage {key}", src)
        size = _nonneg_int(view[2], f"view size of storage {key}", src)
        if offset + size > numel:
            raise CheckpointError(f"{src}: view [{offset}, {offset + size}) runs past storage {key} "
                                  f"of {numel} elements")
        return _StorageRef(root, offset, size)

    # -- the rebuild functions torch names ------------------------------------
    def rebuild_tensor(self, storage: Any, storage_offset: Any, size: Any, stride: Any) -> _LazyTensor:
        """Stand-in for ``torch._utils._rebuild_tensor``: validate, defer the data."""
        src = self.source
        if not isinstance(storage, _StorageRef):
            raise CheckpointError(f"{src}: a tensor must be built on a storage, got {type(storage).__name__}")
        offset = _nonneg_int(storage_offset, "tensor storage offset", src)
        if not isinstance(size, tuple) or not isinstance(stride, tuple) or len(size) != len(stride):
            raise CheckpointError(f"{src}: tensor size {size!r} and stride {stride!r} must be tuples of equal length")
        size = tuple(_nonneg_int(n, "tensor dimension", src) for n in size)
        stride = tuple(_nonneg_int(s, "tensor stride", src) for s in stride)
        if all(size):
            last = offset + sum((n - 1) * s for n, s in zip(size, stride))  # index of the last element touched
            if last >= storage.numel:
                raise CheckpointError(
                    f"{src}: tensor of size {size}, stride {stride}, offset {offset} reaches element {last} "
                    f"of storage {storage.root.key}, which has only {storage.numel}")
        storage.root.users += 1
        return _LazyTensor(storage, offset, size, stride)

    def rebuild_tensor_v2(self, storage: Any, storage_offset: Any, size: Any, stride: Any,
                          requires_grad: Any = False, backward_hooks: Any = None, metadata: Any = None) -> _LazyTensor:
        """Stand-in for ``torch._utils._rebuild_tensor_v2`` (autograd flags and hooks are dropped)."""
        return self.rebuild_tensor(storage, storage_offset, size, stride)

    def rebuild_parameter(self, data: Any, requires_grad: Any = True, backward_hooks: Any = None) -> _LazyTensor:
        """Stand-in for ``torch._utils._rebuild_parameter``: a Parameter is just its data here."""
        if not isinstance(data, _LazyTensor):
            raise CheckpointError(f"{self.source}: a Parameter must wrap a tensor, got {type(data).__name__}")
        return data

    def rebuild_parameter_with_state(self, data: Any, requires_grad: Any, backward_hooks: Any,
                                     state: Any) -> _LazyTensor:
        """Stand-in for ``torch._utils._rebuild_parameter_with_state`` (Python attributes are dropped)."""
        return self.rebuild_parameter(data, requires_grad, backward_hooks)

    def rebuild_from_type_v2(self, func: Any, new_type: Any, args: Any, state: Any) -> _LazyTensor:
        """Stand-in for ``torch._tensor._rebuild_from_type_v2``: only plain tensors/parameters."""
        if not any(func is f for f in self._rebuilders) or not isinstance(new_type, _TypeMarker) \
                or not isinstance(args, tuple):
            raise CheckpointError(f"{self.source}: unsupported tensor subclass reconstruction ({new_type!r})")
        return func(*args)


def _unpickle(fh: io.BufferedIOBase, allowed: Mapping, source: str,
              persistent_load: Callable[[Any], Any] | None = None) -> Any:
    """One restricted pickle from ``fh``; low-level failures become :class:`CheckpointError`."""
    try:
        return RestrictedUnpickler(fh, allowed, persistent_load=persistent_load, source=source,
                                   encoding="utf-8").load()
    except UnsafePickleError as exc:
        text = str(exc) if str(exc).startswith(source) else f"{source}: {exc}"
        raise UnsafePickleError(
            f"{text}. A state dict holds only tensors; if this file holds a whole pickled model, "
            "re-save it with torch.save(model.state_dict(), path)") from None
    except CheckpointError:
        raise
    except EOFError:
        raise CheckpointError(f"{source}: file ends in the middle of a pickle (truncated?)") from None
    except (pickle.UnpicklingError, TypeError, ValueError, IndexError, KeyError, AttributeError,
            RecursionError, OverflowError) as exc:
        raise CheckpointError(f"{source}: corrupt pickle ({type(exc).__name__}: {exc})") from None


def _check_all_read(reader: _TorchReader) -> None:
    missing = sorted(k for k, r in reader.roots.items() if r.flat is None)
    if missing:
        raise CheckpointError(f"{reader.source}: missing data for storage(s) {missing[:8]} named by the tensors")


def _materialize(obj: Any, source: str, depth: int = 0) -> Any:
    """Replace every lazy tensor in nested dicts/lists/tuples by its ndarray."""
    if depth > 64:
        raise CheckpointError(f"{source}: containers nested more than 64 deep")
    if isinstance(obj, _LazyTensor):
        return obj.materialize()
    if isinstance(obj, dict):
        out = type(obj)() if isinstance(obj, OrderedDict) else {}
        for k, v in obj.items():
            out[k] = _materialize(v, source, depth + 1)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v, source, depth + 1) for v in obj)
    return obj


def _read_legacy(fh: io.BufferedIOBase, source: str) -> Any:
    """The pre-1.6 stream: magic, version, sys-info, main pickle, storage keys, then the storages."""
    no_globals: dict = {}
    magic = _unpickle(fh, no_globals, source)
    if type(magic) is not int or magic != MAGIC_NUMBER:
        raise CheckpointError(f"{source}: wrong magic number {magic!r}; expected PyTorch's 0x1950a86a20f9469cfc6c "
                              "(not a PyTorch checkpoint, or corrupt)")
    version = _unpickle(fh, no_globals, source)
    if version != PROTOCOL_VERSION:
        raise CheckpointError(f"{source}: PyTorch legacy protocol version {version!r}; expected {PROTOCOL_VERSION}")
    sys_info = _unpickle(fh, no_globals, source)
    if not isinstance(sys_info, dict):
        raise CheckpointError(f"{source}: sys-info record must be a dict, got {type(sys_info).__name__}")
    byteorder = "little" if sys_info.get("little_endian", True) else "big"
    total = os.fstat(fh.fileno()).st_size
    reader = _TorchReader(source)
    result = _unpickle(fh, reader.allowed(), source, reader.persistent_load)
    keys = _unpickle(fh, no_globals, source)
    if not isinstance(keys, list):
        raise CheckpointError(f"{source}: storage key list must be a list, got {type(keys).__name__}")
    for key in keys:
        key = _text(key, "storage key", source)
        root = reader.roots.get(key)
        if root is None:
            raise CheckpointError(f"{source}: storage {key} is listed but no tensor uses it")
        if root.flat is not None:
            raise CheckpointError(f"{source}: storage {key} is listed twice")
        head = fh.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{source}: file ends before storage {key} (truncated?)")
        count = int.from_bytes(head, byteorder, signed=True)
        if count != root.numel:
            raise CheckpointError(f"{source}: storage {key} holds {count} elements on disk but the tensors "
                                  f"declare {root.numel}")
        left = total - fh.tell()
        if root.nbytes > left:  # checked before allocating: a crafted count must not reserve huge memory
            raise CheckpointError(f"{source}: storage {key} is cut short: {max(left, 0)} of {root.nbytes} bytes "
                                  "(truncated file?)")
        buf = bytearray(root.nbytes)
        got = fh.readinto(buf)
        if got != root.nbytes:
            raise CheckpointError(f"{source}: storage {key} is cut short: {got} of {root.nbytes} bytes "
                                  "(truncated file?)")
        root.flat = root.stype.decode(buf, byteorder)
    _check_all_read(reader)
    return _materialize(result, source)


def _read_zip(path: Path, source: str) -> Any:
    """The torch >= 1.6 zip: ``<top>/data.pkl`` + ``<top>/data/<key>``."""
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{source}: damaged zip archive ({exc}); truncated download?") from None
    with zf:
        names = set(zf.namelist())
        pickles = sorted(n for n in names if n.rsplit("/", 1)[-1] == "data.pkl" and n.count("/") <= 1)
        if len(pickles) != 1:
            raise CheckpointError(f"{source}: a PyTorch zip checkpoint has exactly one <top>/data.pkl; "
                                  f"found {pickles or 'none'}")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = zf.read(prefix + "byteorder").decode("ascii", "replace").strip()
            if byteorder not in ("little", "big"):
                raise CheckpointError(f"{source}: byteorder record must be 'little' or 'big', got {byteorder!r}")
        reader = _TorchReader(source)
        try:
            data = zf.read(pickles[0])
            result = _unpickle(io.BytesIO(data), reader.allowed(), source, reader.persistent_load)
            for key, root in reader.roots.items():
                member = f"{prefix}data/{key}"
                if member not in names:
                    continue  # reported by _check_all_read with every other missing key
                info = zf.getinfo(member)
                if info.file_size != root.nbytes:
                    raise CheckpointError(f"{source}: storage {key} has {info.file_size} bytes, the tensors "
                                          f"declare {root.numel} x {root.stype.itemsize} = {root.nbytes}")
                buf = bytearray(root.nbytes)
                with zf.open(info) as member_fh:
                    got = member_fh.readinto(buf)
                if got != root.nbytes:
                    raise CheckpointError(f"{source}: storage {key} is cut short ({got} of {root.nbytes} bytes)")
                root.flat = root.stype.decode(buf, byteorder)
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise CheckpointError(f"{source}: damaged zip member ({exc})") from None
    _check_all_read(reader)
    return _materialize(result, source)


def _sniff(path: Path) -> str:
    """``"zip" | "legacy" | "hdf5" | "tar" | "unknown"`` from the first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "hdf5"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head[:1] == b"\x80":  # pickle PROTO opcode; the reader checks the magic number that follows
        return "legacy"
    return "unknown"


def _find_state_dict(obj: Any, source: str) -> dict[str, np.ndarray]:
    """The ``{key: array}`` mapping inside a checkpoint (top level, or under "state_dict"/"model")."""
    def is_state(o: Any) -> bool:
        return isinstance(o, dict) and bool(o) and all(isinstance(k, str) for k in o) \
            and all(isinstance(v, np.ndarray) for v in o.values())

    candidates = [obj]
    if isinstance(obj, dict):
        candidates += [obj[k] for k in ("state_dict", "model", "model_state_dict") if k in obj]
    for cand in candidates:
        if is_state(cand):
            state = dict(cand)
            if all(k.startswith("module.") for k in state):  # saved from nn.DataParallel
                state = {k[len("module."):]: v for k, v in state.items()}
            return state
    shown = list(obj)[:6] if isinstance(obj, dict) else type(obj).__name__
    raise CheckpointError(f"{source}: no state dict of tensors found (top level: {shown})")


def read_torch_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a PyTorch checkpoint's state dict without importing torch.

    Parameters
    ----------
    path : path-like
        A file written by ``torch.save(state_dict, path)`` in the zip format
        (torch >= 1.6) or the legacy stream (older torch,
        ``_use_new_zipfile_serialization=False``); detected from the first bytes.

    Returns
    -------
    dict
        ``{key: ndarray}`` in the file's order, torch's names and layouts
        (conv ``(F, C, KH, KW)``, linear ``(D_out, D_in)``). float32/float64/
        float16 stay as they are, bfloat16 becomes float32, integer tensors
        keep their width. A dict nested under ``"state_dict"``/``"model"`` and a
        ``"module."`` prefix (DataParallel) are unwrapped.

    Raises
    ------
    UnsafePickleError
        The pickle names a global outside the allow-list (nothing was called).
    CheckpointError
        Truncated or corrupt file, wrong magic number, missing storages,
        out-of-bounds tensors, or no tensors at all.
    FileNotFoundError
        No such file.
    """
    path = Path(path)
    source = str(path)
    kind = _sniff(path)
    if kind == "zip":
        result = _read_zip(path, source)
    elif kind == "legacy":
        with open(path, "rb") as fh:
            result = _read_legacy(fh, source)
    elif kind == "tar":
        raise CheckpointError(f"{source}: tar-format checkpoint (PyTorch < 0.1.10) is not supported; "
                              "re-save it with a newer torch")
    else:
        raise CheckpointError(f"{source}: not a PyTorch checkpoint (expected a zip archive or a pickle stream "
                              f"starting with byte 0x80, file looks like {kind})")
    return _find_state_dict(result, source)


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


def _check_shapes(params: Mapping[str, np.ndarray], arch: Mapping, source: str) -> None:
    """Every name and shape of ``params`` against ``arch``; one error listing all problems."""
    expected = _expected_shapes(arch, source)
    problems = [f"{k}: expected {expected[k]}, file has {tuple(params[k].shape)}"
                for k in expected if k in params and tuple(params[k].shape) != expected[k]]
    problems += [f"{k}: missing" for k in expected if k not in params]
    problems += [f"{k}: not a parameter of this architecture" for k in params if k not in expected]
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise CheckpointError(f"{source}: weights do not fit {describe_arch(arch)}: "
                              + "; ".join(problems[:10]) + more)


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
    own = model.params
    problems = [f"{k}: model {own[k].shape}, file {tuple(params[k].shape)}"
                for k in own if k in params and own[k].shape != tuple(params[k].shape)]
    problems += [f"{k}: missing from the file" for k in own if k not in params]
    problems += [f"{k}: not in the model" for k in params if k not in own]
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise ValueError(f"{path}: weights for {describe_arch(meta)} do not fit {model!r}: "
                         + "; ".join(problems[:10]) + more)
    model.load_params(params)  # validates again (finite values), then assigns
    return meta


def load_model(path: str | os.PathLike, arch: str | list | Mapping | None = None, *, dtype=np.float32,
               **kwargs: Any) -> Any:
    """Build the ``minivgg.vgg.VGG`` a weights file describes and load it.

    ``kwargs`` go to ``VGG`` (e.g. ``algo``, ``dropout``); the shape-fixing
    fields come from the file (or ``arch``).
    """
    from .vgg import VGG  # floor 4; imported here so reading files never builds a model

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
