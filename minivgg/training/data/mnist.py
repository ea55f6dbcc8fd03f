"""MNIST and Fashion-MNIST from their idx files, optionally gzipped.

The idx format (LeCun et al.): a big-endian magic number whose last byte is
the number of dimensions, the dimensions as big-endian uint32, then the
unsigned bytes. Every inconsistency (magic, truncation, trailing bytes,
image/label counts, labels outside 0..9) is reported with the file's name.

* :func:`load_mnist` -- ``(x, y)`` for ``kind="train"`` (60k) or ``"t10k"`` (10k), images uint8 NCHW.
"""

from __future__ import annotations

import gzip
import math
import os
from pathlib import Path

import numpy as np

from ...io.files import DEFLATE_MAX_RATIO, check_input_dir, check_input_file, read_bounded, reading

__all__ = ["load_mnist"]

_IDX_IMAGES, _IDX_LABELS = 0x00000803, 0x00000801  # ubyte data (0x08), 3 or 1 dimensions


def _find_idx(root: Path, stem: str) -> Path:
    # The official names, the "train-images.idx3-ubyte" variant some unpackers
    # produce, each optionally gzipped.
    check_input_dir(root, "MNIST data directory")  # a file given as the directory is said to be one
    cands = [stem, stem.replace("-idx", ".idx")]
    for c in cands:
        for name in (c, c + ".gz"):
            if (root / name).exists():
                return root / name
    raise FileNotFoundError(f"MNIST: missing {root / stem} (or {stem}.gz) in {root}")


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse an idx file of unsigned bytes: big-endian magic, dims, then the data.

    The dims in the header are compared with what the file can hold (its
    size, or deflate's maximum expansion of it for ``.gz``) before the data is
    read, and the data is read in chunks: a header claiming 4 billion images
    costs nothing.
    """
    what = "MNIST idx file"
    check_input_file(path, what, ValueError)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    gz = path.suffix == ".gz"
    with reading(path, what, ValueError):
        size = path.stat().st_size
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
            head = read_bounded(fh, header)
            if len(head) < 4:
                raise ValueError(f"{path}: truncated header ({len(head)} bytes, need {header})")
            got_magic = int.from_bytes(head[:4], "big")
            if got_magic != magic:
                kind = "image" if ndim == 3 else "label"
                raise ValueError(f"{path}: magic number 0x{got_magic:08x}, expected 0x{magic:08x} "
                                 f"(not an idx {kind} file?)")
            if len(head) < header:
                raise ValueError(f"{path}: truncated header ({len(head)} bytes, need {header})")
            dims = tuple(int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
            expected = math.prod(dims)
            can_hold = size * DEFLATE_MAX_RATIO if gz else size - header
            if expected > can_hold:
                raise ValueError(f"{path}: truncated: header says dims {dims} = {header + expected} bytes in all, "
                                 f"the file can hold at most {header + can_hold}")
            body = read_bounded(fh, expected + 1)  # one byte more: trailing bytes are an error too
    if len(body) != expected:
        kind = "truncated" if len(body) < expected else "has trailing bytes"
        got = header + len(body) if len(body) < expected else "more"
        raise ValueError(f"{path}: {kind}: header says dims {dims} = {header + expected} bytes in all, "
                         f"file has {got}")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims).copy()


def load_mnist(root: str | os.PathLike, kind: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST or Fashion-MNIST from idx files (optionally ``.gz``).

    Reads ``{kind}-images-idx3-ubyte`` (magic 0x00000803, then big-endian
    uint32 N, rows, cols, then N*rows*cols pixels) and
    ``{kind}-labels-idx1-ubyte`` (magic 0x00000801, N, then N labels).

    Parameters
    ----------
    root : path
        Directory holding the files.
    kind : {"train", "t10k"}
        The training set (60k) or the test set (10k).

    Returns
    -------
    x : uint8 ndarray, shape (N, 1, rows, cols) — (N, 1, 28, 28) for (Fashion-)MNIST
    y : int64 ndarray, shape (N,), values 0..9

    Raises
    ------
    FileNotFoundError
        A file is missing.
    ValueError
        Wrong magic number, truncated or oversized file, image/label count
        mismatch, labels outside 0..9, or a corrupt gzip stream (each names the file).
    """
    if kind not in ("train", "t10k"):
        raise ValueError(f"load_mnist: kind must be 'train' or 't10k', got {kind!r}")
    root = Path(root)
    img_path = _find_idx(root, f"{kind}-images-idx3-ubyte")
    lbl_path = _find_idx(root, f"{kind}-labels-idx1-ubyte")
    x = _read_idx(img_path, _IDX_IMAGES)  # (N, rows, cols)
    y = _read_idx(lbl_path, _IDX_LABELS)  # (N,)
    if len(x) != len(y):
        raise ValueError(f"MNIST: {img_path} has {len(x)} images but {lbl_path} has {len(y)} labels")
    if len(y) and y.max() > 9:
        raise ValueError(f"{lbl_path}: labels must be in 0..9, found max {y.max()}")
    return x[:, None], y.astype(np.int64)  # (N, 1, rows, cols)
