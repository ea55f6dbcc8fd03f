"""Input checks shared by the package: clear errors instead of deep NumPy failures.

Every check of arrays, dtypes, ints, reals, random generators and keyed state
lives here, so the whole package reports bad input in one voice: every message
names the layer, class or function (``name``), what was expected and what was
given. Each check returns the value (converted to a plain Python type where
that is the point of the check) so callers can write ``x = check_...(x, ...)``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np


# ------------------------------------------------------------------- arrays
def check_array(
    arr,
    name: str,
    what: str,
    ndim: int | None = None,
    min_ndim: int | None = None,
    *,
    axes: str | None = None,
    floating: bool = False,
    nonempty: bool = False,
) -> np.ndarray:
    """Return ``arr`` if it is an ndarray of the right rank (and dtype kind), else raise.

    Parameters
    ----------
    ndim, min_ndim : int, optional
        Exact / minimum number of dimensions.
    axes : str, optional
        What the axes mean, shown in the rank error (e.g. ``"(N, C, H, W)"``).
    floating : bool
        Require a real floating dtype (float32 or float64).
    nonempty : bool
        Reject arrays with no elements.

    Raises
    ------
    TypeError
        Not an ndarray, or (``floating``) an integer/bool/complex dtype.
    ValueError
        Wrong number of dimensions, or (``nonempty``) an empty array.
    """
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name}: {what} must be a numpy.ndarray, got {type(arr).__name__}")
    if floating and arr.dtype.kind != "f":
        raise TypeError(
            f"{name}: {what} must have a floating dtype (float32 or float64), got {arr.dtype}"
        )
    if ndim is not None and arr.ndim != ndim:
        layout = f" {axes}" if axes else ""
        raise ValueError(f"{name}: {what} must be {ndim}-D{layout}, got shape {arr.shape} ({arr.ndim}-D)")
    if min_ndim is not None and arr.ndim < min_ndim:
        raise ValueError(f"{name}: {what} must have at least {min_ndim} dimensions, got shape {arr.shape}")
    if nonempty and arr.size == 0:
        raise ValueError(f"{name}: {what} is empty (shape {arr.shape})")
    return arr


def check_float_array(arr, name: str, what: str, ndim: int | None = None, min_ndim: int | None = None) -> np.ndarray:
    """Return ``arr`` if it is a non-empty real floating ndarray of the right rank, else raise.

    The check every op runs on its inputs (see :func:`check_array`).

    Raises
    ------
    TypeError
        Not an ndarray, or an integer/bool/complex dtype.
    ValueError
        Wrong number of dimensions or an empty array.
    """
    return check_array(arr, name, what, ndim, min_ndim, floating=True, nonempty=True)


def check_same_dtype(name: str, ref: np.ndarray, **others: np.ndarray) -> None:
    """Raise TypeError if any of ``others`` has a different dtype from ``ref``.

    minivgg never mixes precisions silently: float32 in, float32 out.
    """
    for label, arr in others.items():
        if arr.dtype != ref.dtype:
            raise TypeError(
                f"{name}: {label} has dtype {arr.dtype} but the input is {ref.dtype}; "
                "cast one of them (minivgg never upcasts silently)"
            )


# ------------------------------------------------------------------ numbers
def check_positive_int(value, name: str, what: str, minimum: int = 1) -> int:
    """Return ``value`` as int if it is an int >= ``minimum``, else raise ValueError.

    ``bool`` is refused (``True`` is an int to Python, never a count to a user).
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: {what} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_real(
    value: Any,
    name: str,
    what: str,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as float if it is a finite real number in the given interval, else raise.

    ``low``/``high`` bound the interval, closed unless ``low_open``/``high_open``:
    ``check_real(lr, "SGD", "lr", 0, low_open=True)`` demands ``lr > 0``,
    ``check_real(mu, "SGD", "momentum", 0, 1, high_open=True)`` demands ``0 <= mu < 1``.

    Raises
    ------
    TypeError
        Not an int or float (``bool`` is refused).
    ValueError
        NaN or infinite, or outside the interval (the message spells the interval).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: {what} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name}: {what} must be finite, got {value!r}")
    below = low is not None and (v <= low if low_open else v < low)
    above = high is not None and (v >= high if high_open else v > high)
    if below or above:
        if low is not None and high is not None:
            expected = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        elif low is not None:
            expected = f"{'>' if low_open else '>='} {low:g}"
        else:
            expected = f"{'<' if high_open else '<='} {high:g}"
        raise ValueError(f"{name}: {what} must be {expected}, got {value!r}")
    return v


def check_scalar(value: Any, name: str, what: str, *, integer: bool = False) -> float | int:
    """Return a stored scalar as a Python float (or int), accepting the 0-d arrays ``np.load`` returns.

    Raises
    ------
    ValueError
        Not a 0-d number, or (``integer``) a number with a fractional part.
    """
    arr = np.asarray(value)
    if arr.ndim != 0 or arr.dtype.kind not in ("i", "u", "f", "b"):
        raise ValueError(f"{name}: {what} must be a scalar number, got {value!r}")
    v = arr.item()
    if integer:
        if float(v) != int(v):
            raise ValueError(f"{name}: {what} must be an integer, got {v!r}")
        return int(v)
    return float(v)


# ------------------------------------------------------------- randomness
def check_rng(rng: Any, name: str, what: str = "rng") -> np.random.Generator:
    """Return ``rng`` if it is a ``numpy.random.Generator``, else raise TypeError.

    The legacy ``RandomState`` and bare seeds are refused: randomness in minivgg
    always comes from an explicit Generator, so runs are reproducible.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{name}: {what} must be a numpy.random.Generator (np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    return rng


# ------------------------------------------------------------ keyed state
def check_keys(given, expected, name: str, what: str, against: str) -> None:
    """Raise ValueError listing the missing and unexpected keys if ``set(given) != set(expected)``.

    ``what`` names the keys checked (``"grads keys"``), ``against`` what they
    should match (``"the parameters"``); at most five keys of each kind are shown.
    """
    expected, given = set(expected), set(given)
    if given == expected:
        return
    missing = sorted(expected - given)
    extra = sorted(given - expected)
    parts = []
    if missing:
        parts.append(f"missing key(s) {missing[:5]}" + (" ..." if len(missing) > 5 else ""))
    if extra:
        parts.append(f"unexpected key(s) {extra[:5]}" + (" ..." if len(extra) > 5 else ""))
    raise ValueError(f"{name}: {what} do not match {against}: " + "; ".join(parts))


def check_settings_match(saved: Mapping[str, Any], mine: Mapping[str, float], name: str, owner: str) -> None:
    """Raise ValueError if a saved setting (momentum, betas, gamma...) differs from ``owner``'s own.

    Resuming must continue the same run: a state saved with other settings is
    refused rather than silently mixed with this object's.
    """
    for key, value in mine.items():
        theirs = check_scalar(saved[key], name, f"'{key}'")
        if theirs != value:
            raise ValueError(f"{name}: saved {key}={theirs!r} but {owner} has {key}={value!r}")
