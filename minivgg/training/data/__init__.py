"""Datasets, augmentation and mini-batches for training VGG (paper §3.1).

Simonyan & Zisserman (arXiv 1409.1556) §3.1 "Training": the only
pre-processing is "subtracting the mean RGB value, computed on the training
set, from each pixel" (§2.1); training images are randomly cropped (fixed
224x224 crops from rescaled images) and "underwent random horizontal flipping
and random RGB colour shift"; mini-batches of 256. Here, at CIFAR scale:

* :func:`make_shapes` / :func:`load_shapes` — an embedded, generated 10-class
  dataset (no download) whose label is carried only by *shape*: position,
  scale, rotation jitter, colours and noise are random, so a network must learn
  translation-invariant shape features, and a linear classifier on pixels fails.
* :func:`load_cifar10` (the cs231n python pickle batches, read without
  executing pickled code) and :func:`load_mnist` (MNIST / Fashion-MNIST idx
  files, optionally gzipped).
* :func:`random_crop` (with zero padding, the CIFAR form of the paper's random
  crops), :func:`random_flip`, :func:`channel_mean` / :func:`subtract_mean`,
  :func:`to_float`.
* :func:`iterate_minibatches`.

Everything is NCHW. Randomness always comes from an explicit
``numpy.random.Generator``; augmentations preserve the dtype.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Sequence

import numpy as np

from ...io.safe_pickle import UnsafePickleError, restricted_loads

__all__ = [
    "SHAPE_CLASSES",
    "class_names",
    "ShapesSplit",
    "make_shapes",
    "load_shapes",
    "CIFAR10_CLASSES",
    "load_cifar10",
    "load_mnist",
    "random_crop",
    "random_flip",
    "channel_mean",
    "subtract_mean",
    "to_float",
    "iterate_minibatches",
]

# =========================================================== embedded shapes
#: The ten shape classes; a label ``y`` indexes this tuple (or the ``classes`` given).
SHAPE_CLASSES: tuple[str, ...] = (
    "circle",
    "ring",
    "square",
    "hollow_square",
    "triangle",
    "plus",
    "cross",
    "horizontal_bars",
    "vertical_bars",
    "diamond",
)
#: The class names as a list (``class_names[y]``).
class_names: list[str] = list(SHAPE_CLASSES)

# Geometry, in the shape's own frame where the shape fits in the unit disc
# (radius 1 = ``scale`` pixels). The shapes cover 0.4 (triangle) to 0.85 (ring)
# of the disc's area; with random scale and colours that says little about the
# class (a k-NN probe on the mean colour of an image is at chance, see the tests).
_ROT_JITTER = np.pi / 12  # +-15 deg: more would turn plus into cross, square into diamond
_SCALE_RANGE = (0.22, 0.36)  # radius as a fraction of the image size
_NOISE = 0.12  # additive uniform noise in [-_NOISE, _NOISE]
_MIN_CONTRAST = 0.3  # per channel, |fg - bg| >= this (so the shape is always visible)
_N_PARAMS = 10  # uniforms per sample before the noise: cx, cy, scale, angle, bg(3), fg(3)
_RENDER_CHUNK = 2048  # samples rendered at once: bounds the (n, S, S) temporaries


def _sdf(cls: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance-like field of shape ``cls`` at frame coordinates (u, v); < 0 inside."""
    au, av = np.abs(u), np.abs(v)
    if cls == "circle":
        return np.sqrt(u * u + v * v) - 0.85
    if cls == "ring":
        return np.abs(np.sqrt(u * u + v * v) - 0.7) - 0.3
    if cls == "square":
        return np.maximum(au, av) - 0.7
    if cls == "hollow_square":
        return np.abs(np.maximum(au, av) - 0.68) - 0.2
    if cls == "triangle":  # equilateral, apex up, inscribed circle radius 0.5
        d = v.copy()  # image rows grow downwards: the apex is at v = -1
        for a in (np.pi / 6, 5 * np.pi / 6):  # normals of the two slanted sides
            np.maximum(d, -(u * np.cos(a) + v * np.sin(a)), out=d)
        # d = max(v, the two slanted sides) - 0.5 puts the base at v = 0.5
        return d - 0.5
    if cls in ("plus", "cross"):
        if cls == "cross":  # the plus turned by 45 deg
            u, v = (u + v) * np.float32(np.sqrt(0.5)), (u - v) * np.float32(np.sqrt(0.5))
            au, av = np.abs(u), np.abs(v)
        arm = lambda a, b: np.maximum(a - 0.95, b - 0.27)  # noqa: E731 - a bar of half-sizes 0.95 x 0.27
        return np.minimum(arm(au, av), arm(av, au))
    if cls in ("horizontal_bars", "vertical_bars"):
        across, along = (v, au) if cls == "horizontal_bars" else (u, av)
        period = np.float32(2 / 3)  # three bars centred at -2/3, 0, 2/3, each 0.36 thick
        stripe = np.abs(across - period * np.round(across / period)) - 0.18
        return np.maximum(np.maximum(stripe, np.abs(across) - (2 / 3 + 0.18)), along - 0.85)
    if cls == "diamond":
        return (au + av) * np.float32(np.sqrt(0.5)) - 0.7
    raise ValueError(f"unknown shape class {cls!r}")  # pragma: no cover - checked by make_shapes


