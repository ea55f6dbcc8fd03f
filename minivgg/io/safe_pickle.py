"""Reading pickles from user files without running their code.

A pickle is a small program: its ``GLOBAL``/``STACK_GLOBAL`` opcodes import any
callable (``os.system``, ``builtins.eval``...) and ``REDUCE`` calls it. A file
a user downloaded must never get that power, so minivgg never calls
``pickle.load`` on user data. Instead every global a pickle asks for is looked
up in an explicit allow-list; anything else raises :class:`UnsafePickleError`
*before* it can be called (find_class runs when the opcode is read, and the
call only happens later at ``REDUCE``).

Used by :mod:`minivgg.training.data` (CIFAR-10 python batches) and :mod:`minivgg.io.weights`
(PyTorch checkpoints), each with its own allow-list. :func:`numpy_array_globals`
is the allow-list of NumPy's own array reconstruction in every pickle protocol
(0-5): stand-ins with NumPy's global names that check their arguments (a
plain numeric dtype, a shape, exactly the bytes the shape needs) and build
the array themselves, so no NumPy ``__setstate__`` ever sees state from the
file; :func:`resolve_arrays` swaps the stand-ins for the arrays afterwards.
Before any of that, :func:`check_pickle_sizes` makes sure no length the
pickle claims exceeds the bytes it holds.
"""

from __future__ import annotations

import io
import math
import pickle
import pickletools
from typing import Any, BinaryIO, Callable, Mapping

