"""Numerical gradients and gradient checkers that say what is wrong.

cs231n lecture 4 ("Backpropagation") and the assignments' ``gradient_check.py``:
the analytic gradient a ``*_backward`` function computes is compared with a
numerical estimate from the forward function alone.

Centered differences
--------------------
For a scalar function :math:`f` and a coordinate :math:`x_i`,

.. math::

    \\frac{\\partial f}{\\partial x_i} \\approx
    \\frac{f(x + h e_i) - f(x - h e_i)}{2h},

whose truncation error is :math:`O(h^2)` (:math:`h^2 f'''/6`): the even terms of
the two Taylor series cancel. The one-sided difference
:math:`(f(x + h e_i) - f(x)) / h` is only :math:`O(h)`, which is why nobody uses
it. Rounding adds an error of about :math:`\\epsilon_{mach} |f| / h`, so ``h``
cannot be made arbitrarily small; ``h = 1e-5`` balances the two in float64
(:math:`10^{-10}` truncation, :math:`10^{-11}` rounding).

Why float64
-----------
In float32 :math:`\\epsilon_{mach} \\approx 1.2 \\times 10^{-7}`; with any ``h`` the
two errors above cannot both be small, and a centered difference is good to
about :math:`10^{-3}` relative -- a correct backward and one that is 0.1 % off
look the same. The checkers therefore refuse float32 inputs (``TypeError``):
check in float64, run in float32. minivgg's ops keep dtype in = dtype out, so
a float64 input gives a float64 check of the very same code.

Relative error
--------------
:func:`rel_error` is cs231n's
:math:`\\max_i |a_i - b_i| / \\max(\\epsilon, |a_i| + |b_i|)`, scale-free so one
threshold works for gradients of any size. With ``h = 1e-5`` in float64:
around ``1e-7`` or below is a correct gradient (``1e-10`` is typical for smooth
ops), ``1e-4`` to ``1e-2`` is suspicious (a kink, or a small bug), above
``1e-2`` the gradient is wrong. The checkers default to ``tol = 1e-7``.
The measure is per coordinate, so a coordinate whose true gradient is tiny
compared with the rest (a saturated sigmoid, ~1e-9; a weight that barely
matters, ~1e-6) can fail on rounding noise alone (~1e-11 absolute). The
checkers therefore measure each coordinate relative to at least
:data:`FLOOR_FRACTION` (0.1 %) of the tensor's largest numerical gradient:
round-off on near-zero entries no longer fails a correct backward, while a real
error on such an entry (a wrong sign, a missing term) is still millions of
times above ``tol``. :func:`rel_error` itself stays cs231n's plain formula.

The upstream-gradient trick
---------------------------
A layer maps an array to an array, so its "gradient" is a Jacobian, far too
big to build for a conv layer. Backward never builds it either: it computes the
vector-Jacobian product :math:`\\bar{x} = J^T \\bar{y}` for one upstream
gradient ``dout`` = :math:`\\bar{y}`. That product is exactly the gradient of
the scalar :math:`L(x) = \\sum_j f(x)_j \\, \\bar{y}_j`, so
:func:`numerical_gradient_array` differentiates that scalar:
``grad[i] = sum((f(x + h e_i) - f(x - h e_i)) * dout) / (2h)``. A random
``dout`` exercises every output, so a bug in any of them shows up.

Kinks (ReLU, max-pool)
----------------------
A centered difference straddling a kink averages the two one-sided slopes: if
an input of a ReLU lies within ``h`` of 0 (or two max-pool candidates within
``h`` of each other), the numerical gradient at that coordinate is legitimately
neither 0 nor 1 and disagrees with a correct backward. Use inputs away from the
kink (e.g. ``x`` drawn with ``|x| > 1e-3``, or distinct pool candidates); a
failure on one or two coordinates whose inputs sit near a kink is this effect,
not a bug. Dropout must use a fixed mask (fixed seed) while checking.

The checkers say so: :func:`check_op` takes a *kink finder* (``kinks=``) that
marks the input coordinates whose centered difference may straddle a kink --
:func:`relu_kinks` (``|x| < h``) and :func:`maxpool_ties` (a window's top two
entries within ``2h``, the width of the difference) are built in and chosen
automatically for ops named ``relu``/``maxpool``. A failing row then names the
failing coordinates that sit at a kink, and says whether any failing
coordinate does NOT (that one is a real error). It is a hint, never an
excuse: the row still fails, and the way to decide is to move the inputs away
from the kink. :func:`check_params` takes ``kinks=`` too, a callable of ``h``
describing the activations near a kink (:func:`activation_kinks` inspects a
model's ReLU and max-pool inputs).

Cost
----
Every checked coordinate costs two forward passes, so the checkers sample at
most ``max_coords`` coordinates of a large tensor (seeded) and report how many
they checked. A bug that touches every coordinate (a wrong scale, a missing
term, a transposed weight) is caught by any sample; a bug in a single element
of a big tensor may be missed -- check small shapes for those, or raise
``max_coords`` to the tensor's size. The report says when it sampled, and the
``max_coords`` that checks every coordinate.

This module imports only NumPy and the standard library, so it checks a
student's own forward/backward functions as well as :mod:`minivgg.ops`.
"""

