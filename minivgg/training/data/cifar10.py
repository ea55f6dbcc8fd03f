"""CIFAR-10 from the python pickle batches, read without executing pickled code.

The cs231n download (``cifar-10-batches-py``): five training batches and a
test batch, each a Python 2 pickle of a dict holding a uint8 ``(N, 3072)``
array (the R, G and B planes of 32x32 images) and ``N`` labels in 0..9. A
pickle can name any global and so run any code; the batches are read with
:func:`minivgg.io.safe_pickle.restricted_loads` against an allow-list of the
few numpy globals an array needs.

* :data:`CIFAR10_CLASSES` -- the ten class names, ``CIFAR10_CLASSES[y]``.
* :func:`load_cifar10` -- ``(x_train, y_train, x_test, y_test)``, images uint8 NCHW.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ...io.safe_pickle import UnsafePickleError, restricted_loads

__all__ = ["CIFAR10_CLASSES", "load_cifar10"]


CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def _latin1_encode(text: Any, encoding: str = "utf-8") -> bytes:
    """Stand-in for ``_codecs.encode``, which Python 3 protocol-2 pickles use for every ``bytes``.

    Only the exact call pickle emits, ``encode(str, "latin1")``, is allowed.
    """
    if not isinstance(text, str) or encoding != "latin1":
        raise UnsafePickleError(
            f"_codecs.encode called as encode({type(text).__name__}, {encoding!r}); only latin1 str is allowed"
        )
    return text.encode("latin1")


def _empty_bytes(*args: Any) -> bytes:
    """Stand-in for ``bytes`` (protocol-2 pickles write ``b""`` as ``bytes()``); no arguments allowed."""
    if args:
        raise UnsafePickleError("bytes(...) with arguments is not allowed in a CIFAR batch")
    return b""


def _plain_dtype(obj: Any, align: Any = False, copy: Any = False) -> np.dtype:
    """Stand-in for ``numpy.dtype`` that refuses object dtypes (they could hold anything)."""
    dt = np.dtype(obj, bool(align), bool(copy))
    if dt.hasobject:
        raise UnsafePickleError(f"object dtype {dt} is not allowed in a CIFAR batch")
    return dt


def _cifar_globals() -> dict[tuple[str, str], Any]:
    """The allow-list: exactly the globals an ndarray pickle (protocol 2) names.

    Files pickled by numpy 1.x (the published CIFAR-10, Python 2) name
    ``numpy.core.multiarray._reconstruct``; numpy >= 2 writes
    ``numpy._core.multiarray._reconstruct``. Both map to the same function.
    Python 3 pickles of ``bytes`` at protocol 2 add ``_codecs.encode`` and
    ``__builtin__.bytes``, served by the restricted stand-ins above.
    """
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _plain_dtype,
        ("_codecs", "encode"): _latin1_encode,
        ("__builtin__", "bytes"): _empty_bytes,
        ("builtins", "bytes"): _empty_bytes,
    }


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One python batch -> (x uint8 (n, 3, 32, 32), y int64 (n,)). Errors name ``path``."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"CIFAR-10: missing batch file {path}") from None
    try:
        d = restricted_loads(raw, _cifar_globals(), source=str(path), encoding="bytes")
    except UnsafePickleError as e:
        if str(path) in str(e):  # find_class already names the file
            raise
        raise UnsafePickleError(f"{path}: {e}") from None  # raised by a stand-in
    except Exception as e:  # a corrupt pickle can fail in many ways; report them as one
        raise ValueError(f"{path}: not a readable CIFAR-10 python batch ({type(e).__name__}: {e})") from e
    if not isinstance(d, dict):
        raise ValueError(f"{path}: expected a pickled dict with b'data' and b'labels', got {type(d).__name__}")

    def get(key: str) -> Any:
        for k in (key.encode(), key):  # Python 2 files have bytes keys, Python 3 ones may have str
            if k in d:
                return d[k]
        raise ValueError(f"{path}: no {key!r} entry (keys: {sorted(map(repr, d))[:6]})")

    data, labels = get("data"), get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: 'data' must be a uint8 array of shape (N, 3072), got {got}")
    try:
        y = np.asarray(labels)
    except Exception as e:
        raise ValueError(f"{path}: 'labels' is not a list of ints ({e})") from e
    if y.size == 0:
        y = y.astype(np.int64)  # np.asarray([]) is float64
    if y.ndim != 1 or y.dtype.kind not in "iu" or len(y) != len(data):
        raise ValueError(f"{path}: 'labels' must be {len(data)} ints (one per row of 'data'), got {y.dtype} {y.shape}")
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise ValueError(f"{path}: labels must be in 0..9, found {y.min()}..{y.max()}")
    # Row layout: 1024 red, 1024 green, 1024 blue values, each plane row-major 32x32.
    x = np.ascontiguousarray(data.reshape(len(data), 3, 32, 32))  # (n, 3, 32, 32)
    return x, y.astype(np.int64)


def load_cifar10(root: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load CIFAR-10 from the python pickle batches (the cs231n download).

    Looks for ``data_batch_1`` ... ``data_batch_5`` and ``test_batch`` in
    ``root/cifar-10-batches-py`` or directly in ``root``. Each batch is a
    Python 2 pickle (protocol 2) of a dict with ``b"data"``, a uint8 array
    (N, 3072) whose rows are the R, G and B planes of a 32x32 image, and
    ``b"labels"``, N ints in 0..9. The pickle is read with
    :func:`minivgg.io.safe_pickle.restricted_loads`: only the numpy globals an
    array needs are resolved, so a tampered file cannot run code.

    Returns
    -------
    x_train : uint8 ndarray, shape (50000, 3, 32, 32)
        Kept as uint8 (150 MB instead of 600 MB as float32); convert batches
        with :func:`to_float`.
    y_train : int64 ndarray, shape (50000,)
    x_test : uint8 ndarray, shape (10000, 3, 32, 32)
    y_test : int64 ndarray, shape (10000,)

    (Batch sizes are not enforced, so smaller files in the same format load too.)

    Raises
    ------
    FileNotFoundError
        A batch file is missing (the message names it).
    ValueError
        A batch is corrupt or has the wrong content (names the file).
    minivgg.io.safe_pickle.UnsafePickleError
        A batch asks for any other global (e.g. ``os.system``); nothing is called.
    """
    root = Path(root)
    base = root / "cifar-10-batches-py"
    if not (base / "data_batch_1").exists():
        base = root
    if not base.is_dir():
        raise FileNotFoundError(f"CIFAR-10: directory {root} does not exist")
    train = [_read_cifar_batch(base / f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = _read_cifar_batch(base / "test_batch")
    x_train = np.concatenate([b[0] for b in train])
    y_train = np.concatenate([b[1] for b in train])
    return x_train, y_train, x_test, y_test