import numpy as np


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle asked for a global that is not on the allow-list, or called one with arguments it may not take.

    Also a ``ValueError``: like every other unusable input file, it is bad input.
    """


class RestrictedUnpickler(pickle.Unpickler):
    """An :class:`pickle.Unpickler` that resolves only allow-listed globals.

    Parameters
    ----------
    file:
        Binary file object positioned at the start of a pickle.
    allowed:
        ``{(module, name): object}``. The object returned for a global is the
        value given here, not an import, so a stand-in (e.g. a function that
        records a storage request) can replace the real callable.
    persistent_load:
        Optional handler for persistent ids (PyTorch's storages).
    source:
        Text naming the file, used in error messages.
    """

    def __init__(
        self,
        file: io.BufferedIOBase,
        allowed: Mapping[tuple[str, str], Any],
        *,
        persistent_load: Callable[[Any], Any] | None = None,
        source: str = "<pickle>",
        encoding: str = "ASCII",
    ) -> None:
        super().__init__(file, encoding=encoding)
        self._allowed = dict(allowed)
        self._source = source
        if persistent_load is not None:
            self.persistent_load = persistent_load  # type: ignore[assignment]

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle API
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._source}: refusing to load global '{module}.{name}'; "
                "only plain tensors/arrays and containers may appear in this file"
            ) from None


class _Clamped:
    """A read-only view of ``fh`` that never reads past ``end``: a claimed length cannot allocate more."""

    def __init__(self, fh: BinaryIO, end: int) -> None:
        self.fh, self.end = fh, end

    def read(self, n: int = -1) -> bytes:
        left = max(self.end - self.fh.tell(), 0)
        return self.fh.read(left if n is None or n < 0 else min(n, left))

    def readline(self) -> bytes:
        return self.fh.readline(max(self.end - self.fh.tell(), 0))

    def tell(self) -> int:
        return self.fh.tell()


def check_pickle_sizes(fh: BinaryIO, source: str = "<pickle>") -> None:
    """Walk one pickle's opcodes without building anything; refuse claims the stream cannot back.

    CPython's unpickler allocates a ``BINBYTES8``/``BINUNICODE8``/``FRAME``
    argument at the size the file claims *before* reading it, and grows its
    memo to any ``LONG_BINPUT`` index; a 20-byte pickle can so reserve
    gigabytes. :func:`pickletools.genops` reads the same opcodes from a view
    that stops at the end of the stream, so every counted argument must
    really be there; frame lengths must fit what is left and memo indices may
    not run ahead of the objects made. ``fh`` is left where it was.

    Raises
    ------
    EOFError
        A counted argument or frame runs past the end (truncated or crafted file).
    pickle.UnpicklingError
        An unknown opcode, or a memo index beyond the objects made so far.
    """
    start = fh.tell()
    end = fh.seek(0, io.SEEK_END)
    fh.seek(start)
    view = _Clamped(fh, end)
    try:
        for count, (op, arg, _pos) in enumerate(pickletools.genops(view)):
            if op.name == "FRAME" and arg > end - fh.tell():
                raise EOFError(f"a frame of {arg} bytes runs past the end of the stream")
            if op.name in ("PUT", "BINPUT", "LONG_BINPUT") and int(arg) > count:
                raise pickle.UnpicklingError(f"memo index {arg} at opcode {count}: not a pickle a writer makes")
    except ValueError as exc:  # genops: "expected N bytes ... only M remain", unknown opcodes, bad lines
        if any(w in str(exc) for w in ("remain", "newline", "not enough data", "exhausted")):
            raise EOFError(str(exc)) from None
        raise pickle.UnpicklingError(str(exc)) from None
    finally:
        fh.seek(start)


def restricted_loads(
    data: bytes,
    allowed: Mapping[tuple[str, str], Any],
    *,
    persistent_load: Callable[[Any], Any] | None = None,
    source: str = "<pickle>",
    encoding: str = "ASCII",
) -> Any:
    """Unpickle ``data`` resolving only the globals in ``allowed``.

    Raises
    ------
    UnsafePickleError
        If the pickle names any global not in ``allowed`` (nothing is called).
    pickle.UnpicklingError, EOFError
        If the bytes are not a complete pickle, or claim more data than they hold
        (checked by :func:`check_pickle_sizes` before anything is allocated).
    """
    stream = io.BytesIO(data)
    check_pickle_sizes(stream, source)
    try:
        return RestrictedUnpickler(
            stream, allowed, persistent_load=persistent_load, source=source, encoding=encoding
        ).load()
    except UnsafePickleError as exc:  # a stand-in refused its arguments: name the file too
        if str(exc).startswith(source):
            raise
        raise UnsafePickleError(f"{source}: {exc}") from None


# ------------------------------------------------------------------ NumPy's array reconstruction
#: dtype kinds a pickled array may have: bool, signed/unsigned int, float, complex. No objects,
#: strings, void/structured records or datetimes.
PLAIN_KINDS = "biufc"


def _refuse_build(self: Any, state: Any) -> None:
    raise UnsafePickleError(f"refusing BUILD (attribute assignment) on {type(self).__name__}")


class _NdarrayClass:
    """Stand-in for the class ``numpy.ndarray``: only a marker for ``_reconstruct``'s first argument."""

    __slots__ = ()
    __setstate__ = _refuse_build


class _Dtype:
    """Stand-in for ``numpy.dtype(code, align, copy)`` plus the BUILD NumPy pickles after it.

    Only a plain numeric dtype (:data:`PLAIN_KINDS`) is accepted; the state may
    set its byte order and nothing else (no fields, sub-arrays, flags or metadata).
    """

    __slots__ = ("dtype", "built")
    __hash__ = None  # type: ignore[assignment]  # never a dict key

    def __init__(self, code: Any, align: Any = False, copy: Any = False) -> None:
        if isinstance(code, bytes):
            code = code.decode("ascii", "replace")
        if not isinstance(code, str) or len(code) > 8:
            raise UnsafePickleError(f"numpy.dtype({code!r}): only a short type code is allowed")
        try:
            dt = np.dtype(code)
        except (TypeError, ValueError):
            raise UnsafePickleError(f"numpy.dtype({code!r}) is not a dtype") from None
        if dt.kind not in PLAIN_KINDS or dt.fields is not None or dt.subdtype is not None:
            raise UnsafePickleError(f"dtype {dt} is not allowed: only plain numeric arrays (no object dtype)")
        self.dtype, self.built = dt, False

    def __setstate__(self, state: Any) -> None:
        # NumPy writes (3, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata]).
        if self.built:
            raise UnsafePickleError("a dtype's state may be set only once")
        if isinstance(state, tuple) and len(state) > 1 and isinstance(state[1], bytes):  # Python 2 file
            state = (state[0], state[1].decode("ascii", "replace"), *state[2:])
        ok = isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4) \
            and state[1] in ("<", ">", "|", "=") and state[2:5] == (None, None, None) \
            and state[5:7] == (-1, -1) and state[7] == self.dtype.flags and (len(state) == 8 or state[8] is None)
        if not ok:
            raise UnsafePickleError(f"dtype state {state!r} is not a plain {self.dtype}'s")
        if state[1] in "<>" and self.dtype.itemsize > 1:
            self.dtype = self.dtype.newbyteorder(state[1])
        self.built = True


def _shape(value: Any) -> tuple:
    if not isinstance(value, tuple) or len(value) > 32 or \
            not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value):
        raise UnsafePickleError(f"array shape {value!r} is not a tuple of non-negative ints")
    return value


def _array(buf: Any, dtype: Any, shape: Any, fortran: bool) -> np.ndarray:
    """Exactly ``prod(shape) * itemsize`` bytes as an array of a checked dtype; writable, owning its memory."""
    if not isinstance(dtype, _Dtype):
        raise UnsafePickleError(f"array dtype must come from numpy.dtype, got {type(dtype).__name__}")
    shape = _shape(shape)
    if isinstance(buf, str):  # Python 2 str read with encoding="latin1"
        buf = buf.encode("latin1")
    if not isinstance(buf, (bytes, bytearray)):
        raise UnsafePickleError(f"array data must be bytes, got {type(buf).__name__}")
    need = math.prod(shape) * dtype.dtype.itemsize
    if len(buf) != need:
        raise UnsafePickleError(f"array of shape {shape} and dtype {dtype.dtype} needs {need} bytes, "
                                f"the pickle holds {len(buf)}")
    flat = np.frombuffer(buf, dtype=dtype.dtype)
    if not flat.flags.writeable:
        flat = flat.copy()
    return flat.reshape(shape, order="F" if fortran else "C")


