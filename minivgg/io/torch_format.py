"""PyTorch checkpoints read with NumPy alone: the zip format and the 2017 legacy stream.

The container half of :mod:`minivgg.io.weights`: bytes in, ``{key: ndarray}`` out,
with every pickle global checked against an allow-list. What those keys mean
for a VGG (torchvision's ``features.N.weight`` ...) is :mod:`minivgg.io.weights`' job.

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

Safety
------
A pickle is a program: its ``GLOBAL`` opcode imports any callable and
``REDUCE`` calls it, so ``pickle.load`` on a downloaded file runs whatever the
file says. minivgg never calls it on user files. Every global a checkpoint names
is looked up in :func:`_TorchReader.allowed`, which maps the handful torch
writes (``collections.OrderedDict``, the tensor/parameter rebuild functions,
the storage types) to stand-ins defined in this module that only build NumPy arrays;
anything else (``os.system``, ``builtins.eval``...) raises
:class:`~minivgg.io.safe_pickle.UnsafePickleError` naming the global when the
opcode is read, before any call. Offsets, sizes and strides from the file are
checked against the storage before :func:`numpy.lib.stride_tricks.as_strided`
touches memory.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import re
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .files import CheckpointError
from .safe_pickle import RestrictedUnpickler, UnsafePickleError

__all__ = ["CheckpointError", "UnsafePickleError", "MAGIC_NUMBER", "PROTOCOL_VERSION", "read_torch_checkpoint"]

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001


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