def _check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    if isinstance(classes, str) or not isinstance(classes, Sequence):
        raise TypeError(f"make_shapes: classes must be a sequence of names from {SHAPE_CLASSES}, got {classes!r}")
    classes = tuple(classes)
    if not classes:
        raise ValueError("make_shapes: classes is empty")
    unknown = [c for c in classes if c not in SHAPE_CLASSES]
    if unknown:
        raise ValueError(f"make_shapes: unknown class(es) {unknown}; choose from {SHAPE_CLASSES}")
    if len(set(classes)) != len(classes):
        raise ValueError(f"make_shapes: classes has duplicates: {classes}")
    return classes


def _render(names: np.ndarray, words: np.ndarray, size: int) -> np.ndarray:
    """Render one chunk from its random words.

    ``names`` (n,) indices into SHAPE_CLASSES; ``words`` (n, _N_PARAMS +
    ceil(3*size*size/4)) uint32: the first _N_PARAMS become uniforms in [0, 1),
    the rest are read as bytes, one per pixel and channel, for the noise.
    Returns float32 (n, 3, size, size) in [0, 1].
    """
    n = len(names)
    f32 = np.float32
    p = (words[:, :_N_PARAMS] >> 8).astype(f32) * f32(2.0**-24)  # (n, 10) uniforms, 24-bit
    # Little-endian byte order fixed explicitly so every platform gets the same noise.
    noise_bytes = np.ascontiguousarray(words[:, _N_PARAMS:], dtype="<u4").view(np.uint8)[:, : 3 * size * size]
    scale = (f32(_SCALE_RANGE[0]) + p[:, 2] * f32(_SCALE_RANGE[1] - _SCALE_RANGE[0])) * f32(size)  # (n,) pixels
    # The centre keeps the unit disc inside the image (up to the corners of a rotated square).
    lo, span = scale, f32(size) - 2 * scale
    cx, cy = lo + p[:, 0] * span, lo + p[:, 1] * span  # (n,)
    theta = (p[:, 3] * 2 - 1) * f32(_ROT_JITTER)
    cos, sin = np.cos(theta), np.sin(theta)
    grid = np.arange(size, dtype=f32) + f32(0.5)  # pixel centres
    dx = grid[None, None, :] - cx[:, None, None]  # (n, 1, S)
    dy = grid[None, :, None] - cy[:, None, None]  # (n, S, 1)
    inv = (1 / scale)[:, None, None]
    u = (cos[:, None, None] * dx + sin[:, None, None] * dy) * inv  # (n, S, S), frame units
    v = (-sin[:, None, None] * dx + cos[:, None, None] * dy) * inv
    dist = np.empty((n, size, size), f32)
    for ci in np.unique(names):
        sel = names == ci
        dist[sel] = _sdf(SHAPE_CLASSES[ci], u[sel], v[sel])
    # Anti-aliased coverage: distance in pixels, a 1-pixel soft edge.
    cover = np.clip(f32(0.5) - dist * scale[:, None, None], 0, 1)  # (n, S, S)
    bg = p[:, 4:7]  # (n, 3) uniform colours
    # fg = bg shifted by 0.3..0.7 (mod 1) per channel: each uniform on its own,
    # never too close to bg, and independent of the class.
    fg = (bg + f32(_MIN_CONTRAST) + p[:, 7:10] * f32(1 - 2 * _MIN_CONTRAST)) % f32(1)
    # byte b -> (b + 0.5) / 128 - 1, symmetric in (-1, 1), 256 levels
    noise = (noise_bytes.reshape(n, 3, size, size).astype(f32) * f32(1 / 128) + f32(0.5 / 128 - 1)) * f32(_NOISE)
    img = bg[:, :, None, None] + cover[:, None] * (fg - bg)[:, :, None, None] + noise
    return np.clip(img, 0, 1, out=img)


