"""Unpickling a PyTorch state dict without PyTorch and without running the file.

The pickle half of :mod:`minivgg.io.torch_format`: torch's persistent ids
(``("storage", torch.FloatStorage, key, location, numel[, view])``) and rebuild
functions become lazy stand-ins here, and :func:`materialize` turns them into
NumPy arrays once every storage's bytes are known.

Safety
------
A pickle is a program: its ``GLOBAL`` opcode imports any callable and
``REDUCE`` calls it, so ``pickle.load`` on a downloaded file runs whatever the
file says. minivgg never calls it on user files. Every global a checkpoint names
is looked up in :func:`TorchReader.allowed`, which maps the handful torch
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
import pickle
import re
from collections import OrderedDict
from typing import Any, Callable, Mapping

import numpy as np

from .files import CheckpointError
from .safe_pickle import RestrictedUnpickler, UnsafePickleError, check_pickle_sizes

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


def pickled_text(value: Any, what: str, source: str) -> str:
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


class TorchReader:
    """State of one checkpoint read: the storages the pickle names and the stand-in globals."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.roots: dict[str, _RootStorage] = {}
        self.tensors: list[_LazyTensor] = []  # every tensor built, for the memory budget of materialize
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
        tag = pickled_text(pid[0], "persistent id tag", src)
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
        key = pickled_text(key, "storage key", src)
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
        numel = math.prod(size)
        if numel > storage.numel:  # checked before anything is allocated: the copy would be numel elements
            raise CheckpointError(
                f"{src}: tensor of size {size} has {numel} elements but its storage {storage.root.key} holds "
                f"only {storage.numel}; a state dict's tensors fit their storage (no stride-0 expansion)")
        if numel:
            last = offset + sum((n - 1) * s for n, s in zip(size, stride))  # index of the last element touched
            if last >= storage.numel:
                raise CheckpointError(
                    f"{src}: tensor of size {size}, stride {stride}, offset {offset} reaches element {last} "
                    f"of storage {storage.root.key}, which has only {storage.numel}")
        storage.root.users += 1
        tensor = _LazyTensor(storage, offset, size, stride)
        self.tensors.append(tensor)
        return tensor

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


def unpickle(fh: io.BufferedIOBase, allowed: Mapping, source: str,
              persistent_load: Callable[[Any], Any] | None = None) -> Any:
    """One restricted pickle from ``fh``; low-level failures become :class:`CheckpointError`."""
    try:
        check_pickle_sizes(fh, source)  # no claimed length may reserve more than the file holds
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


def check_all_read(reader: TorchReader) -> None:
    missing = sorted(k for k, r in reader.roots.items() if r.flat is None)
    if missing:
        raise CheckpointError(f"{reader.source}: missing data for storage(s) {missing[:8]} named by the tensors")


#: The tensors of a state dict may repeat a storage's data (tied weights under two keys),
#: but not by more than this factor over all the storage bytes the file holds.
MAX_COPIES = 4


def materialize(obj: Any, source: str, reader: TorchReader | None = None) -> Any:
    """Replace every lazy tensor in nested dicts/lists/tuples by its ndarray.

    With ``reader``, the bytes of all its tensors are first compared with the
    bytes its storages hold: more than :data:`MAX_COPIES` times as much is
    refused before anything is copied (many tensors over one storage could
    otherwise turn a small file into terabytes). A tensor the pickle names
    twice becomes one array.
    """
    if reader is not None:
        held = sum(root.nbytes for root in reader.roots.values())
        wanted = sum(math.prod(t.size) * t.storage.root.stype.itemsize for t in reader.tensors)
        if wanted > MAX_COPIES * held + (1 << 20):
            raise CheckpointError(f"{source}: its {len(reader.tensors)} tensors add up to {wanted} bytes, more than "
                                  f"{MAX_COPIES} times the {held} bytes of storage the file holds")
    return _materialize(obj, source, 0, {})


def _materialize(obj: Any, source: str, depth: int, done: dict) -> Any:
    if depth > 64:
        raise CheckpointError(f"{source}: containers nested more than 64 deep")
    if isinstance(obj, _LazyTensor):
        if id(obj) not in done:
            done[id(obj)] = obj.materialize()
        return done[id(obj)]
    if isinstance(obj, dict):
        out = type(obj)() if isinstance(obj, OrderedDict) else {}
        for k, v in obj.items():
            out[k] = _materialize(v, source, depth + 1, done)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v, source, depth + 1, done) for v in obj)
    return obj
