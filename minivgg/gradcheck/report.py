"""The report of a gradient check: one row per input, the diagnosis of a failure, the sample of coordinates."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .numerical import FLOOR_FRACTION, REL_EPS, rel_error

if TYPE_CHECKING:  # annotations only
    from .kinks import Kinks


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
