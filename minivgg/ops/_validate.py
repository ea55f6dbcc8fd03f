"""Input checks shared by the ops: clear errors instead of deep NumPy failures.

Every message names the layer (``name``), what was expected and what was given.
"""

from __future__ import annotations

import numpy as np


def check_float_array(arr, name: str, what: str, ndim: int | None = None, min_ndim: int | None = None) -> np.ndarray:
    """Return ``arr`` if it is a real floating ndarray of the right rank, else raise.

    Raises
    ------
    TypeError
        Not an ndarray, or an integer/bool/complex dtype.
    ValueError
        Wrong number of dimensions or an empty array.
    """
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name}: {what} must be a numpy.ndarray, got {type(arr).__name__}")
    if arr.dtype.kind != "f":
        raise TypeError(
            f"{name}: {what} must have a floating dtype (float32 or float64), got {arr.dtype}"
        )
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: {what} must be {ndim}-D, got shape {arr.shape} ({arr.ndim}-D)")
    if min_ndim is not None and arr.ndim < min_ndim:
        raise ValueError(f"{name}: {what} must have at least {min_ndim} dimensions, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: {what} is empty (shape {arr.shape})")
    return arr


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


def check_positive_int(value, name: str, what: str, minimum: int = 1) -> int:
    """Return ``value`` as int if it is an int >= ``minimum``, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: {what} must be an int >= {minimum}, got {value!r}")
    return int(value)
