"""Gradient-check every minivgg op (and a tiny whole VGG) in float64.

What ``minivgg tour`` and ``minivgg gradcheck`` run: each backward pass against
centered differences (:mod:`minivgg.gradcheck`) on small random shapes that
include the awkward ones (non-square, batch 1, one channel, stride 2, 1x1 and
5x5 kernels). Inputs of the non-smooth ops (ReLU, max-pool) are drawn away from
their kinks, because a centered difference that straddles a kink legitimately
disagrees with a correct derivative.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import ops
from ..gradcheck import GradCheckReport, check_op, check_params
from ..ops.conv import ALGORITHMS as CONV_ALGORITHMS
from ..vgg import VGG

# conv and dense are linear in each argument: no truncation error, so a larger
# step only reduces round-off (see tests/test_ops.py)
LINEAR_H = 1e-3


@dataclass(frozen=True)
class OpCheck:
    """One gradient check: a label, the shapes it ran on, and the report."""

    label: str
    shapes: str
    report: GradCheckReport


def _away_from_zero(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 1e-2, 0.5, x)  # no ReLU input within h of its kink


def _distinct(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return rng.permutation(int(np.prod(shape))).reshape(shape) / 7.0  # no pooling ties


def op_checks(seed: int = 0) -> list[tuple[str, str, Callable[[], GradCheckReport]]]:
    """The list of checks as ``(label, shapes, run)``; ``run()`` does the work."""
    rng = np.random.default_rng(seed)
    checks = []
    conv_cases = [((2, 3, 8, 8), (4, 3, 3, 3), 1, 1), ((1, 1, 5, 7), (2, 1, 3, 3), 2, 1),
                  ((2, 2, 6, 6), (3, 2, 1, 1), 1, 0), ((1, 2, 7, 6), (2, 2, 5, 5), 2, 2)]
    for algo in [a for a in CONV_ALGORITHMS]:
        for xs, ws, s, p in conv_cases:
            if algo in ("winograd", "winograd4") and (ws[2:] != (3, 3) or s != 1 or p != 1):
                continue  # Winograd F(2x2,3x3) and F(4x4,3x3) are only defined for 3x3/s1/p1
            x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
            checks.append((
                f"conv2d[{algo}]", f"x{xs} w{ws} s{s} p{p}",
                lambda x=x, w=w, b=b, s=s, p=p, algo=algo: check_op(
                    lambda x, w, b: ops.conv2d_forward(x, w, b, s, p, algo=algo), ops.conv2d_backward,
                    {"x": x, "w": w, "b": b}, h=LINEAR_H, name=f"conv2d[{algo}]")))
    x = _away_from_zero(rng, (2, 3, 4, 5))
    checks.append(("relu", f"x{x.shape}", lambda x=x: check_op(ops.relu_forward, ops.relu_backward, {"x": x},
                                                                 name="relu")))
    for shape, size, stride in (((2, 3, 8, 8), 2, 2), ((1, 1, 7, 5), 3, 2)):
        x = _distinct(rng, shape)
        checks.append((f"maxpool {size}x{size}/{stride}", f"x{shape}",
                       lambda x=x, size=size, stride=stride: check_op(
                           lambda x: ops.maxpool_forward(x, size, stride), ops.maxpool_backward, {"x": x},
                           name="maxpool")))
    x, w, b = rng.standard_normal((3, 2, 2, 2)), rng.standard_normal((8, 5)), rng.standard_normal(5)
    checks.append(("dense", f"x{x.shape} w{w.shape}", lambda x=x, w=w, b=b: check_op(
        ops.dense_forward, ops.dense_backward, {"x": x, "w": w, "b": b}, h=LINEAR_H, name="dense")))
    x = rng.standard_normal((4, 6))
    checks.append(("dropout p=0.5", f"x{x.shape}", lambda x=x: check_op(
        lambda x: ops.dropout_forward(x, 0.5, train=True, rng=seed), ops.dropout_backward, {"x": x},
        name="dropout")))
    logits, y = rng.standard_normal((5, 7)), rng.integers(0, 7, 5)
    checks.append(("softmax cross-entropy", f"logits{logits.shape}",
                   lambda logits=logits, y=y: _check_loss(logits, y)))
    return checks


def _check_loss(logits: np.ndarray, y: np.ndarray) -> GradCheckReport:
    params = {"logits": logits}
    _, dlogits = ops.softmax_cross_entropy(logits, y)
    return check_params(lambda: ops.softmax_cross_entropy(params["logits"], y)[0], params, {"logits": dlogits},
                        max_coords=logits.size)


def tiny_vgg_check(seed: int = 0) -> OpCheck:
    """Gradient-check every parameter of a tiny VGG-11 (float64, no dropout) on sampled coordinates."""
    model = VGG("vgg11", num_classes=5, input_size=32, width=1 / 32, fc_width=8, dropout=0.0,
                dtype=np.float64, seed=seed)
    y = np.array([0, 3])
    x = kink_free_input(model, (2, 3, 32, 32), seed=seed)
    _, grads = model.loss(x, y)
    report = check_params(lambda: model.loss(x, y)[0], model.params, grads, max_coords=10)
    return OpCheck("tiny VGG-11 (all params)", "x(2, 3, 32, 32) width 1/32", report)


def kink_margin(model: VGG, x: np.ndarray) -> float:
    """Smallest distance of any ReLU input from 0, or between a live pool window's top two values.

    Centered differences straddle a kink closer than ``h`` and then disagree
    with the (correct) one-sided analytic derivative; a whole-model check is
    only meaningful on an input whose margin is well above ``h``. Windows whose
    maximum is 0 (dead ReLUs) pass no gradient whichever element wins.
    """
    margin = np.inf
    for layer in model.layers:
        out = layer.forward(x)
        if layer.name.startswith("relu"):
            margin = min(margin, float(np.abs(x).min()))
        elif layer.name.startswith("pool"):
            n, c, h, w = x.shape
            win = x[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2)
            top = np.sort(win.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4), axis=-1)
            live = top[..., 3] > 0
            if live.any():
                margin = min(margin, float((top[..., 3] - top[..., 2])[live].min()))
        x = out
    return margin


def kink_free_input(model: VGG, shape: tuple, *, seed: int = 0, min_margin: float = 1e-4,
                    tries: int = 100) -> np.ndarray:
    """The first of ``tries`` seeded float64 normal inputs whose :func:`kink_margin` exceeds ``min_margin``.

    ``min_margin`` defaults to 100x the checkers' ``h`` = 1e-5, so no centered
    difference straddles a ReLU or max-pool kink.

    Raises
    ------
    RuntimeError
        If none of the ``tries`` candidates is kink-free.
    """
    for attempt in range(tries):
        x = np.random.default_rng([seed, attempt]).standard_normal(shape)
        if kink_margin(model, x) > min_margin:
            return x
    raise RuntimeError(f"no input of shape {shape} among {tries} seeds keeps every kink {min_margin} away")


def run_all(seed: int = 0, *, include_model: bool = True) -> list[OpCheck]:
    """Run every op check (and the tiny-VGG check); return the results in order."""
    results = [OpCheck(label, shapes, run()) for label, shapes, run in op_checks(seed)]
    if include_model:
        results.append(tiny_vgg_check(seed))
    return results


def format_results(results: list[OpCheck]) -> str:
    """An aligned table: op, shapes, worst relative error per input, PASS/FAIL."""
    rows = [("op", "shapes", "max rel. error", "result")]
    for r in results:
        worst = ", ".join(f"{row.name} {row.rel_error:.1e}" for row in r.report.rows)
        rows.append((r.label, r.shapes, worst if len(r.report.rows) <= 3 else f"{r.report.max_rel_error:.1e} "
                     f"(max of {len(r.report.rows)} params)", "PASS" if r.report.passed else "FAIL"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    failed = [r for r in results if not r.report.passed]
    for r in failed:
        lines.append("")
        lines.append(str(r.report))
    return "\n".join(lines)