from __future__ import annotations

import dataclasses
import math
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "rel_error",
    "numerical_gradient",
    "numerical_gradient_array",
    "check_op",
    "check_params",
    "GradCheckRow",
    "GradCheckReport",
    "GradCheckError",
    "Kinks",
    "KinkFinder",
    "relu_kinks",
    "maxpool_ties",
    "relu_kink_finder",
    "maxpool_tie_finder",
    "activation_kinks",
]

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
        Step (1e-5 suits float64; see the module docstring).
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


# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GradCheckRow:
    """The check of one input (or one parameter).

    Attributes
    ----------
    name : str
        Input or parameter name (``"x"``, ``"w"``, ``"fc6.w"``...).
    shape : tuple of int
        Its shape.
    checked, total : int
        Coordinates compared, out of ``total`` (= size); fewer when sampled.
    rel_error : float
        Max elementwise :func:`rel_error` over the checked coordinates.
    passed : bool
        ``rel_error <= tol`` (False for NaN).
    worst_index : tuple of int or None
        The checked coordinate with the largest relative error (None when
        nothing was checked), and the two gradients there:
    analytic, numerical : float
        Backward's value and the centered difference at ``worst_index``.
    hint : str or None
        For a failure, what the pattern of the error suggests (a constant
        factor, a sign, an all-zero gradient, a transpose, how many
        coordinates are off, which of them sit at a ReLU kink or pool tie).
    kink_coords : tuple of multi-indices
        Failing coordinates whose inputs sit at a kink (see ``kinks=``); empty
        when none do or no kink finder ran.
    """

    name: str
    shape: tuple[int, ...]
    checked: int
    total: int
    rel_error: float
    passed: bool
    worst_index: tuple[int, ...] | None
    analytic: float
    numerical: float
    hint: str | None = None
    kink_coords: tuple[tuple[int, ...], ...] = ()

    @property
    def sampled(self) -> bool:
        """True when only some coordinates were compared (``checked < total``)."""
        return self.checked < self.total