def make_shapes(
    n: int, *, seed: int | Sequence[int] = 0, size: int = 32, classes: Sequence[str] = SHAPE_CLASSES
) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``n`` labelled images of simple shapes, deterministically from ``seed``.

    Each image is one shape (the class) drawn with a random centre, radius
    (22-36% of the image size), rotation jitter (+-15 degrees, so plus/cross
    and square/diamond stay distinct), background colour and foreground colour
    (each uniform per channel, at least 0.3 apart per channel, independent of
    the class: colour carries no label), with a 1-pixel anti-aliased edge and
    additive uniform noise in +-0.12, clipped to [0, 1].

    Parameters
    ----------
    n : int
        Number of images, >= 0.
    seed : int or sequence of ints
        Entropy for ``numpy.random.SeedSequence``.
    size : int
        Image height = width, >= 8.
    classes : sequence of str
        Names from :data:`SHAPE_CLASSES`; ``y`` indexes this sequence. A subset
        gives a task with fewer classes (e.g. held-out classes for transfer).

    Returns
    -------
    x : float32 ndarray, shape (n, 3, size, size), values in [0, 1]
    y : int64 ndarray, shape (n,), values in ``range(len(classes))``

    Notes
    -----
    What is guaranteed:

    * Same ``(n, seed, size, classes)`` -> bit-identical arrays.
    * Prefix stability: sample ``i`` depends only on ``(seed, size, classes, i)``,
      so ``make_shapes(100, seed=s)[k][:10]`` equals ``make_shapes(10, seed=s)[k]``.
    * Balance: labels come in blocks of ``len(classes)`` consecutive samples,
      each block a random permutation of all classes, so any prefix has class
      counts that differ by at most one.

    Cost: about ``40 * n * size**2`` flops plus ``0.75 * n * size**2`` 32-bit
    random draws; 50k 32x32 images take a few seconds on one core.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"make_shapes: n must be an int >= 0, got {n!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"make_shapes: size must be an int >= 8, got {size!r}")
    classes = _check_classes(classes)
    n, size, k = int(n), int(size), len(classes)
    try:
        ss = np.random.SeedSequence(seed)
    except (TypeError, ValueError) as e:
        raise ValueError(f"make_shapes: seed must be a non-negative int or a sequence of them, got {seed!r}") from e
    param_ss, label_ss = ss.spawn(2)
    # Labels: one random permutation of the classes per block of k samples.
    n_blocks = -(-n // k)
    perm = np.random.default_rng(label_ss).random((n_blocks, k)).argsort(axis=1)  # (blocks, k)
    y = perm.reshape(-1)[:n].astype(np.int64)
    name_idx = np.array([SHAPE_CLASSES.index(c) for c in classes])[y]  # index into SHAPE_CLASSES
    # Per-sample randomness: one row of m raw uint32 words per sample, drawn
    # row after row from one stream, in chunks. Row i is the same however many
    # rows are drawn (the words come off the stream in order): this gives the
    # prefix stability. Raw words are 4x fewer draws than float32 noise.
    m = _N_PARAMS + -(-3 * size * size // 4)
    rng = np.random.default_rng(param_ss)
    x = np.empty((n, 3, size, size), np.float32)
    for start in range(0, n, _RENDER_CHUNK):
        stop = min(n, start + _RENDER_CHUNK)
        words = rng.integers(0, 2**32, size=(stop - start, m), dtype=np.uint32)
        x[start:stop] = _render(name_idx[start:stop], words, size)
    return x, y


class ShapesSplit(NamedTuple):
    """Train/validation splits of the embedded shapes dataset."""

    x_train: np.ndarray  # (n_train, 3, size, size) float32 in [0, 1]
    y_train: np.ndarray  # (n_train,) int64
    x_val: np.ndarray  # (n_val, 3, size, size) float32 in [0, 1]
    y_val: np.ndarray  # (n_val,) int64
    class_names: list[str]  # class_names[y]


def load_shapes(
    n_train: int = 10_000,
    n_val: int = 2_000,
    seed: int = 0,
    *,
    size: int = 32,
    classes: Sequence[str] = SHAPE_CLASSES,
) -> ShapesSplit:
    """Train and validation sets of shapes drawn from different seeds.

    ``x_train, y_train = make_shapes(n_train, seed=(seed, 0), ...)`` and
    ``x_val, y_val = make_shapes(n_val, seed=(seed, 1), ...)``: independent
    streams, so no validation image is a copy of a training image. Use
    ``seed=(seed, 2)`` and up for further splits (e.g. a test set).

    Returns
    -------
    ShapesSplit
        ``(x_train, y_train, x_val, y_val, class_names)``.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"load_shapes: seed must be an int >= 0, got {seed!r}")
    x_train, y_train = make_shapes(n_train, seed=(int(seed), 0), size=size, classes=classes)
    x_val, y_val = make_shapes(n_val, seed=(int(seed), 1), size=size, classes=classes)
    return ShapesSplit(x_train, y_train, x_val, y_val, list(_check_classes(classes)))


# ================================================================= CIFAR-10
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


# ============================================================ MNIST (idx)
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


# ============================================================ augmentation
def _check_batch(x: Any, fn: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{fn}: x must be an ndarray (N, C, H, W), got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{fn}: x must be a 4-D NCHW batch, got shape {x.shape}")
    return x


def _check_rng(rng: Any, fn: str) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{fn}: rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}"
        )
    return rng


def random_crop(x: np.ndarray, size: int | tuple[int, int], padding: int, rng: np.random.Generator) -> np.ndarray:
    """Zero-pad each image by ``padding`` pixels, then cut a random ``size`` window.

    The CIFAR form of the paper's random crops (e.g. ``size=32, padding=4``):
    for every image an offset ``(oy, ox)`` is drawn uniformly from
    ``0..H + 2*padding - size_h`` and ``0..W + 2*padding - size_w``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), any dtype
    size : int or (int, int)
        Output height and width.
    padding : int
        Zeros added on every side, >= 0.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape (N, C, size_h, size_w), same dtype as ``x`` (a new array).
    """
    x = _check_batch(x, "random_crop")
    _check_rng(rng, "random_crop")
    pair = (size, size) if not isinstance(size, (tuple, list)) else tuple(size)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair):
        raise ValueError(f"random_crop: size must be an int or a pair of ints, got {size!r}")
    sh, sw = int(pair[0]), int(pair[1])
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"random_crop: padding must be an int >= 0, got {padding!r}")
    n, c, h, w = x.shape
    hp, wp = h + 2 * padding, w + 2 * padding
    if not (0 < sh <= hp and 0 < sw <= wp):
        raise ValueError(f"random_crop: crop {sh}x{sw} does not fit in the padded {hp}x{wp} images")
    if padding:
        padded = np.zeros((n, c, hp, wp), dtype=x.dtype)
        padded[:, :, padding : padding + h, padding : padding + w] = x
    else:
        padded = x
    oy = rng.integers(0, hp - sh + 1, size=n)
    ox = rng.integers(0, wp - sw + 1, size=n)
    out = np.empty((n, c, sh, sw), dtype=x.dtype)
    for i in range(n):  # a slice copy per image: cheaper than building fancy indices
        out[i] = padded[i, :, oy[i] : oy[i] + sh, ox[i] : ox[i] + sw]
    return out


def random_flip(x: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Mirror each image left-right (last axis) with probability ``p``.

    Returns a new array of ``x``'s shape and dtype; ``x`` is not modified.
    """
    x = _check_batch(x, "random_flip")
    _check_rng(rng, "random_flip")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"random_flip: p must be in [0, 1], got {p!r}")
    flip = rng.random(len(x)) < p  # (N,) bool
    out = x.copy()
    out[flip] = x[flip, :, :, ::-1]
    return out