class _PendingArray:
    """What ``_reconstruct`` returns: an empty slot that NumPy's BUILD state fills exactly once."""

    __slots__ = ("array",)
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, array: np.ndarray | None = None) -> None:
        self.array = array

    def __setstate__(self, state: Any) -> None:
        # (version 1, shape, dtype, is_fortran, rawdata); NumPy before 1.0 wrote it without the version.
        if self.array is not None:
            raise UnsafePickleError("an array's state may be set only once")
        if isinstance(state, tuple) and len(state) == 5 and state[0] == 1:
            state = state[1:]
        if not isinstance(state, tuple) or len(state) != 4:
            raise UnsafePickleError("array state must be (version, shape, dtype, is_fortran, data)")
        shape, dtype, fortran, data = state
        if not isinstance(fortran, (bool, int)):
            raise UnsafePickleError(f"array is_fortran flag must be a bool, got {type(fortran).__name__}")
        self.array = _array(data, dtype, shape, bool(fortran))


def _reconstruct(subtype: Any, shape: Any, code: Any) -> _PendingArray:
    """Stand-in for ``numpy._core.multiarray._reconstruct``: only ``(ndarray, (0,), b"b")``, as NumPy writes."""
    if not isinstance(subtype, _NdarrayClass) or shape != (0,) or code not in (b"b", "b"):
        raise UnsafePickleError("_reconstruct may only start a plain ndarray: _reconstruct(ndarray, (0,), b'b')")
    return _PendingArray()


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> _PendingArray:
    """Stand-in for ``numpy._core.numeric._frombuffer`` (protocol 5): bytes, checked dtype, shape, 'C' or 'F'."""
    if order not in ("C", "F"):
        raise UnsafePickleError(f"_frombuffer order must be 'C' or 'F', got {order!r}")
    if isinstance(buf, pickle.PickleBuffer):
        buf = bytes(buf.raw())
    return _PendingArray(_array(buf, dtype, shape, order == "F"))


def _scalar(dtype: Any, data: Any = None) -> Any:
    """Stand-in for ``numpy._core.multiarray.scalar``: one element of a checked dtype from its bytes."""
    if not isinstance(dtype, _Dtype):
        raise UnsafePickleError("numpy scalar dtype must come from numpy.dtype")
    return _array(data, dtype, (), False)[()]


def _latin1_encode(text: Any, encoding: str = "utf-8") -> bytes:
    """Stand-in for ``_codecs.encode``, which pickles of ``bytes`` at protocols 0-2 use.

    Only the exact call pickle emits, ``encode(str, "latin1")``, is allowed.
    """
    if not isinstance(text, str) or encoding != "latin1":
        raise UnsafePickleError(
            f"_codecs.encode called as encode({type(text).__name__}, {encoding!r}); only latin1 str is allowed"
        )
    return text.encode("latin1")


def _empty_bytes(*args: Any) -> bytes:
    """Stand-in for ``bytes`` (protocols 0-2 write ``b""`` as ``bytes()``); no arguments allowed."""
    if args:
        raise UnsafePickleError("bytes(...) with arguments is not allowed")
    return b""


def numpy_array_globals() -> dict[tuple[str, str], Any]:
    """The allow-list for pickles of plain NumPy arrays, protocols 0 to 5, written by NumPy 1.x or 2.x.

    ``_reconstruct`` + ``ndarray`` + ``dtype`` (protocols 0-4), ``_frombuffer``
    (protocol 5), ``scalar`` (NumPy scalars), under both the ``numpy.core``
    (NumPy 1.x) and ``numpy._core`` (NumPy 2) module names; ``_codecs.encode``
    and ``bytes`` for Python 3 ``bytes`` at protocols 0-2. Every one is a
    stand-in from this module; results hold :class:`_PendingArray` slots until
    :func:`resolve_arrays` replaces them.
    """
    table: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): _NdarrayClass(),
        ("numpy", "dtype"): _Dtype,
        ("_codecs", "encode"): _latin1_encode,
        ("__builtin__", "bytes"): _empty_bytes,
        ("builtins", "bytes"): _empty_bytes,
    }
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = _reconstruct
        table[(f"{core}.multiarray", "scalar")] = _scalar
        table[(f"{core}.numeric", "_frombuffer")] = _frombuffer
    return table


def resolve_arrays(obj: Any, source: str = "<pickle>", depth: int = 0) -> Any:
    """Replace every stand-in in nested dicts/lists/tuples by its array (a dtype stand-in by its dtype)."""
    if depth > 64:
        raise UnsafePickleError(f"{source}: containers nested more than 64 deep")
    if isinstance(obj, _PendingArray):
        if obj.array is None:
            raise UnsafePickleError(f"{source}: an array was started but its data never followed (corrupt pickle)")
        return obj.array
    if isinstance(obj, _Dtype):
        return obj.dtype
    if isinstance(obj, _NdarrayClass):
        raise UnsafePickleError(f"{source}: a bare numpy.ndarray class is not data")
    if isinstance(obj, dict):
        return {k: resolve_arrays(v, source, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(resolve_arrays(v, source, depth + 1) for v in obj)
    return obj
