"""What the walkthrough notebook plots: the gradient check of one exercise, coordinate by coordinate.

:func:`check_exercise` reports the worst coordinate; a plot of *every*
coordinate's error shows the pattern behind a bug: a missing ``1/N`` lifts
all of them to the same level, a wrong stride in a conv backward only the
pixels the stride skips, a wrong ReLU mask exactly the negative inputs.
Cost: ``2 * size`` forward calls per input of the chosen case (the cases are
a few hundred numbers at most).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable, NamedTuple

import numpy as np

from ..gradcheck import numerical_gradient_array
from ._timeout import run_with_time_limit
from .checks import CASE_TIMEOUT, EXERCISES


class CoordinateErrors(NamedTuple):
    """One input's gradients on every coordinate: ``analytic``, ``numerical`` and their relative error.

    ``rel_error[i] = |a_i - n_i| / max(1e-12, |a_i| + |n_i|)``, all arrays with the input's shape.
    """
    name: str
    analytic: np.ndarray
    numerical: np.ndarray
    rel_error: np.ndarray


def _pair(S: ModuleType, exercise: str, kw: dict[str, Any]) -> tuple[Callable, Callable, dict[str, np.ndarray]]:
    """(forward, backward, array inputs) of the student's pair for one case of ``exercise``."""
    if exercise == "affine":
        return S.affine_forward, S.affine_backward, dict(x=kw["x"], w=kw["w"], b=kw["b"])
    if exercise == "relu":
        return S.relu_forward, S.relu_backward, dict(x=kw["x"])
    if exercise == "conv":
        param = {"stride": kw["stride"], "pad": kw["pad"]}
        return (lambda x, w, b: S.conv_forward_naive(x, w, b, dict(param)), S.conv_backward_naive,
                dict(x=kw["x"], w=kw["w"], b=kw["b"]))
    if exercise == "max_pool":
        param = {"pool_height": kw["size"], "pool_width": kw["size"], "stride": kw["stride"]}
        return lambda x: S.max_pool_forward_naive(x, dict(param)), S.max_pool_backward_naive, dict(x=kw["x"])
    if exercise == "softmax":
        y = kw["y"]
        return lambda x: S.softmax_loss(x, y), lambda dout, dx: np.asarray(dx) * dout, dict(x=kw["x"])
    raise ValueError(f"exercise {exercise!r} does not exist; exercises are {list(EXERCISES)}")


def case_labels(exercise: str, seed: int = 0) -> list[str]:
    """The labels of ``exercise``'s cases, smallest first (index them with ``case=`` below)."""
    if exercise not in EXERCISES:
        raise ValueError(f"exercise {exercise!r} does not exist; exercises are {list(EXERCISES)}")
    return [label for label, _ in EXERCISES[exercise][1](np.random.default_rng(seed))]


def coordinate_errors(S: ModuleType, exercise: str, case: int = -1, seed: int = 0,
                      timeout: float | None = CASE_TIMEOUT) -> list[CoordinateErrors]:
    """The student's backward against centered differences on every coordinate of one case.

    ``case`` indexes :func:`case_labels` (default: the last, largest one). ``dout`` is seeded
    standard normal (a scalar 1 for ``softmax``, whose output is the loss). Exceptions of the
    student's code (``NotImplementedError`` included) propagate: check the exercise first.
    """
    cases = list(EXERCISES[exercise][1](np.random.default_rng(seed))) if exercise in EXERCISES else []
    if not cases:
        raise ValueError(f"exercise {exercise!r} does not exist; exercises are {list(EXERCISES)}")
    if not -len(cases) <= case < len(cases):
        raise ValueError(f"exercise {exercise!r} has {len(cases)} cases; case={case} is out of range")
    fwd, bwd, inputs = _pair(S, exercise, cases[case][1])

    def run() -> list[CoordinateErrors]:
        out, cache = fwd(*[v.copy() for v in inputs.values()])
        out = np.asarray(out, dtype=np.float64)
        dout = np.random.default_rng(seed).standard_normal(out.shape)
        grads = bwd(dout.copy(), cache)
        if len(inputs) == 1 and not isinstance(grads, (tuple, list)):
            grads = (grads,)
        rows = []
        for (name, x), g in zip(inputs.items(), grads):
            g = np.asarray(g, dtype=np.float64)
            if g.shape != x.shape:
                raise ValueError(f"{exercise}: the gradient of {name} has shape {g.shape}, expected {x.shape}")
            work = {k: v.copy() for k, v in inputs.items()}

            def f(xk, name=name, work=work):
                work[name] = xk
                return np.asarray(fwd(*work.values())[0], dtype=np.float64)

            num = numerical_gradient_array(f, work[name], dout)
            err = np.abs(g - num) / np.maximum(1e-12, np.abs(g) + np.abs(num))
            rows.append(CoordinateErrors(name, g, num, err))
        return rows

    with np.errstate(all="ignore"):
        return run_with_time_limit(run, timeout)
