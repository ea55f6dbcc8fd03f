"""The embedded shapes dataset: ten generated classes, no download (a stand-in for §3.1's data).

Simonyan & Zisserman (arXiv 1409.1556) trained on ImageNet; a teaching
library needs a data set that ships with the code and still demands what a
convnet is for. Here the label is carried only by *shape*: position, scale,
rotation jitter, colours and noise are random, so a network must learn
translation-invariant shape features, and a linear classifier on pixels fails.

* :data:`SHAPE_CLASSES` / :data:`class_names` -- the ten class names.
* :func:`make_shapes` -- ``n`` labelled images, bit-identical from a seed and
  stable under prefixes (sample ``i`` depends only on the seed and ``i``).
* :func:`load_shapes` -- train and validation splits from independent streams.

Images are float32 NCHW in [0, 1].
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from ...ops import xyxy_to_cxcywh
from ...ops._validate import check_positive_int
from .batches import batch_slices

__all__ = ["SHAPE_CLASSES", "class_names", "make_shapes", "ShapesSplit", "load_shapes"]

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


def _uniforms(words: np.ndarray) -> np.ndarray:
    """The first _N_PARAMS words of each row as float32 uniforms in [0, 1) (24-bit)."""
    return (words[:, :_N_PARAMS] >> 8).astype(np.float32) * np.float32(2.0**-24)  # (n, 10)


def _geometry(p: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(scale, cx, cy, theta)``, each (n,) float32: radius and centre in pixels, rotation in radians."""
    f32 = np.float32
    scale = (f32(_SCALE_RANGE[0]) + p[:, 2] * f32(_SCALE_RANGE[1] - _SCALE_RANGE[0])) * f32(size)  # (n,) pixels
    # The centre keeps the unit disc inside the image (up to the corners of a rotated square).
    lo, span = scale, f32(size) - 2 * scale
    cx, cy = lo + p[:, 0] * span, lo + p[:, 1] * span  # (n,)
    theta = (p[:, 3] * 2 - 1) * f32(_ROT_JITTER)
    return scale, cx, cy, theta


def _render(names: np.ndarray, words: np.ndarray, size: int, coverage: bool = False):
    """Render one chunk from its random words.

    ``names`` (n,) indices into SHAPE_CLASSES; ``words`` (n, _N_PARAMS +
    ceil(3*size*size/4)) uint32: the first _N_PARAMS become uniforms in [0, 1),
    the rest are read as bytes, one per pixel and channel, for the noise.
    Returns float32 (n, 3, size, size) in [0, 1] (and, with ``coverage``, the
    (n, size, size) anti-aliased coverage of the shape before colour and noise).
    """
    n = len(names)
    f32 = np.float32
    p = _uniforms(words)  # (n, 10) uniforms, 24-bit
    # Little-endian byte order fixed explicitly so every platform gets the same noise.
    noise_bytes = np.ascontiguousarray(words[:, _N_PARAMS:], dtype="<u4").view(np.uint8)[:, : 3 * size * size]
    scale, cx, cy, theta = _geometry(p, size)
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
    np.clip(img, 0, 1, out=img)
    return (img, cover) if coverage else img


# Outline points of each shape in its own frame (u, v), radius 1 = ``scale`` pixels, read off
# _sdf: a convex polygon's bounding box after any rotation is that of its rotated vertices, and
# a box of a union is the box of the parts. Discs (circle, ring) are handled apart.
_S3 = np.sqrt(3) / 2
_PLUS = [(sx * a, sy * b) for a, b in ((0.95, 0.27), (0.27, 0.95)) for sx in (1, -1) for sy in (1, -1)]
_BAR_EXTENT = 2 / 3 + 0.18  # outer edge of the outer bar (period 2/3, half-thickness 0.18)
_OUTLINE: dict[str, list[tuple[float, float]]] = {
    "square": [(sx * 0.7, sy * 0.7) for sx in (1, -1) for sy in (1, -1)],
    "hollow_square": [(sx * 0.88, sy * 0.88) for sx in (1, -1) for sy in (1, -1)],  # outer edge 0.68 + 0.2
    "triangle": [(0.0, -1.0), (-_S3, 0.5), (_S3, 0.5)],  # apex up (v = -1), base at v = 0.5
    "plus": _PLUS,
    # cross = plus read in the frame turned by 45 deg; that map (u+v, u-v)/sqrt2 is its own inverse
    "cross": [((a + b) * np.sqrt(0.5), (a - b) * np.sqrt(0.5)) for a, b in _PLUS],
    "horizontal_bars": [(sx * 0.85, sy * _BAR_EXTENT) for sx in (1, -1) for sy in (1, -1)],
    "vertical_bars": [(sx * _BAR_EXTENT, sy * 0.85) for sx in (1, -1) for sy in (1, -1)],
    "diamond": [(0.7 * np.sqrt(2), 0.0), (-0.7 * np.sqrt(2), 0.0), (0.0, 0.7 * np.sqrt(2)), (0.0, -0.7 * np.sqrt(2))],
}
_DISC_RADIUS = {"circle": 0.85, "ring": 1.0}  # ring: |r - 0.7| <= 0.3


