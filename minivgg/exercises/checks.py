"""Grading a student's ``layers.py``: forward against minivgg's ops, backward against centered differences.

Each exercise pairs a forward with its backward (``softmax_loss`` is one
function). Its cases run smallest first -- fixed values, random values, then the
odd shapes (batch 1, non-square images, stride 2, overlapping pools) -- and the
first failing case is reported, so the explanation always names the smallest
input that shows the bug. Per case: (1) the forward's output is compared with
:mod:`minivgg.ops` (relative error <= ``FORWARD_TOL``); (2) the backward is
checked with :func:`minivgg.gradcheck.check_op` in float64 on kink-free inputs
(ReLU inputs with ``|x| >= 0.1``, max-pool windows with distinct entries), and a
failure carries the checker's diagnosis (constant factor, sign, transpose...).
Cost: a few hundred tiny forward calls per exercise, well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable

import numpy as np

from ..gradcheck import GradCheckError, check_op, rel_error
from ..ops import conv2d_forward, dense_forward, maxpool_forward, relu_forward, softmax_cross_entropy
from ._timeout import StudentTimeout, run_with_time_limit

PASS, FAIL, NOT_IMPLEMENTED = "PASS", "FAIL", "NOT IMPLEMENTED"
#: Forward outputs must match minivgg's to this relative error (float64 round-off is ~1e-15).
FORWARD_TOL = 1e-9


@dataclass
class ExerciseResult:
    """Verdict of one exercise: ``status``, the ``explanation`` (names the function) and the failing ``case``."""
    name: str
    functions: tuple[str, ...]
    status: str
    explanation: str = ""
    case: str | None = None
    cases_passed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"name": self.name, "functions": list(self.functions), "status": self.status,
                "explanation": self.explanation, "case": self.case, "cases_passed": list(self.cases_passed)}


class _Stop(Exception):
    """Ends an exercise's checks with a verdict."""

    def __init__(self, status: str, explanation: str) -> None:
        super().__init__(explanation)
        self.status, self.explanation = status, explanation


def _call(fname: str, fn: Callable, *args: Any) -> Any:
    try:
        return fn(*args)
    except NotImplementedError:
        raise _Stop(NOT_IMPLEMENTED, f"{fname} is not implemented yet (it raises NotImplementedError)") from None
    except Exception as exc:
        raise _Stop(FAIL, f"{fname} raised {type(exc).__name__}: {exc}") from None


#: After a conv/pool output of the wrong shape: the usual causes.
SIZE_HINT = " (check the output-size formula, the padding and the stride)"


def _call_pair(fname: str, fn: Callable, *args: Any, returns: str = "(out, cache)") -> tuple[Any, Any]:
    """The student's forward, which must return a 2-tuple (cs231n's ``(out, cache)``); else a FAIL naming it."""
    res = _call(fname, fn, *args)
    if not (isinstance(res, tuple) and len(res) == 2):
        got = f"a tuple of {len(res)}" if isinstance(res, tuple) else type(res).__name__
        raise _Stop(FAIL, f"{fname} must return {returns}, got {got}")
    return res


def _compare_forward(fname: str, got: Any, want: np.ndarray, what: str = "output", hint: str = "") -> None:
    """FAIL unless ``got`` is an array of ``want``'s shape within FORWARD_TOL; ``hint`` follows a shape mismatch."""
    try:
        got = np.asarray(got, dtype=np.float64) if got is not None else None
    except (TypeError, ValueError) as exc:
        raise _Stop(FAIL, f"{fname}: {what} is not an array of numbers ({type(exc).__name__}: {exc})") from None
    if got is None or got.shape != want.shape:
        shape = None if got is None else got.shape
        raise _Stop(FAIL, f"{fname}: {what} has shape {shape}, expected {want.shape}{hint}")
    err = rel_error(got, want)
    if not err <= FORWARD_TOL:
        bad = np.argwhere(~np.isclose(got, want, rtol=1e-9, atol=1e-12))
        at = tuple(int(i) for i in bad[0]) if len(bad) else None
        raise _Stop(FAIL, f"{fname}: {what} differs from minivgg's reference (max relative error {err:.2e}); "
                          f"first wrong entry {at}: got {got[at] if at is not None else '?'}, "
                          f"expected {want[at] if at is not None else '?'}")


