"""Augmentation and mean subtraction: the paper's only pre-processing (§2.1, §3.1).

Simonyan & Zisserman (arXiv 1409.1556): the only pre-processing is
"subtracting the mean RGB value, computed on the training set, from each
pixel" (§2.1); training images are randomly cropped (fixed 224x224 crops from
rescaled images) and "underwent random horizontal flipping and random RGB
colour shift" (§3.1). At CIFAR scale:

* :func:`random_crop` -- zero padding then a random window, the CIFAR form of
  the paper's random crops; :func:`random_flip` -- left-right mirroring.
* :func:`channel_mean` / :func:`subtract_mean` -- the paper's mean RGB value.
* :func:`to_float` -- uint8 pixels to [0, 1].

Everything is NCHW. Randomness always comes from an explicit
``numpy.random.Generator``; augmentations preserve the dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...ops._validate import check_array, check_positive_int, check_real, check_rng

__all__ = ["random_crop", "random_flip", "channel_mean", "subtract_mean", "to_float"]


def _check_images(x: Any, fn: str, *, nonempty: bool = False) -> np.ndarray:
    """``x`` must be a 4-D NCHW batch of any dtype (augmentation works on uint8 as well)."""
    return check_array(x, fn, "x", ndim=4, axes="(N, C, H, W)", nonempty=nonempty)


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
    x = _check_images(x, "random_crop")
    check_rng(rng, "random_crop")
    pair = (size, size) if not isinstance(size, (tuple, list)) else tuple(size)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair):
        raise ValueError(f"random_crop: size must be an int or a pair of ints, got {size!r}")
    sh, sw = int(pair[0]), int(pair[1])
    padding = check_positive_int(padding, "random_crop", "padding", minimum=0)
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
    x = _check_images(x, "random_flip")
    check_rng(rng, "random_flip")
    p = check_real(p, "random_flip", "p", 0, 1)
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
    x = _check_images(x, "channel_mean", nonempty=True)
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
    x = _check_images(x, "subtract_mean")
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
    check_array(x, "to_float", "x")
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