def _boxes(names: np.ndarray, p: np.ndarray, size: int) -> np.ndarray:
    """Exact pixel-corner boxes ``(x0, y0, x1, y1)`` (n, 4) float64 of the shapes' geometric outlines.

    The outline is the set where the class's field is <= 0 (the shape as a
    mathematical figure, before the half-pixel anti-aliased edge). A frame
    point (u, v) sits at pixel coordinates
    ``x = cx + scale (cos t u - sin t v)``, ``y = cy + scale (sin t u + cos t v)``
    (the inverse of _render's map), with pixel ``j`` spanning ``[j, j+1)``.
    Clipped to the image ``[0, size]``.
    """
    scale, cx, cy, theta = (a.astype(np.float64) for a in _geometry(p, size))
    cos, sin = np.cos(theta), np.sin(theta)
    out = np.empty((len(names), 4))
    for ci in np.unique(names):
        sel = names == ci
        cls = SHAPE_CLASSES[ci]
        if cls in _DISC_RADIUS:
            r = _DISC_RADIUS[cls] * scale[sel]
            out[sel] = np.stack([cx[sel] - r, cy[sel] - r, cx[sel] + r, cy[sel] + r], axis=1)
            continue
        uv = np.array(_OUTLINE[cls])  # (k, 2)
        c, s_, sc = cos[sel, None], sin[sel, None], scale[sel, None]
        xs = cx[sel, None] + sc * (c * uv[None, :, 0] - s_ * uv[None, :, 1])  # (m, k)
        ys = cy[sel, None] + sc * (s_ * uv[None, :, 0] + c * uv[None, :, 1])
        out[sel] = np.stack([xs.min(1), ys.min(1), xs.max(1), ys.max(1)], axis=1)
    # A rotated hollow square's or bar pattern's corner can leave the image by up to ~1 pixel
    # (the centre only keeps the unit disc inside): the box is of the visible part, as ILSVRC's are.
    return np.clip(out, 0.0, float(size))


def make_shapes(
    n: int, *, seed: int | Sequence[int] = 0, size: int = 32, classes: Sequence[str] = SHAPE_CLASSES,
    with_boxes: bool = False,
):
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

    with_boxes : bool
        Also return each shape's ground-truth bounding box (the images are the
        same bits either way).

    Returns
    -------
    x : float32 ndarray, shape (n, 3, size, size), values in [0, 1]
    y : int64 ndarray, shape (n,), values in ``range(len(classes))``
    boxes : float64 ndarray, shape (n, 4), only with ``with_boxes``
        ``(cx, cy, w, h)`` normalised to the image (divide pixels by ``size``),
        the format of :mod:`minivgg.ops.boxes`: the exact bounding box of the
        shape's geometric outline (where its field is <= 0), computed from the
        geometry (centre, radius, rotation and the outline's vertices), not from
        the pixels, clipped to the image (a rotated hollow square's corner may
        leave it by up to a pixel). Every pixel whose centre lies in the shape lies in the box;
        the 1-pixel anti-aliased edge adds a faint half-pixel fringe outside it
        (up to 1 pixel at the triangle's 60-degree apex). Pixel corners:
        ``minivgg.ops.cxcywh_to_xyxy(boxes) * size``.

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
    return _generate(n, seed, size, classes, with_boxes)


def _generate(n, seed, size, classes, with_boxes: bool = False, coverage: bool = False):
    """make_shapes' body; ``coverage=True`` (for tests) returns ``(x, y, pixel-corner boxes, coverage)``."""
    n = check_positive_int(n, "make_shapes", "n", minimum=0)
    size = check_positive_int(size, "make_shapes", "size", minimum=8)
    classes = _check_classes(classes)
    k = len(classes)
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
    boxes = np.empty((n, 4)) if with_boxes or coverage else None
    cover = np.empty((n, size, size), np.float32) if coverage else None
    for s in batch_slices(n, _RENDER_CHUNK, "make_shapes"):
        words = rng.integers(0, 2**32, size=(s.stop - s.start, m), dtype=np.uint32)
        if coverage:
            x[s], cover[s] = _render(name_idx[s], words, size, coverage=True)
        else:
            x[s] = _render(name_idx[s], words, size)
        if boxes is not None:
            boxes[s] = _boxes(name_idx[s], _uniforms(words), size)
    if coverage:
        return x, y, boxes, cover
    if not with_boxes:
        return x, y
    return x, y, xyxy_to_cxcywh(boxes / size)  # pixel corners -> normalised (cx, cy, w, h)


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
    seed = check_positive_int(seed, "load_shapes", "seed", minimum=0)
    x_train, y_train = make_shapes(n_train, seed=(seed, 0), size=size, classes=classes)
    x_val, y_val = make_shapes(n_val, seed=(seed, 1), size=size, classes=classes)
    return ShapesSplit(x_train, y_train, x_val, y_val, list(_check_classes(classes)))