def channel_mean(x: np.ndarray) -> np.ndarray:
    """Per-channel mean over images and pixels (the paper's "mean RGB value").

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), integer or floating

    Returns
    -------
    float64 ndarray, shape (C,): accumulated in float64 so 50k uint8 or
    float32 images give the exact mean to ~1e-12.
    """
    x = _check_batch(x, "channel_mean")
    if x.size == 0:
        raise ValueError(f"channel_mean: x is empty (shape {x.shape})")
    return x.mean(axis=(0, 2, 3), dtype=np.float64)


def subtract_mean(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``x - mean[c]`` per channel; compute ``mean`` once on the training set.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    mean : array-like, shape (C,)
        In ``x``'s units (from :func:`channel_mean` of data scaled the same way).

    Returns
    -------
    ndarray of ``x``'s shape: ``x``'s dtype if floating (the mean is cast to
    it, so float32 stays float32), float32 if ``x`` is an integer type.
    """
    x = _check_batch(x, "subtract_mean")
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    m = np.asarray(mean)
    if m.shape != (x.shape[1],):
        raise ValueError(
            f"subtract_mean: mean must have shape ({x.shape[1]},) for {x.shape[1]} channels, got {m.shape}"
        )
    return x.astype(dtype, copy=False) - m.astype(dtype)[None, :, None, None]


def to_float(x: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
    """Scale uint8 pixels to ``dtype`` in [0, 1] (``x / 255``); floating input is returned unchanged.

    Idempotent, so calling it on already-converted data is harmless.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"to_float: x must be an ndarray, got {type(x).__name__}")
    if x.dtype.kind == "f":
        return x
    if x.dtype != np.uint8:
        raise TypeError(f"to_float: expected uint8 pixels (or a floating array), got {x.dtype}")
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"to_float: dtype must be floating, got {dt}")
    out = x.astype(dt)
    out /= dt.type(255)  # in place: one float copy of the data, not two
    return out


