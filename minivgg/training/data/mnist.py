"""MNIST and Fashion-MNIST from their idx files, optionally gzipped.

The idx format (LeCun et al.): a big-endian magic number whose last byte is
the number of dimensions, the dimensions as big-endian uint32, then the
unsigned bytes. Every inconsistency (magic, truncation, trailing bytes,
image/label counts, labels outside 0..9) is reported with the file's name.

* :func:`load_mnist` -- ``(x, y)`` for ``kind="train"`` (60k) or ``"t10k"`` (10k), images uint8 NCHW.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

__all__ = ["load_mnist"]

_IDX_IMAGES, _IDX_LABELS = 0x00000803, 0x00000801  # ubyte data (0x08), 3 or 1 dimensions


def _find_idx(root: Path, stem: str) -> Path:
    # The official names, the "train-images.idx3-ubyte" variant some unpackers
    # produce, each optionally gzipped.
    cands = [stem, stem.replace("-idx", ".idx")]
    for c in cands:
        for name in (c, c + ".gz"):
            if (root / name).is_file():
                return root / name
    raise FileNotFoundError(f"MNIST: missing {root / stem} (or {stem}.gz) in {root}")


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse an idx file of unsigned bytes: big-endian magic, dims, then the data."""
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: cannot read/decompress ({e})") from e
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < 4:
        raise ValueError(f"{path}: truncated header ({len(raw)} bytes, need {header})")
    got_magic = int.from_bytes(raw[:4], "big")
    if got_magic != magic:
        what = "image" if ndim == 3 else "label"
        raise ValueError(f"{path}: magic number 0x{got_magic:08x}, expected 0x{magic:08x} (not an idx {what} file?)")
    if len(raw) < header:
        raise ValueError(f"{path}: truncated header ({len(raw)} bytes, need {header})")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        kind = "truncated" if len(raw) < expected else "has trailing bytes"
        raise ValueError(f"{path}: {kind}: header says dims {dims} = {expected} bytes in all, file has {len(raw)}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


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