@dataclass(frozen=True)
class GradCheckReport:
    """All rows of one gradient check, printable as a table.

    Attributes
    ----------
    name : str
        What was checked (the op's name, or ``"params"``).
    tol : float
        Threshold the rows were judged against.
    rows : tuple of GradCheckRow
        One per checked input, in the inputs' order.
    """

    name: str
    tol: float
    rows: tuple[GradCheckRow, ...]

    @property
    def passed(self) -> bool:
        """True when every row passed."""
        return all(r.passed for r in self.rows)

    @property
    def max_rel_error(self) -> float:
        """Largest relative error over all rows (NaN if any row is NaN)."""
        errs = [r.rel_error for r in self.rows]
        if any(math.isnan(e) for e in errs):
            return math.nan
        return max(errs, default=0.0)

    def __getitem__(self, name: str) -> GradCheckRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"gradcheck report {self.name!r} has no row {name!r}; rows: {[r.name for r in self.rows]}")

    def __str__(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        head = ("name", "shape", "coords", "rel_error", "result")
        body = [
            (
                r.name,
                str(r.shape),
                f"{r.checked}/{r.total}",
                f"{r.rel_error:.2e}",
                "PASS" if r.passed else "FAIL",
            )
            for r in self.rows
        ]
        widths = [max(len(line[k]) for line in [head, *body]) for k in range(len(head))]
        lines = [f"gradcheck {self.name}: {verdict} (tol {self.tol:.0e})"]
        for line in [head, *body]:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
        for r in self.rows:
            if r.passed:
                continue
            lines.append(
                f"{r.name}: worst at index {r.worst_index}: analytic {r.analytic:.10g}, "
                f"numerical {r.numerical:.10g} (rel_error {r.rel_error:.2e})"
            )
            if r.hint:
                lines.append(f"{r.name}: {r.hint}")
        sampled = [r for r in self.rows if r.sampled]
        if sampled:
            names = ", ".join(f"{r.name} {r.checked}/{r.total}" for r in sampled[:4])
            more = f" and {len(sampled) - 4} more" if len(sampled) > 4 else ""
            lines.append(
                f"sampled: {names}{more} coordinates checked; a wrong single element outside the sample "
                f"is missed -- pass max_coords={max(r.total for r in sampled)} to check every coordinate"
            )
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        """Raise ``AssertionError(str(self))`` unless every row passed."""
        if not self.passed:
            raise AssertionError(str(self))


def _sample_coords(shape: tuple[int, ...], max_coords: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """All coordinates if there are at most ``max_coords``, else a seeded sample."""
    size = math.prod(shape)
    if size <= max_coords:
        return list(np.ndindex(shape))
    # Sorted so the walk through x is in memory order.
    flat = np.sort(rng.choice(size, size=max_coords, replace=False))
    unravelled = np.unravel_index(flat, shape)
    return [tuple(int(a[k]) for a in unravelled) for k in range(max_coords)]


def _diagnose(
    a: np.ndarray,
    n: np.ndarray,
    err: np.ndarray,
    tol: float,
    analytic_full: np.ndarray,
    numerical_full: np.ndarray,
    complete: bool,
) -> str:
    """A sentence on what the failing pattern suggests (a, n at checked coords)."""
    nbad = int(np.sum(~(err <= tol)))
    count = f"{nbad} of {err.size} checked coordinates exceed tol"
    if not np.all(np.isfinite(a)):
        return f"the analytic gradient contains NaN/inf; {count}"
    if not np.all(np.isfinite(n)):
        return f"the numerical gradient contains NaN/inf (forward is not finite near the input); {count}"
    amax, nmax = float(np.max(np.abs(a))), float(np.max(np.abs(n)))
    if amax == 0.0:
        return (
            "the analytic gradient is zero on every checked coordinate but the numerical one is not "
            f"(backward never fills this gradient?); {count}"
        )
    if nmax == 0.0:
        return (
            "the output does not depend on this input (numerical gradient is zero) "
            f"but backward returns nonzero values; {count}"
        )
    # A constant ratio analytic/numerical: a wrong factor (1/N, 2, a scale) or sign.
    big = np.abs(n) > 1e-3 * nmax
    if np.any(big) and np.all(np.abs(a[~big]) <= 1e-2 * amax):
        ratio = a[big] / n[big]
        r = float(np.median(ratio))
        if r != 0.0 and abs(r - 1.0) > 1e-4 and np.all(np.abs(ratio - r) <= 1e-4 * abs(r)):
            if abs(r + 1.0) <= 1e-4:
                return f"analytic = -numerical on every checked coordinate: a sign error; {count}"
            return (
                f"analytic = {r:.6g} x numerical on every checked coordinate: a constant factor is wrong "
                f"(a missing 1/N, 2 or scale?); {count}"
            )
    # A transposed square gradient (only decidable when every coordinate was checked).
    if complete and analytic_full.ndim == 2 and analytic_full.shape[0] == analytic_full.shape[1]:
        if rel_error(analytic_full.T, numerical_full) <= max(tol, 1e-6):
            return f"analytic matches the numerical gradient TRANSPOSED: a transposed product in backward; {count}"
    return count


def _compare(
    name: str,
    analytic: np.ndarray,
    numerical: np.ndarray,
    coords: list[tuple[int, ...]],
    tol: float,
    kinks: Kinks | None = None,
) -> GradCheckRow:
    shape = tuple(analytic.shape)
    total = math.prod(shape)
    if not coords:
        return GradCheckRow(name, shape, 0, total, 0.0, True, None, math.nan, math.nan)
    a = np.array([analytic[c] for c in coords], dtype=np.float64)
    n = np.array([numerical[c] for c in coords], dtype=np.float64)
    # floor the denominator at 0.1% of the largest |numerical| (see "Relative error")
    floor = max(REL_EPS, FLOOR_FRACTION * float(np.max(np.abs(n), initial=0.0, where=np.isfinite(n))))
    err = np.abs(a - n) / np.maximum(floor, np.abs(a) + np.abs(n))
    k = int(np.argmax(err))  # the first NaN if there is one: NaN is the worst
    worst = float(err[k])
    passed = bool(worst <= tol)
    hint, at_kink = None, ()
    if not passed:
        hint = _diagnose(a, n, err, tol, analytic, numerical, complete=len(coords) == total)
        failing = [c for c, e in zip(coords, err) if not e <= tol]
        if kinks is not None and name in kinks.masks:
            at_kink, kink_hint = _kink_hint(failing, kinks.masks[name], kinks.what)
            if kink_hint:
                hint = f"{hint}; {kink_hint}"
    return GradCheckRow(name, shape, len(coords), total, worst, passed, coords[k], float(a[k]), float(n[k]), hint,
                        at_kink)


def _kink_hint(failing: list[tuple[int, ...]], mask: np.ndarray, what: str) -> tuple[tuple, str]:
    """The failing coordinates that sit at a kink, and a sentence about them ("" when none do)."""
    at = tuple(c for c in failing if mask[c])
    if not at:
        return (), ""
    shown = ", ".join(map(str, at[:5])) + (f" and {len(at) - 5} more" if len(at) > 5 else "")
    verb = "sits" if len(at) == 1 else "sit"
    text = (f"{len(at)} of the {len(failing)} failing coordinates {verb} at a {what}: {shown}. A centered difference "
            "there averages two slopes, so a correct backward can fail on them; move those inputs away from "
            "the kink to decide (this check still FAILS)")
    others = len(failing) - len(at)
    if others:
        text += f"; the other {others} failing coordinates are not near a kink -- a real error"
    return at, text


def _check_settings(h: float, tol: float, max_coords: int, who: str) -> tuple[float, float, int]:
    h = _check_h(h, who)
    tol = float(tol)
    if not (tol > 0):
        raise ValueError(f"{who}: tol must be positive, got {tol!r}")
    if isinstance(max_coords, bool) or not isinstance(max_coords, (int, np.integer)) or max_coords < 1:
        raise ValueError(f"{who}: max_coords must be a positive int, got {max_coords!r}")
    return h, tol, int(max_coords)


_FLOAT32_WHY = (
    "gradient checks need float64: a float32 centered difference is only ~1e-3 accurate, "
    "so a correct and a slightly wrong backward look the same. Pass arrays converted with "
    ".astype(np.float64) (minivgg ops keep dtype in = dtype out, so the float64 run checks the same code)"
)


# ---------------------------------------------------------------------------
# Kinks: where a centered difference legitimately disagrees
# ---------------------------------------------------------------------------


class Kinks(NamedTuple):
    """What a kink finder returns: per input name, the coordinates at a kink.

    ``masks[name]`` is a boolean array of that input's shape, True where
    perturbing the coordinate by ``+-h`` can cross a kink; ``what`` names the
    kind for the report ("ReLU kink (|x| < h)").
    """

    what: str
    masks: dict[str, np.ndarray]


#: ``finder(inputs, h, cache) -> Kinks | None``: ``inputs`` the op's unperturbed
#: inputs by name, ``h`` the step, ``cache`` what the op's forward returned beside ``out``.
KinkFinder = Callable[[Mapping[str, np.ndarray], float, Any], "Kinks | None"]


def relu_kinks(x: np.ndarray, h: float) -> np.ndarray:
    """Boolean mask of ``x``'s entries within ``h`` of ReLU's kink at 0 (``|x| < h``); shape of ``x``."""
    return np.abs(np.asarray(x)) < h


def maxpool_ties(x: np.ndarray, h: float, size: int = 2, stride: int = 2, *, live_only: bool = False) -> np.ndarray:
    """Boolean mask of max-pool inputs at a tie: within ``2h`` of their window's maximum, when another entry is too.

    For ``x`` (N, C, H, W) and ``size x size`` windows every ``stride``
    pixels: a window is *tied* when its top two entries differ by less than
    ``2h`` (the width of a centered difference, so perturbing either can change
    which one wins); every entry of a tied window within ``2h`` of its maximum
    is marked. Windows overlap when ``stride < size``; marks accumulate.
    ``live_only`` skips windows whose maximum is exactly 0: behind a ReLU those
    are dead units, which pass no gradient whichever entry wins (the ReLU's own
    kink check covers them). Cost: ``N*C*H_out*W_out*size^2`` comparisons plus
    one sort per window.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"maxpool_ties: x must be (N, C, H, W), got shape {x.shape}")
    n, c, height, width = x.shape
    ho, wo = (height - size) // stride + 1, (width - size) // stride + 1
    mask = np.zeros(x.shape, dtype=bool)
    if ho < 1 or wo < 1:
        return mask
    # every window's entries, (N, C, H_out, W_out, size*size), by strided slices of x
    win = np.stack([x[:, :, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
                    for i in range(size) for j in range(size)], axis=-1)
    if win.shape[-1] < 2:
        return mask
    top = np.sort(win, axis=-1)
    best = top[..., -1]
    tied = (best - top[..., -2]) < 2 * h  # (N, C, H_out, W_out)
    if live_only:
        tied &= best != 0
    for k in range(size * size):
        i, j = divmod(k, size)
        near = tied & (best - win[..., k] < 2 * h)
        mask[:, :, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride] |= near
    return mask


def relu_kink_finder(input: str | None = None) -> KinkFinder:
    """A kink finder for a ReLU-like op: :func:`relu_kinks` of ``input`` (default: the op's first input)."""

    def find(inputs: Mapping[str, np.ndarray], h: float, cache: Any) -> Kinks:
        key = input if input is not None else next(iter(inputs))
        return Kinks("ReLU kink (|x| < h)", {key: relu_kinks(inputs[key], h)})

    return find


def maxpool_tie_finder(size: int | None = None, stride: int | None = None, input: str | None = None) -> KinkFinder:
    """A kink finder for max-pooling: :func:`maxpool_ties` of ``input`` (default: the first input).

    ``size``/``stride`` default to the cache's ``size``/``stride`` attributes
    (minivgg's ``MaxPoolCache`` has them), else 2 and 2 (VGG's pooling).
    """

    def find(inputs: Mapping[str, np.ndarray], h: float, cache: Any) -> Kinks | None:
        key = input if input is not None else next(iter(inputs))
        x = inputs[key]
        if np.ndim(x) != 4:
            return None
        sz = size if size is not None else int(getattr(cache, "size", 2))
        st = stride if stride is not None else int(getattr(cache, "stride", 2))
        return Kinks(f"max-pool tie (two window entries within 2h = {2 * h:.0e})", {key: maxpool_ties(x, h, sz, st)})

    return find


def _auto_kinks(label: str) -> KinkFinder | None:
    """The built-in finder an op's name suggests (``relu``, ``maxpool``/``max_pool``), else None."""
    lower = label.lower()
    if "relu" in lower:
        return relu_kink_finder()
    if "maxpool" in lower or "max_pool" in lower:
        return maxpool_tie_finder()
    return None


def activation_kinks(layers: Iterable[Any], x: np.ndarray, h: float, *, margin: float | None = None) -> str | None:
    """For a whole-model check: which ReLU and max-pool layers see inputs at a kink, as one sentence.

    Runs ``x`` through ``layers`` (objects with ``.name`` and
    ``.forward(x)``, in order, such as ``model.layers``) and inspects the input
    of every layer whose class is named ``ReLU`` or contains ``MaxPool`` (with
    ``size``/``stride`` attributes): ReLU inputs closer than ``margin`` to 0,
    pool windows whose top two entries are closer than ``2 * margin``.
    ``margin`` defaults to ``h``; a parameter perturbation of ``h`` moves an
    activation by about ``h`` times the activation feeding it, so a larger
    margin can be the honest one for big activations. Returns None when no
    layer is near a kink. Use as ``check_params(..., kinks=lambda h:
    activation_kinks(model.layers, x, h))``. Cost: one forward pass.
    """
    margin = h if margin is None else margin
    found = []
    for layer in layers:
        kind = type(layer).__name__
        if kind == "ReLU":
            mask = relu_kinks(x, margin)
        elif "MaxPool" in kind:
            # behind a ReLU (no negative inputs) an all-zero window is a dead unit, not a tie that matters
            mask = maxpool_ties(x, margin, int(getattr(layer, "size", 2)), int(getattr(layer, "stride", 2)),
                                live_only=bool(x.min() >= 0))
        else:
            mask = None
        if mask is not None and mask.any():
            first = tuple(int(i) for i in np.argwhere(mask)[0])
            found.append(f"{getattr(layer, 'name', kind)} ({int(mask.sum())} inputs, first at {first})")
        x = layer.forward(x)
    if not found:
        return None
    return ("activations sit at a ReLU kink or max-pool tie (within h) in " + ", ".join(found)
            + "; a correct backward can fail there -- choose an input away from kinks to decide (this check still FAILS)")


class GradCheckError(RuntimeError):
    """The function under check (forward, backward, loss) raised; the message names it and what it raised."""


def _raised(who: str, what: str, exc: BaseException) -> GradCheckError:
    """A one-line GradCheckError for ``exc`` raised by the user's ``what``, naming where it came from."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""
    return GradCheckError(f"{who}: {what} raised {type(exc).__name__}: {exc}{where}")


# ---------------------------------------------------------------------------
# check_op: any forward/backward pair
# ---------------------------------------------------------------------------


def check_op(
    forward: Callable[..., Any],
    backward: Callable[[np.ndarray, Any], Any],
    inputs: Mapping[str, np.ndarray],
    *,
    wrt: Iterable[str] | str | None = None,
    dout: Any = None,
    h: float = 1e-5,
    tol: float = 1e-7,
    max_coords: int = 200,
    seed: int = 0,
    name: str | None = None,
    kinks: KinkFinder | str | None = "auto",
) -> GradCheckReport:
    """Gradient-check a cs231n-style forward/backward pair.

    The analytic gradients ``backward(dout, cache)`` are compared with
    :func:`numerical_gradient_array` of ``forward`` for each input in ``wrt``.

    Parameters
    ----------
    forward : callable
        ``forward(*inputs.values())`` returns ``(out, cache)`` or just ``out``
        (then ``backward`` receives ``cache=None``). Bind extra non-array
        arguments with ``lambda``/``functools.partial``, e.g.
        ``lambda x, w, b: conv2d_forward(x, w, b, stride=2, pad=0)``.
    backward : callable
        ``backward(dout, cache)`` returns the gradients in the order of
        ``inputs``: a tuple/list, or a single array when there is one input.
        Entries for inputs not in ``wrt`` are not inspected (may be None).
    inputs : mapping of str to ndarray
        Ordered ``{"x": x, "w": w, "b": b}``. The checker works on copies, so
        the caller's arrays are never modified.
    wrt : str or iterable of str, optional
        Inputs to check; default all. Each must be float64.
    dout : array_like, optional
        Upstream gradient, shape of ``out``. Default: seeded standard normal
        of ``out``'s shape and dtype.
    h : float
        Finite-difference step.
    tol : float
        Pass threshold on :func:`rel_error` (~1e-7: see the module docstring).
    max_coords : int
        Inputs with more elements are checked on this many coordinates,
        sampled with ``seed``.
    seed : int
        Seeds ``dout`` and the sampled coordinates.
    name : str, optional
        Title of the report; default ``forward.__name__``.
    kinks : {"auto", "relu", "maxpool"}, callable or None
        Which input coordinates sit at a kink, for the hint of a failing row
        (see "Kinks" in the module docstring): a :data:`KinkFinder`, ``"relu"``
        (:func:`relu_kink_finder`), ``"maxpool"`` (:func:`maxpool_tie_finder`),
        ``"auto"`` (the default: picked by the report's name, ``relu``/``maxpool``,
        none otherwise) or None (no kink hints). Never changes the verdict.

    Returns
    -------
    GradCheckReport
        One row per checked input; ``report.raise_if_failed()`` in a test.

    Raises
    ------
    TypeError
        A checked input is not float64, or ``inputs`` is not a mapping of
        arrays.
    ValueError
        Unknown ``wrt`` name, a ``dout`` of the wrong shape, ``forward``
        returning something other than ``out`` or ``(out, cache)``,
        ``backward`` returning the wrong number of gradients or a gradient
        of the wrong shape, or ``forward``/``backward`` modifying an input in
        place.
    GradCheckError
        ``forward`` or ``backward`` raised: the message names the op, which of
        the two, the exception and the line it came from (chained as
        ``__cause__``).

    Notes
    -----
    Cost: one forward + backward, then ``2 * checked`` forward calls per
    checked input (``checked = min(size, max_coords)``).
    """
    label = name or getattr(forward, "__name__", None) or "op"
    if label == "<lambda>":
        label = "op"
    who = f"check_op({label})"
    h, tol, max_coords = _check_settings(h, tol, max_coords, who)
    finders = {"auto": _auto_kinks(label), "relu": relu_kink_finder(), "maxpool": maxpool_tie_finder()}
    if isinstance(kinks, str):
        if kinks not in finders:
            raise ValueError(f"{who}: kinks must be 'auto', 'relu', 'maxpool', a callable or None, got {kinks!r}")
        kinks = finders[kinks]
    elif kinks is not None and not callable(kinks):
        raise TypeError(f"{who}: kinks must be 'auto', 'relu', 'maxpool', a callable or None, "
                        f"got {type(kinks).__name__}")

    if not isinstance(inputs, Mapping) or len(inputs) == 0:
        raise TypeError(f"{who}: inputs must be a non-empty mapping name -> ndarray, got {type(inputs).__name__}")
    names = list(inputs)
    for k in names:
        if not isinstance(inputs[k], np.ndarray):
            raise TypeError(f"{who}: input {k!r} must be a numpy ndarray, got {type(inputs[k]).__name__}")
    if wrt is None:
        checked_names = names
    else:
        checked_names = [wrt] if isinstance(wrt, str) else list(wrt)
        unknown = [k for k in checked_names if k not in inputs]
        if unknown:
            raise ValueError(f"{who}: wrt names {unknown} are not inputs; inputs are {names}")
        checked_names = [k for k in names if k in checked_names]  # keep the inputs' order
    for k in checked_names:
        if inputs[k].dtype != np.float64:
            raise TypeError(f"{who}: input {k!r} has dtype {inputs[k].dtype}; {_FLOAT32_WHY}")

    # Work on copies: the caller's arrays stay untouched and serve as the
    # reference for detecting in-place modification by forward/backward.
    work = {k: np.array(v, copy=True) for k, v in inputs.items()}

    def run_forward() -> tuple[np.ndarray, Any]:
        try:
            res = forward(*work.values())
        except Exception as exc:  # the user's code: say whose, not a traceback from deep inside the checker
            raise _raised(who, "forward", exc) from exc
        if isinstance(res, tuple):
            if len(res) != 2:
                raise ValueError(
                    f"{who}: forward returned a tuple of {len(res)} items; expected out or (out, cache)"
                )
            out, cache = res
        else:
            out, cache = res, None
        return np.asarray(out), cache

    out, cache = run_forward()
    if dout is None:
        dout_arr = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype, copy=False)
    else:
        dout_arr = np.asarray(dout)
        if dout_arr.shape != out.shape:
            raise ValueError(f"{who}: dout has shape {dout_arr.shape} but forward's output has shape {out.shape}")
    # A copy, so a backward that writes into dout cannot corrupt the numerical side.
    try:
        grads = backward(dout_arr.copy(), cache)
    except Exception as exc:
        raise _raised(who, "backward", exc) from exc

    if len(names) == 1 and not isinstance(grads, (tuple, list)):
        grads = (grads,)
    if not isinstance(grads, (tuple, list)) or len(grads) != len(names):
        got = f"{len(grads)} gradients" if isinstance(grads, (tuple, list)) else f"a single {type(grads).__name__}"
        raise ValueError(
            f"{who}: backward returned {got}, expected {len(names)}, one per input in the order ({', '.join(names)})"
        )
    analytic: dict[str, np.ndarray] = {}
    for k, g in zip(names, grads):
        if k not in checked_names:
            continue
        if g is None:
            raise ValueError(f"{who}: backward returned None for the gradient of {k!r}")
        g = np.asarray(g)
        want = inputs[k].shape
        if g.shape != want:
            hint = " (transposed?)" if g.shape == want[::-1] else ""
            raise ValueError(
                f"{who}: gradient for {k!r} has shape {g.shape} but input {k!r} has shape {want}{hint}; "
                "backward must return each gradient with its input's shape"
            )
        analytic[k] = g
    for k in checked_names:
        if not np.array_equal(work[k], inputs[k], equal_nan=True):
            raise ValueError(
                f"{who}: forward/backward modified input {k!r} in place; the op must not write into its inputs"
            )

    at_kinks = None
    if kinks is not None:
        try:
            at_kinks = kinks({k: inputs[k] for k in names}, h, cache)
        except Exception as exc:
            raise _raised(who, "the kink finder", exc) from exc
        for k, mask in (at_kinks.masks.items() if at_kinks is not None else ()):
            if k not in inputs or np.shape(mask) != inputs[k].shape:
                raise ValueError(f"{who}: the kink finder's mask for {k!r} has shape {np.shape(mask)}; expected "
                                 f"one of the inputs {names} with its shape")
    rows = []
    for j, k in enumerate(names):
        if k not in checked_names:
            continue
        coords = _sample_coords(work[k].shape, max_coords, np.random.default_rng((seed, j + 1)))
        numerical = numerical_gradient_array(lambda _x: run_forward()[0], work[k], dout_arr, h, index=coords)
        rows.append(_compare(k, analytic[k], numerical, coords, tol, at_kinks))
    return GradCheckReport(label, tol, tuple(rows))


# ---------------------------------------------------------------------------
# check_params: a whole model
# ---------------------------------------------------------------------------


def check_params(
    loss_fn: Callable[[], Any],
    params: Mapping[str, np.ndarray],
    grads: Mapping[str, Any],
    *,
    h: float = 1e-5,
    tol: float = 1e-7,
    max_coords: int = 50,
    seed: int = 0,
    kinks: Callable[[float], str | None] | None = None,
) -> GradCheckReport:
    """Gradient-check a whole model's parameter gradients.

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn()`` returns the scalar loss computed from the *current*
        values of the arrays in ``params`` (or a tuple whose first item is the
        loss, such as ``model.loss(x, y)``). It must be deterministic: train
        mode with dropout needs a fixed mask, so prefer ``dropout=0``.
    params : mapping of str to ndarray
        The model's own float64 parameter arrays (e.g. ``model.params``).
        They are perturbed in place and restored exactly, also on error.
    grads : mapping of str to array_like
        Analytic gradients, same keys and shapes. They are copied first, so a
        ``loss_fn`` that rewrites ``model.grads`` does not change them.
    h, tol : float
        Step and pass threshold.
    max_coords : int
        Coordinates sampled per parameter (all of them for small ones).
    seed : int
        Seeds the sample.
    kinks : callable, optional
        ``kinks(h)`` returns a sentence on activations at a ReLU kink or
        max-pool tie (or None), added to the hint of every failing row, e.g.
        ``lambda h: activation_kinks(model.layers, x, h)``. Called only when a
        row fails; never changes the verdict.

    Returns
    -------
    GradCheckReport
        Named ``"params"``, one row per key in ``params``' order.

    Raises
    ------
    ValueError
        Missing or extra keys in ``grads``, a shape mismatch (naming the key),
        or a ``loss_fn`` that returns different values on two identical calls.
    TypeError
        A parameter that is not a float64 ndarray.

    Notes
    -----
    Cost: ``2 + 2 * sum(min(size, max_coords))`` calls of ``loss_fn``.
    """
    who = "check_params"
    h, tol, max_coords = _check_settings(h, tol, max_coords, who)
    missing = [k for k in params if k not in grads]
    extra = [k for k in grads if k not in params]
    if missing or extra:
        raise ValueError(
            f"{who}: params and grads must have the same keys; missing from grads: {missing}, "
            f"not in params: {extra}"
        )
    analytic: dict[str, np.ndarray] = {}
    for k, p in params.items():
        if not isinstance(p, np.ndarray):
            raise TypeError(f"{who}: parameter {k!r} must be a numpy ndarray, got {type(p).__name__}")
        if p.dtype != np.float64:
            raise TypeError(f"{who}: parameter {k!r} has dtype {p.dtype}; {_FLOAT32_WHY}")
        g = np.array(grads[k], dtype=np.float64, copy=True)
        if g.shape != p.shape:
            raise ValueError(f"{who}: gradient {k!r} has shape {g.shape} but parameter {k!r} has shape {p.shape}")
        analytic[k] = g

    def loss() -> float:
        try:
            value = loss_fn()
        except Exception as exc:
            raise _raised(who, "loss_fn", exc) from exc
        if isinstance(value, tuple):
            value = value[0]
        return _as_scalar(value, who)

    first, second = loss(), loss()
    if first != second and not (math.isnan(first) and math.isnan(second)):
        raise ValueError(
            f"{who}: loss_fn returned {first!r} then {second!r} for the same parameters; it must be "
            "deterministic (turn dropout off or fix its seed)"
        )

    rows = []
    for j, (k, p) in enumerate(params.items()):
        coords = _sample_coords(p.shape, max_coords, np.random.default_rng((seed, j + 1)))
        numerical = numerical_gradient(lambda _p: loss(), p, h, index=coords)
        rows.append(_compare(k, analytic[k], numerical, coords, tol))
    if kinks is not None and not all(r.passed for r in rows):
        try:
            sentence = kinks(h)
        except Exception as exc:
            raise _raised(who, "the kink finder", exc) from exc
        if sentence:
            rows = [r if r.passed else _with_hint(r, sentence) for r in rows]
    return GradCheckReport("params", tol, tuple(rows))


def _with_hint(row: GradCheckRow, sentence: str) -> GradCheckRow:
    return dataclasses.replace(row, hint=f"{row.hint}; {sentence}" if row.hint else sentence)