# ============================================================ mini-batches
def iterate_minibatches(
    x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool, rng: np.random.Generator | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(xb, yb)`` mini-batches covering every sample once (one epoch).

    Arguments are checked when this is called, not at the first ``next()``.

    Parameters
    ----------
    x : ndarray, shape (N, ...)
    y : ndarray, shape (N, ...)
    batch_size : int
        >= 1. The last batch holds the ``N % batch_size`` leftovers if any.
    shuffle : bool
        Visit samples in a random order drawn from ``rng`` (required then);
        otherwise in order (batches are then views, not copies).
    rng : numpy.random.Generator, optional

    Returns
    -------
    iterator of (xb (B, ...), yb (B, ...)) with B = batch_size, except the last.
    """
    if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
        raise TypeError("iterate_minibatches: x and y must be ndarrays")
    if len(x) != len(y):
        raise ValueError(f"iterate_minibatches: x has {len(x)} samples but y has {len(y)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"iterate_minibatches: batch_size must be an int >= 1, got {batch_size!r}")
    order = _check_rng(rng, "iterate_minibatches").permutation(len(x)) if shuffle else None
    return _batches(x, y, int(batch_size), order)


def _batches(
    x: np.ndarray, y: np.ndarray, batch_size: int, order: np.ndarray | None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for start in range(0, len(x), batch_size):
        if order is None:
            yield x[start : start + batch_size], y[start : start + batch_size]
        else:
            idx = order[start : start + batch_size]
            yield x[idx], y[idx]
