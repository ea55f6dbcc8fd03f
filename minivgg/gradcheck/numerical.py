"""Centered differences and the relative error (the math is in the package docstring, :mod:`minivgg.gradcheck`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

#: Floor of the denominator of :func:`rel_error`; two gradients that are both
#: ~0 compare as equal instead of dividing 0 by 0.
REL_EPS = 1e-8


# ---------------------------------------------------------------------------
# Relative error and the two numerical gradients
# ---------------------------------------------------------------------------


#: Coordinates are compared relative to at least this fraction of the tensor's
#: largest numerical gradient, so round-off on near-zero entries is not a failure.
FLOOR_FRACTION = 1e-3


def rel_error(a: Any, b: Any, eps: float = REL_EPS) -> float:
    """Maximum elementwise relative error between two arrays (cs231n's).

    Parameters
    ----------
    a, b : array_like
        Arrays of the same shape (scalars allowed).
    eps : float
        Floor of the denominator, so coordinates where both are ~0 count as
        equal.

    Returns
    -------
    float
        :math:`\\max_i |a_i - b_i| / \\max(\\epsilon, |a_i| + |b_i|)`, computed in
        float64; 0.0 for empty arrays, NaN if either holds a NaN.

    Raises
    ------
    ValueError
        If the shapes differ (no broadcasting: comparing a ``(3, 1)`` gradient
        with a ``(3,)`` one is a bug, not a match).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, a has shape {a.shape} and b has shape {b.shape}")
    if a.size == 0:
        return 0.0
    err = np.abs(a - b) / np.maximum(eps, np.abs(a) + np.abs(b))
    return float(np.max(err))


def _check_h(h: float, who: str) -> float:
    h = float(h)
    if not (math.isfinite(h) and h > 0):
        raise ValueError(f"{who}: step h must be a positive finite number, got {h!r}")
    return h


def _check_perturbable(x: Any, who: str) -> np.ndarray:
    """x is perturbed in place, so it must be a writeable floating ndarray."""
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"{who}: x must be a numpy ndarray (it is perturbed in place), got {type(x).__name__}"
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{who}: x must have a floating dtype to be perturbed by h, got dtype {x.dtype}")
    if not x.flags.writeable:
        raise ValueError(f"{who}: x is read-only; it must be writeable (it is perturbed in place and restored)")
    return x


def _normalize_index(index: Iterable[Any] | None, shape: tuple[int, ...], who: str) -> list[tuple[int, ...]]:
    """Turn ``index`` (None, ints for 1-D, or tuples) into checked multi-indices."""
    if index is None:
        return list(np.ndindex(shape))
    out = []
    for ix in index:
        tup = tuple(int(i) for i in np.atleast_1d(ix)) if np.ndim(ix) <= 1 else None
        if tup is None or len(tup) != len(shape):
            raise ValueError(f"{who}: index entry {ix!r} is not a multi-index of an array of shape {shape}")
        if not all(0 <= i < n for i, n in zip(tup, shape)):
            raise ValueError(f"{who}: index entry {tup} is out of bounds for shape {shape}")
        out.append(tup)
    return out


def _as_scalar(value: Any, who: str) -> float:
    arr = np.asarray(value)
    if arr.size != 1:
        raise TypeError(
            f"{who}: f must return a scalar, got an array of shape {arr.shape}; "
            "for array outputs use numerical_gradient_array(f, x, dout)"
        )
    return float(arr.reshape(()))


def _centered(
    f: Callable[[np.ndarray], Any],
    x: np.ndarray,
    h: float,
    coords: list[tuple[int, ...]],
    combine: Callable[[Any, Any], float],
) -> np.ndarray:
    """Shared loop: perturb each coordinate by +-h, restore it exactly.

    ``combine(f_plus, f_minus)`` reduces the two evaluations to the numerator
    of the difference quotient. The denominator is the step actually taken
    (``x[i]+h`` and ``x[i]-h`` are rounded to x's dtype), not the nominal
    ``2h``; in float64 the two agree to ~1e-11 relative, in float32 using the
    real step removes one of the error sources.
    """
    grad = np.zeros(x.shape, dtype=x.dtype)
    for ix in coords:
        old = x[ix]  # a numpy scalar of x's dtype (not a view): restoring it is exact
        try:
            x[ix] = old + h
            x_plus = float(x[ix])
            f_plus = f(x)
            f_plus = np.array(f_plus, dtype=np.float64, copy=True)  # f may return a reused buffer
            x[ix] = old - h
            x_minus = float(x[ix])
            f_minus = np.array(f(x), dtype=np.float64, copy=True)
        finally:
            x[ix] = old
        grad[ix] = combine(f_plus, f_minus) / (x_plus - x_minus)
    return grad


def numerical_gradient(
    f: Callable[[np.ndarray], Any],
    x: np.ndarray,
    h: float = 1e-5,
    *,
    index: Iterable[Any] | None = None,
) -> np.ndarray:
    """Centered-difference gradient of a scalar function.

    .. math::  g_i = \\frac{f(x + h e_i) - f(x - h e_i)}{2h}

    Parameters
    ----------
    f : callable
        ``f(x) -> scalar``. It reads ``x`` by reference: ``x`` is perturbed in
        place, one coordinate at a time.
    x : ndarray, any shape, floating dtype
        Point at which to differentiate. Every perturbed coordinate is restored
        to its exact original value afterwards, also when ``f`` raises.
    h : float
        Step (1e-5 suits float64; see the package docstring).
    index : iterable of multi-indices, optional
        Evaluate only these coordinates (tuples; plain ints for 1-D ``x``);
        the others are left 0. Default: all coordinates.

    Returns
    -------
    ndarray, shape and dtype of ``x``
        The estimate of :math:`\\partial f / \\partial x`.

    Notes
    -----
    Cost: ``2 * len(index)`` (default ``2 * x.size``) calls of ``f``. The
    truncation error is :math:`O(h^2)`.
    """
    who = "numerical_gradient"
    h = _check_h(h, who)
    x = _check_perturbable(x, who)
    coords = _normalize_index(index, x.shape, who)
    return _centered(f, x, h, coords, lambda fp, fm: _as_scalar(fp, who) - _as_scalar(fm, who))


def numerical_gradient_array(
    f: Callable[[np.ndarray], Any],
    x: np.ndarray,
    dout: Any,
    h: float = 1e-5,
    *,
    index: Iterable[Any] | None = None,
) -> np.ndarray:
    """Centered-difference vector-Jacobian product of an array function.

    .. math::  g_i = \\sum_j \\frac{f(x + h e_i)_j - f(x - h e_i)_j}{2h}\\,
               \\mathrm{dout}_j

    i.e. the gradient of the scalar ``sum(f(x) * dout)``, which is what a
    ``*_backward(dout, cache)`` returns for ``x``.

    Parameters
    ----------
    f : callable
        ``f(x) -> ndarray`` of ``dout``'s shape. ``x`` is perturbed in place.
    x : ndarray, any shape, floating dtype
        Restored exactly afterwards, also when ``f`` raises.
    dout : array_like, shape of ``f(x)``
        Upstream gradient.
    h : float
        Step.
    index : iterable of multi-indices, optional
        Evaluate only these coordinates; the others are left 0.

    Returns
    -------
    ndarray, shape and dtype of ``x``

    Notes
    -----
    Cost: ``2 * len(index)`` calls of ``f`` plus one multiply-add over the
    output per call. The sum is accumulated in float64.
    """
    who = "numerical_gradient_array"
    h = _check_h(h, who)
    x = _check_perturbable(x, who)
    dout = np.asarray(dout, dtype=np.float64)
    coords = _normalize_index(index, x.shape, who)

    def combine(fp: np.ndarray, fm: np.ndarray) -> float:
        if fp.shape != dout.shape:
            raise ValueError(f"{who}: f(x) has shape {fp.shape} but dout has shape {dout.shape}; they must match")
        return float(np.sum((fp - fm) * dout))

    return _centered(f, x, h, coords, combine)