def _gradcheck(name: str, bname: str, fwd: Callable, bwd: Callable, inputs: dict[str, np.ndarray],
               wrt: list[str], kinks: str | None) -> None:
    try:
        report = check_op(fwd, bwd, inputs, wrt=wrt, name=name, kinks=kinks, max_coords=400)
    except GradCheckError as exc:
        if isinstance(exc.__cause__, NotImplementedError):
            raise _Stop(NOT_IMPLEMENTED, f"{bname} is not implemented yet (it raises NotImplementedError)") from None
        raise _Stop(FAIL, f"{bname}: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise _Stop(FAIL, f"{bname}: {exc}") from None
    bad = [r for r in report.rows if not r.passed]
    if bad:
        parts = [f"d{r.name} is wrong (relative error {r.rel_error:.2e} > {report.tol:.0e}; at {r.worst_index} "
                 f"analytic {r.analytic:.6g}, numerical {r.numerical:.6g}): {r.hint}" for r in bad]
        raise _Stop(FAIL, f"{bname}: " + "; ".join(parts))


def _kinkfree(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Entries with |x| in [0.1, 1]: far from ReLU's kink at 0 compared with the step h = 1e-5."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 1.0, size=shape)


def _distinct(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Entries 0.1 apart (a shuffled ramp): no max-pool window has a tie within 2h."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 1.0


# --- the exercises: each yields (case label, kwargs) smallest first, then runs one case -------------

def _affine_cases(rng):
    yield "fixed x (2, 3), w (3, 2)", dict(x=np.linspace(-1, 1, 6).reshape(2, 3), w=np.linspace(-.5, .7, 6).reshape(3, 2),
                                          b=np.array([0.1, -0.2]))
    yield "batch 1: x (1, 4), w (4, 3)", dict(x=rng.standard_normal((1, 4)), w=rng.standard_normal((4, 3)), b=rng.standard_normal(3))
    yield "square w: x (3, 4), w (4, 4)", dict(x=rng.standard_normal((3, 4)), w=rng.standard_normal((4, 4)), b=rng.standard_normal(4))
    yield "image input: x (4, 2, 3, 2), w (12, 5)", dict(x=rng.standard_normal((4, 2, 3, 2)), w=rng.standard_normal((12, 5)),
                                                        b=rng.standard_normal(5))


def _affine_run(S, x, w, b):
    out, _ = _call_pair("affine_forward", S.affine_forward, x.copy(), w.copy(), b.copy())
    _compare_forward("affine_forward", out, dense_forward(x, w, b)[0])
    _gradcheck("affine", "affine_backward", S.affine_forward, S.affine_backward, dict(x=x, w=w, b=b), ["x", "w", "b"], None)


def _relu_cases(rng):
    yield "fixed x (2, 3)", dict(x=np.array([[-1.0, 0.5, -0.25], [2.0, -0.1, 0.3]]))
    yield "batch 1: x (1, 2, 3, 5)", dict(x=_kinkfree(rng, (1, 2, 3, 5)))
    yield "random x (4, 3, 4, 4)", dict(x=_kinkfree(rng, (4, 3, 4, 4)))


def _relu_run(S, x):
    out, _ = _call_pair("relu_forward", S.relu_forward, x.copy())
    _compare_forward("relu_forward", out, relu_forward(x)[0])
    _gradcheck("relu", "relu_backward", S.relu_forward, S.relu_backward, dict(x=x), ["x"], "relu")


def _conv_cases(rng):
    yield "fixed x (1, 1, 3, 3), w (1, 1, 3, 3), stride 1, pad 1", dict(
        x=np.arange(9.0).reshape(1, 1, 3, 3) / 9, w=np.linspace(-1, 1, 9).reshape(1, 1, 3, 3), b=np.array([0.5]), stride=1, pad=1)
    yield "batch 1, non-square: x (1, 2, 4, 5), w (3, 2, 3, 3), stride 1, pad 1", dict(
        x=rng.standard_normal((1, 2, 4, 5)), w=rng.standard_normal((3, 2, 3, 3)), b=rng.standard_normal(3), stride=1, pad=1)
    yield "stride 2: x (2, 2, 5, 7), w (2, 2, 3, 3), stride 2, pad 1", dict(
        x=rng.standard_normal((2, 2, 5, 7)), w=rng.standard_normal((2, 2, 3, 3)), b=rng.standard_normal(2), stride=2, pad=1)
    yield "no padding, 2x2 kernel: x (2, 3, 6, 5), w (2, 3, 2, 2), stride 2, pad 0", dict(
        x=rng.standard_normal((2, 3, 6, 5)), w=rng.standard_normal((2, 3, 2, 2)), b=rng.standard_normal(2), stride=2, pad=0)


def _conv_run(S, x, w, b, stride, pad):
    param = {"stride": stride, "pad": pad}
    out, _ = _call_pair("conv_forward_naive", S.conv_forward_naive, x.copy(), w.copy(), b.copy(), dict(param))
    _compare_forward("conv_forward_naive", out, conv2d_forward(x, w, b, stride=stride, pad=pad, algo="naive")[0],
                     hint=SIZE_HINT)
    _gradcheck("conv", "conv_backward_naive", lambda x, w, b: S.conv_forward_naive(x, w, b, dict(param)),
               S.conv_backward_naive, dict(x=x, w=w, b=b), ["x", "w", "b"], None)


def _pool_cases(rng):
    yield "fixed x (1, 1, 4, 4), 2x2 stride 2", dict(x=_distinct(np.random.default_rng(3), (1, 1, 4, 4)), size=2, stride=2)
    yield "non-square: x (2, 3, 4, 6), 2x2 stride 2", dict(x=_distinct(rng, (2, 3, 4, 6)), size=2, stride=2)
    yield "overlapping windows: x (1, 2, 5, 7), 3x3 stride 2", dict(x=_distinct(rng, (1, 2, 5, 7)), size=3, stride=2)


def _pool_run(S, x, size, stride):
    param = {"pool_height": size, "pool_width": size, "stride": stride}
    out, _ = _call_pair("max_pool_forward_naive", S.max_pool_forward_naive, x.copy(), dict(param))
    _compare_forward("max_pool_forward_naive", out, maxpool_forward(x, size, stride)[0], hint=SIZE_HINT)
    _gradcheck("maxpool", "max_pool_backward_naive", lambda x: S.max_pool_forward_naive(x, dict(param)),
               S.max_pool_backward_naive, dict(x=x), ["x"], "maxpool")


def _softmax_cases(rng):
    yield "fixed x (1, 3), y [2]", dict(x=np.array([[1.0, -0.5, 0.25]]), y=np.array([2]))
    yield "random x (5, 4)", dict(x=rng.standard_normal((5, 4)), y=rng.integers(0, 4, 5))
    yield "large scores x (3, 10) + 1000", dict(x=rng.standard_normal((3, 10)) + 1000.0, y=rng.integers(0, 10, 3))


def _softmax_run(S, x, y):
    loss, _ = _call_pair("softmax_loss", S.softmax_loss, x.copy(), y.copy(), returns="(loss, dx)")
    loss_ref, _ = softmax_cross_entropy(x, y)  # dx: the gradient check below judges it and explains a failure
    _compare_forward("softmax_loss", loss, np.asarray(loss_ref, dtype=np.float64), "loss")
    # (loss, dx) looks like (out, cache) to check_op: backward returns cache * dout = dloss/dx.
    _gradcheck("softmax_loss", "softmax_loss", lambda x: S.softmax_loss(x, y),
               lambda dout, dx: np.asarray(dx) * dout, dict(x=x), ["x"], None)


#: name -> (functions, cases, run), in the order of the workspace's layers.py.
EXERCISES: dict[str, tuple[tuple[str, ...], Callable, Callable]] = {
    "affine": (("affine_forward", "affine_backward"), _affine_cases, _affine_run),
    "relu": (("relu_forward", "relu_backward"), _relu_cases, _relu_run),
    "conv": (("conv_forward_naive", "conv_backward_naive"), _conv_cases, _conv_run),
    "max_pool": (("max_pool_forward_naive", "max_pool_backward_naive"), _pool_cases, _pool_run),
    "softmax": (("softmax_loss",), _softmax_cases, _softmax_run),
}


#: Seconds one case may run (the student's functions, forward and gradient check) before it is a FAIL.
CASE_TIMEOUT = 60.0


def check_exercise(module: ModuleType, name: str, seed: int = 0, timeout: float | None = CASE_TIMEOUT) -> ExerciseResult:
    """Run every case of exercise ``name`` on the student's ``module``; stop at the first failure.

    A case still running after ``timeout`` seconds (an endless loop in the student's code; None: no
    limit) is a FAIL that says so. A correct naive solution needs well under a second per case.
    """
    if name not in EXERCISES:
        raise ValueError(f"exercise {name!r} does not exist; exercises are {list(EXERCISES)}")
    functions, cases, run = EXERCISES[name]
    result = ExerciseResult(name, functions, PASS)
    missing = [f for f in functions if not callable(getattr(module, f, None))]
    if missing:
        result.status, result.explanation = FAIL, f"layers.py has no function {', '.join(missing)}"
        return result
    def quietly(kwargs: dict) -> None:
        # a student's overflow is reported as a wrong value, not a warning; entered here, in the thread that
        # runs the case (the time limit's thread fallback does not inherit the caller's errstate)
        with np.errstate(all="ignore"):
            run(module, **kwargs)

    for label, kwargs in cases(np.random.default_rng(seed)):
        try:
            run_with_time_limit(lambda: quietly(kwargs), timeout)
        except StudentTimeout as exc:
            result.status, result.case = FAIL, label
            result.explanation = (f"{'/'.join(functions)} {exc} on this case "
                                  "(an endless loop? a correct naive solution needs well under a second)")
            return result
        except _Stop as stop:
            result.status, result.explanation = stop.status, stop.explanation
            result.case = None if stop.status == NOT_IMPLEMENTED else label
            return result
        result.cases_passed.append(label)
    result.explanation = f"all {len(result.cases_passed)} cases pass (forward and gradient check)"
    return result


def check_module(module: ModuleType, only: str | None = None, seed: int = 0,
                 timeout: float | None = CASE_TIMEOUT) -> list[ExerciseResult]:
    """Results of every exercise (or of ``only``), in order; ``timeout`` is per case."""
    names = [only] if only is not None else list(EXERCISES)
    return [check_exercise(module, n, seed, timeout) for n in names]
