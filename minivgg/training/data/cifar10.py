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

from ...io.files import check_input_dir, check_input_file, reading
from ...io.safe_pickle import UnsafePickleError, numpy_array_globals, resolve_arrays, restricted_loads

__all__ = ["CIFAR10_CLASSES", "load_cifar10"]


CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def _cifar_globals() -> dict[tuple[str, str], Any]:
    """The allow-list: NumPy's own array reconstruction in every pickle protocol, nothing else.

    The published CIFAR-10 was pickled by NumPy 1.x under Python 2 (protocol 2,
    ``numpy.core.multiarray._reconstruct``); re-saved batches may come from
    NumPy 2 (``numpy._core``) at any protocol, protocol 5 using
    ``numpy._core.numeric._frombuffer``. All are the checked stand-ins of
    :func:`minivgg.io.safe_pickle.numpy_array_globals`.
    """
    return numpy_array_globals()


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One python batch -> (x uint8 (n, 3, 32, 32), y int64 (n,)). Errors are one line naming ``path``."""
    if not path.exists() and not path.is_symlink():
        raise FileNotFoundError(f"CIFAR-10: missing batch file {path}")
    check_input_file(path, "CIFAR-10 batch", ValueError)
    with reading(path, "CIFAR-10 batch", ValueError):
        raw = path.read_bytes()
    try:
        d = resolve_arrays(restricted_loads(raw, _cifar_globals(), source=str(path), encoding="bytes"), str(path))
    except UnsafePickleError:
        raise  # names the file and the refused global or argument; nothing was called
    except EOFError:
        raise ValueError(f"{path}: CIFAR-10 batch is truncated (ends in the middle of its pickle)") from None
    except Exception as e:  # a corrupt pickle can fail in many ways; report them as one
        raise ValueError(f"{path}: not a readable CIFAR-10 python batch ({type(e).__name__}: {e})") from None
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
    check_input_dir(root, "CIFAR-10 data directory")  # a file there is said to be a file, not "missing"
    train = [_read_cifar_batch(base / f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = _read_cifar_batch(base / "test_batch")
    x_train = np.concatenate([b[0] for b in train])
    y_train = np.concatenate([b[1] for b in train])
    return x_train, y_train, x_test, y_test
