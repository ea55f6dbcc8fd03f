"""The checkers: :func:`check_op` for any forward/backward pair, :func:`check_params` for a whole model."""

from __future__ import annotations

import dataclasses
import math
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from .kinks import KinkFinder, _auto_kinks, maxpool_tie_finder, relu_kink_finder
from .numerical import _as_scalar, _check_h, numerical_gradient, numerical_gradient_array
from .report import GradCheckReport, GradCheckRow, _compare, _sample_coords


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
        Pass threshold on :func:`rel_error` (~1e-7: see the package docstring).
    max_coords : int
        Inputs with more elements are checked on this many coordinates,
        sampled with ``seed``.
    seed : int
        Seeds ``dout`` and the sampled coordinates.
    name : str, optional
        Title of the report; default ``forward.__name__``.
    kinks : {"auto", "relu", "maxpool"}, callable or None
        Which input coordinates sit at a kink, for the hint of a failing row
        (see "Kinks" in the package docstring): a :data:`KinkFinder`, ``"relu"``
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
