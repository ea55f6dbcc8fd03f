"""Tests of minivgg.gradcheck, independent of minivgg.ops.

Every op checked here is a tiny function written in this file with its
closed-form derivative, so an expected value never comes from the code under
test. Each checker gets negative controls: deliberately wrong backwards that
must be caught, with the reported worst element recomputed independently.
"""

from __future__ import annotations

import numpy as np
import pytest

from minivgg.gradcheck import (
    GradCheckReport,
    check_op,
    check_params,
    numerical_gradient,
    numerical_gradient_array,
    rel_error,
)

# ---------------------------------------------------------------------------
# Tiny ops with hand-written backward passes
# ---------------------------------------------------------------------------


def affine_forward(x, w, b):
    return x @ w + b, (x, w)


def affine_backward(dout, cache):
    x, w = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def sigmoid_forward(x):
    s = sigmoid(x)
    return s, s


def sigmoid_backward(dout, s):
    return dout * s * (1.0 - s)


def away_from_zero(rng, shape, lo=0.5, hi=1.5):
    """Values with |v| in [lo, hi]: closed-form references stay well scaled."""
    return rng.uniform(lo, hi, size=shape) * rng.choice([-1.0, 1.0], size=shape)


@pytest.fixture
def affine_inputs():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5))
    w = rng.standard_normal((5, 4))
    b = rng.standard_normal(4)
    dout = away_from_zero(rng, (3, 4))
    return {"x": x, "w": w, "b": b}, dout


def elementwise_rel(a, b):
    """cs231n relative error per element, written out here on purpose."""
    return np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))


# ---------------------------------------------------------------------------
# rel_error
# ---------------------------------------------------------------------------


def test_rel_error_known_values():
    assert rel_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert rel_error([1.0, 2.0], [3.0, 2.0]) == pytest.approx(0.5)  # |1-3|/(1+3)
    assert rel_error([0.0], [0.0]) == 0.0  # eps floor, no 0/0
    assert rel_error([1e-9], [0.0]) == pytest.approx(0.1)  # 1e-9 / max(1e-8, 1e-9)
    assert np.isnan(rel_error([np.nan], [1.0]))


def test_rel_error_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(3, 1\).*\(3,\)"):
        rel_error(np.zeros((3, 1)), np.zeros(3))


# ---------------------------------------------------------------------------
# numerical_gradient / numerical_gradient_array
# ---------------------------------------------------------------------------


def test_numerical_gradient_of_cube_sum():
    x = away_from_zero(np.random.default_rng(2), (3, 4))
    g = numerical_gradient(lambda x: np.sum(x**3), x)
    assert g.shape == x.shape and g.dtype == np.float64
    assert rel_error(g, 3 * x**2) < 1e-8


def test_numerical_gradient_array_of_sin():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1.0, 1.0, size=(2, 3, 4))  # cos(x) >= 0.54 here
    dout = away_from_zero(rng, x.shape)
    g = numerical_gradient_array(np.sin, x, dout)
    assert rel_error(g, np.cos(x) * dout) < 1e-8


def test_numerical_gradient_array_of_matmul_mixes_outputs():
    # f(x) = x @ w: every input coordinate moves a whole row of outputs, so
    # this exercises the sum over outputs in the upstream-gradient form.
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((3, 5)), rng.standard_normal((5, 2))
    dout = rng.standard_normal((3, 2))
    g = numerical_gradient_array(lambda x: x @ w, x, dout)
    assert rel_error(g, dout @ w.T) < 1e-8


def test_numerical_gradient_index_only_fills_those_coordinates():
    x = away_from_zero(np.random.default_rng(5), (3, 4))
    g = numerical_gradient(lambda x: np.sum(x**3), x, index=[(0, 1), (2, 3)])
    expected = np.zeros_like(x)
    expected[0, 1], expected[2, 3] = 3 * x[0, 1] ** 2, 3 * x[2, 3] ** 2
    assert rel_error(g, expected) < 1e-8
    assert np.count_nonzero(g) == 2
    # Plain ints are accepted for a 1-D x.
    v = away_from_zero(np.random.default_rng(6), (5,))
    g1 = numerical_gradient(lambda v: np.sum(v**3), v, index=[4])
    assert g1[4] == pytest.approx(3 * v[4] ** 2, rel=1e-8) and np.count_nonzero(g1) == 1


@pytest.mark.parametrize("bad", [[(0,)], [(3, 0)], [(0, -1)]])
def test_numerical_gradient_bad_index(bad):
    with pytest.raises(ValueError, match="shape \\(3, 4\\)"):
        numerical_gradient(np.sum, np.zeros((3, 4)), index=bad)


@pytest.mark.parametrize("fail_on_call", [1, 5, 6])
def test_x_restored_exactly_when_f_raises(fail_on_call):
    x = np.random.default_rng(7).standard_normal((2, 3))
    x0 = x.copy()
    seen = []

    def f(x):
        seen.append(x.copy())
        if len(seen) == fail_on_call:
            raise RuntimeError("boom")
        return np.sum(x**2)

    with pytest.raises(RuntimeError, match="boom"):
        numerical_gradient(f, x)
    assert not np.array_equal(seen[-1], x0)  # f really saw a perturbed x ...
    assert x.tobytes() == x0.tobytes()  # ... and every bit is back

    seen.clear()
    with pytest.raises(RuntimeError, match="boom"):
        numerical_gradient_array(lambda x: np.atleast_1d(f(x)), x, np.ones(1))
    assert x.tobytes() == x0.tobytes()


def test_x_restored_exactly_after_success():
    x = np.random.default_rng(8).standard_normal((4, 4)) * 1e3  # big values: x+h-h != x in float
    x0 = x.copy()
    numerical_gradient(lambda x: np.sum(np.sin(x)), x)
    numerical_gradient_array(np.tanh, x, np.ones_like(x))
    assert x.tobytes() == x0.tobytes()


def test_numerical_gradient_rejects_bad_arguments():
    with pytest.raises(TypeError, match="scalar"):
        numerical_gradient(lambda x: x * 2, np.ones(3))
    with pytest.raises(TypeError, match="floating"):
        numerical_gradient(np.sum, np.ones(3, dtype=np.int64))
    with pytest.raises(TypeError, match="ndarray"):
        numerical_gradient(np.sum, [1.0, 2.0])
    ro = np.ones(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        numerical_gradient(np.sum, ro)
    with pytest.raises(ValueError, match="h must be"):
        numerical_gradient(np.sum, np.ones(3), h=0.0)
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        numerical_gradient_array(lambda x: x, np.ones(3), np.ones(2))


# ---------------------------------------------------------------------------
# check_op: correct ops pass
# ---------------------------------------------------------------------------


def test_check_op_passes_correct_affine(affine_inputs):
    inputs, dout = affine_inputs
    originals = {k: v.copy() for k, v in inputs.items()}
    report = check_op(affine_forward, affine_backward, inputs, dout=dout)
    assert isinstance(report, GradCheckReport)
    assert report.passed and report.max_rel_error < 1e-8
    assert [r.name for r in report.rows] == ["x", "w", "b"]
    assert [(r.shape, r.checked, r.total) for r in report.rows] == [((3, 5), 15, 15), ((5, 4), 20, 20), ((4,), 4, 4)]
    report.raise_if_failed()  # no exception
    for k in inputs:  # the checker works on copies
        assert inputs[k].tobytes() == originals[k].tobytes()


def test_check_op_passes_sigmoid_with_single_gradient():
    x = np.random.default_rng(9).standard_normal((4, 3))
    report = check_op(sigmoid_forward, sigmoid_backward, {"x": x})
    assert report.passed and report.max_rel_error < 1e-8
    assert report.name == "sigmoid_forward"


def test_check_op_forward_without_cache():
    x = np.random.default_rng(10).standard_normal(6)
    caches = []

    def backward(dout, cache):
        caches.append(cache)
        return np.cos(x) * dout

    report = check_op(np.sin, backward, {"x": x}, name="sin")
    assert report.passed and caches == [None]


def test_check_op_wrt_skips_non_float_inputs():
    # Picks x[i, y_i]; the labels y are int and not differentiable.
    rng = np.random.default_rng(11)
    x, y = rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])

    def pick_forward(x, y):
        return x[np.arange(len(y)), y], (x.shape, y)

    def pick_backward(dout, cache):
        shape, y = cache
        dx = np.zeros(shape)
        dx[np.arange(len(y)), y] = dout
        return dx, None

    report = check_op(pick_forward, pick_backward, {"x": x, "y": y}, wrt="x")
    assert report.passed and [r.name for r in report.rows] == ["x"]
    with pytest.raises(TypeError, match="'y'.*int64.*float64"):
        check_op(pick_forward, pick_backward, {"x": x, "y": y})


# ---------------------------------------------------------------------------
# check_op: negative controls
# ---------------------------------------------------------------------------


def test_check_op_catches_scaled_dx_and_reports_worst_element(affine_inputs):
    inputs, dout = affine_inputs

    def scaled_backward(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        return 1.01 * dx, dw, db

    report = check_op(affine_forward, scaled_backward, inputs, dout=dout, name="affine")
    assert not report.passed
    assert [r.passed for r in report.rows] == [False, True, True]
    row = report["x"]
    true_dx = dout @ inputs["w"].T
    idx = row.worst_index
    assert row.analytic == pytest.approx(1.01 * true_dx[idx], rel=1e-12)
    assert row.numerical == pytest.approx(true_dx[idx], rel=1e-7)
    assert row.rel_error == pytest.approx(0.01 / 2.01, rel=1e-5)  # |1.01-1| / (1.01+1)
    assert "1.01" in row.hint and "15 of 15" in row.hint
    text = str(report)
    assert "FAIL" in text and f"x: worst at index {idx}" in text


def test_check_op_catches_transposed_square_dw():
    rng = np.random.default_rng(12)
    x, w, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 4)), rng.standard_normal(4)
    dout = rng.standard_normal((3, 4))

    def transposed_backward(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        return dx, dw.T, db  # shape still fits because w is square

    report = check_op(affine_forward, transposed_backward, {"x": x, "w": w, "b": b}, dout=dout)
    row = report["w"]
    assert not row.passed and report["x"].passed and report["b"].passed
    true_dw = x.T @ dout
    err = elementwise_rel(true_dw.T, true_dw)
    idx = row.worst_index
    # (i, j) and (j, i) tie, so compare the error at the reported index with the max.
    assert err[idx] == pytest.approx(err.max(), rel=1e-6)
    assert row.analytic == pytest.approx(true_dw.T[idx], rel=1e-12)
    assert row.numerical == pytest.approx(true_dw[idx], rel=1e-7)
    assert "TRANSPOSED" in row.hint


def test_check_op_catches_missing_bias_gradient(affine_inputs):
    inputs, dout = affine_inputs

    def no_db_backward(dout, cache):
        dx, dw, _ = affine_backward(dout, cache)
        return dx, dw, np.zeros(dout.shape[1])

    report = check_op(affine_forward, no_db_backward, inputs, dout=dout)
    row = report["b"]
    assert not row.passed and row.rel_error == pytest.approx(1.0)
    assert row.analytic == 0.0
    assert row.numerical == pytest.approx(dout.sum(axis=0)[row.worst_index], rel=1e-7)
    assert "zero" in row.hint


def test_check_op_catches_missing_term_of_product_rule():
    # swish(x) = x * sigmoid(x); d/dx = s + x s (1 - s). The bug drops the second term.
    rng = np.random.default_rng(13)
    x, dout = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))

    def swish_forward(x):
        return x * sigmoid(x), x

    def swish_backward_missing_term(dout, x):
        return dout * sigmoid(x)

    report = check_op(swish_forward, swish_backward_missing_term, {"x": x}, dout=dout)
    row = report["x"]
    assert not row.passed
    s = sigmoid(x)
    true, wrong = dout * (s + x * s * (1 - s)), dout * s
    err = elementwise_rel(wrong, true)
    assert row.worst_index == np.unravel_index(np.argmax(err), x.shape)
    assert row.rel_error == pytest.approx(err.max(), rel=1e-6)
    assert row.analytic == pytest.approx(wrong[row.worst_index], rel=1e-12)
    assert row.numerical == pytest.approx(true[row.worst_index], rel=1e-7)
    # A correct swish backward passes on the same inputs.
    ok = check_op(swish_forward, lambda d, x: d * (sigmoid(x) + x * sigmoid(x) * (1 - sigmoid(x))), {"x": x})
    assert ok.passed


def test_check_op_catches_sign_error(affine_inputs):
    inputs, dout = affine_inputs

    def minus_dw_backward(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        return dx, -dw, db

    row = check_op(affine_forward, minus_dw_backward, inputs, dout=dout)["w"]
    assert not row.passed and row.rel_error == pytest.approx(1.0)
    true_dw = inputs["x"].T @ dout
    assert row.numerical == pytest.approx(true_dw[row.worst_index], rel=1e-7)
    assert "sign error" in row.hint


def test_relu_kink_caveat():
    # A correct ReLU backward (derivative 0 at x <= 0) disagrees with the
    # centered difference only at a coordinate within h of the kink; away from
    # 0 it passes. This is the caveat the module docstring warns about.
    rng = np.random.default_rng(18)
    x = away_from_zero(rng, (3, 4), lo=0.1, hi=1.0)

    def relu_forward(x):
        return np.maximum(x, 0), x

    def relu_backward(dout, x):
        return dout * (x > 0)

    assert check_op(relu_forward, relu_backward, {"x": x}).passed
    x[1, 2] = 3e-6  # |x| < h = 1e-5: the difference straddles the kink
    row = check_op(relu_forward, relu_backward, {"x": x})["x"]
    assert not row.passed and row.worst_index == (1, 2)
    assert "1 of 12" in row.hint


def test_check_op_catches_a_single_wrong_element():
    rng = np.random.default_rng(14)
    x = rng.standard_normal((4, 5))

    def square_backward_one_bug(dout, x):
        dx = 2 * x * dout
        dx[2, 3] += 1e-3
        return dx

    report = check_op(lambda x: (x**2, x), square_backward_one_bug, {"x": x})
    row = report["x"]
    assert not row.passed and row.worst_index == (2, 3)
    assert "1 of 20" in row.hint


def test_check_op_wrong_gradient_shape_names_input_and_shapes(affine_inputs):
    inputs, dout = affine_inputs

    def bad_shape_backward(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        return dx, dw.T, db  # (4, 5) for a (5, 4) weight

    with pytest.raises(ValueError, match=r"'w' has shape \(4, 5\) but input 'w' has shape \(5, 4\) \(transposed\?\)"):
        check_op(affine_forward, bad_shape_backward, inputs, dout=dout)

    def bad_db_backward(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        return dx, dw, db[None, :]  # keepdims-style (1, 4) bias gradient

    with pytest.raises(ValueError, match=r"'b' has shape \(1, 4\) but input 'b' has shape \(4,\)"):
        check_op(affine_forward, bad_db_backward, inputs)


def test_check_op_wrong_number_of_gradients(affine_inputs):
    inputs, _ = affine_inputs
    with pytest.raises(ValueError, match=r"returned 2 gradients, expected 3.*\(x, w, b\)"):
        check_op(affine_forward, lambda d, c: affine_backward(d, c)[:2], inputs)
    with pytest.raises(ValueError, match="single ndarray, expected 3"):
        check_op(affine_forward, lambda d, c: affine_backward(d, c)[0], inputs)
    with pytest.raises(ValueError, match="tuple of 3 items"):
        check_op(lambda x, w, b: (x @ w + b, None, None), affine_backward, inputs)


def test_check_op_detects_forward_writing_into_its_input():
    x = np.random.default_rng(15).standard_normal((3, 3))

    def relu_inplace_forward(x):
        np.maximum(x, 0, out=x)  # the bug: overwrites the caller's x
        return x.copy(), x

    with pytest.raises(ValueError, match="modified input 'x' in place"):
        check_op(relu_inplace_forward, lambda d, x: d * (x > 0), {"x": x})


def test_check_op_rejects_float32_and_bad_arguments(affine_inputs):
    inputs, _ = affine_inputs
    f32 = dict(inputs, w=inputs["w"].astype(np.float32))
    with pytest.raises(TypeError, match="'w' has dtype float32.*float64"):
        check_op(affine_forward, affine_backward, f32)
    with pytest.raises(ValueError, match=r"\['z'\]"):
        check_op(affine_forward, affine_backward, inputs, wrt=["x", "z"])
    with pytest.raises(ValueError, match=r"dout has shape \(2, 2\).*\(3, 4\)"):
        check_op(affine_forward, affine_backward, inputs, dout=np.ones((2, 2)))
    with pytest.raises(TypeError, match="mapping"):
        check_op(affine_forward, affine_backward, [inputs["x"]])


# ---------------------------------------------------------------------------
# check_op: sampling on large inputs
# ---------------------------------------------------------------------------


def square_forward(x):
    return x * x, x


def test_check_op_samples_large_inputs():
    rng = np.random.default_rng(16)
    x = rng.standard_normal(100_000)
    dout = rng.standard_normal(100_000)
    good = check_op(square_forward, lambda d, x: 2 * x * d, {"x": x}, dout=dout)
    row = good["x"]
    assert good.passed and (row.checked, row.total) == (200, 100_000)
    assert "200/100000" in str(good)

    bad = check_op(square_forward, lambda d, x: 2.002 * x * d, {"x": x}, dout=dout, max_coords=50)
    row = bad["x"]
    assert not bad.passed and (row.checked, row.total) == (50, 100_000)
    i = row.worst_index
    assert row.analytic == pytest.approx(2.002 * x[i] * dout[i], rel=1e-12)
    assert row.numerical == pytest.approx(2 * x[i] * dout[i], rel=1e-7)


def test_check_op_sampling_is_seeded():
    x = np.random.default_rng(17).standard_normal(5_000)
    bug = lambda d, x: 2 * x * d * (1 + 1e-3 * np.arange(x.size) / x.size)  # noqa: E731
    a = check_op(square_forward, bug, {"x": x}, seed=3)
    b = check_op(square_forward, bug, {"x": x}, seed=3)
    c = check_op(square_forward, bug, {"x": x}, seed=4)
    assert a.rows == b.rows
    assert a["x"].worst_index != c["x"].worst_index


# ---------------------------------------------------------------------------
# check_params: a whole (tiny) model
# ---------------------------------------------------------------------------


class TwoLayerNet:
    """x -> tanh(x W1 + b1) -> W2 + b2 -> mean softmax cross-entropy."""

    def __init__(self, seed=0, dtype=np.float64):
        rng = np.random.default_rng(seed)
        self.x = rng.standard_normal((5, 4))
        self.y = np.array([0, 2, 1, 2, 0])
        self.params = {
            "W1": rng.standard_normal((4, 6)).astype(dtype),
            "b1": rng.standard_normal(6).astype(dtype),
            "W2": rng.standard_normal((6, 3)).astype(dtype),
            "b2": rng.standard_normal(3).astype(dtype),
        }

    def loss(self):
        p = self.params
        hid = np.tanh(self.x @ p["W1"] + p["b1"])
        scores = hid @ p["W2"] + p["b2"]
        shifted = scores - scores.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        n = len(self.y)
        loss = -logp[np.arange(n), self.y].mean()
        dscores = np.exp(logp)
        dscores[np.arange(n), self.y] -= 1
        dscores /= n
        dhid = dscores @ p["W2"].T
        dpre = dhid * (1 - hid**2)
        grads = {"W1": self.x.T @ dpre, "b1": dpre.sum(0), "W2": hid.T @ dscores, "b2": dscores.sum(0)}
        return loss, grads


def test_check_params_passes_correct_two_layer_net():
    net = TwoLayerNet()
    before = {k: v.copy() for k, v in net.params.items()}
    _, grads = net.loss()
    report = check_params(lambda: net.loss()[0], net.params, grads)
    assert report.passed and report.max_rel_error < 1e-7
    assert [r.name for r in report.rows] == ["W1", "b1", "W2", "b2"]
    for k in before:
        assert net.params[k].tobytes() == before[k].tobytes()
    # loss_fn may return (loss, grads), as model.loss does; max_coords samples.
    sampled = check_params(net.loss, net.params, grads, max_coords=10)
    assert sampled.passed and (sampled["W1"].checked, sampled["W1"].total) == (10, 24)


def test_check_params_fails_naming_the_perturbed_key():
    net = TwoLayerNet()
    _, grads = net.loss()
    bad = dict(grads, b1=grads["b1"] * 1.05)
    report = check_params(lambda: net.loss()[0], net.params, bad)
    assert not report.passed
    assert {r.name: r.passed for r in report.rows} == {"W1": True, "b1": False, "W2": True, "b2": True}
    row = report["b1"]
    assert row.analytic == pytest.approx(1.05 * grads["b1"][row.worst_index], rel=1e-12)
    assert row.numerical == pytest.approx(grads["b1"][row.worst_index], rel=1e-6)
    assert "b1" in str(report) and "FAIL" in str(report)
    with pytest.raises(AssertionError, match="b1"):
        report.raise_if_failed()


def test_check_params_uses_a_copy_of_grads():
    # A model's loss rewrites model.grads in place; the check must use the
    # gradients as they were when it was called.
    net = TwoLayerNet()
    _, grads = net.loss()

    def loss_that_clobbers_grads():
        for g in grads.values():
            g[...] = 0.0
        return net.loss()[0]

    assert check_params(loss_that_clobbers_grads, net.params, grads).passed


def test_check_params_rejects_bad_arguments():
    net = TwoLayerNet()
    _, grads = net.loss()
    loss = lambda: net.loss()[0]  # noqa: E731
    missing = {k: v for k, v in grads.items() if k != "b2"}
    with pytest.raises(ValueError, match="missing from grads: \\['b2'\\]"):
        check_params(loss, net.params, missing)
    with pytest.raises(ValueError, match="not in params: \\['W3'\\]"):
        check_params(loss, net.params, dict(grads, W3=np.zeros(2)))
    with pytest.raises(ValueError, match=r"'W1' has shape \(6, 4\).*\(4, 6\)"):
        check_params(loss, net.params, dict(grads, W1=grads["W1"].T))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="deterministic"):
        check_params(lambda: loss() + rng.standard_normal() * 1e-3, net.params, grads)
    net32 = TwoLayerNet(dtype=np.float32)
    with pytest.raises(TypeError, match="'W1' has dtype float32"):
        check_params(lambda: net32.loss()[0], net32.params, net32.loss()[1])


# ---------------------------------------------------------------------------
# The printed report
# ---------------------------------------------------------------------------


def test_report_text_is_an_aligned_table(affine_inputs):
    inputs, dout = affine_inputs
    good = check_op(affine_forward, affine_backward, inputs, name="affine")
    text = str(good)
    assert text.splitlines()[0].startswith("gradcheck affine: PASS")
    lines = text.splitlines()[1:]
    assert len(lines) == 4 and all(name in text for name in ("x", "w", "b"))
    assert all(line.rstrip().endswith("PASS") for line in lines[1:])
    # Columns line up: "coords" starts at the same offset in every line.
    starts = {line.index(cell) for line, cell in zip(lines, ["coords", "15/15", "20/20", "4/4"])}
    assert len(starts) == 1

    bad = check_op(affine_forward, lambda d, c: (affine_backward(d, c)[0], affine_backward(d, c)[1], 0 * d.sum(0)),
                   inputs, name="affine")
    text = str(bad)
    assert text.splitlines()[0].startswith("gradcheck affine: FAIL")
    assert "b: worst at index" in text and "PASS" in text and "FAIL" in text
    with pytest.raises(AssertionError) as info:
        bad.raise_if_failed()
    assert str(info.value) == text


# --- near-zero entries: round-off is not a failure, a real error still is ---------------

def _scaled_pair(scales):
    """f(w) = sum(scales * w**2): dL/dw = 2 * scales * w, with entries spanning many magnitudes."""
    w = np.linspace(0.5, 1.5, scales.size)

    def loss():
        return float(np.sum(scales * w ** 2))

    return w, loss


def test_tiny_true_gradient_entries_do_not_fail_on_round_off():
    # a loss of size ~1e2 gives ~1e-11 round-off in each numerical entry; the
    # 1e-6-sized entry would show a cs231n rel_error far above 1e-7 on that noise alone
    scales = np.array([100.0, 50.0, 3e-6, 20.0])
    w, loss = _scaled_pair(scales)
    exact = 2 * scales * w
    report = check_params(loss, {"w": w}, {"w": exact})
    assert report.passed, str(report)


def test_wrong_tiny_entry_is_still_caught():
    scales = np.array([100.0, 50.0, 3e-6, 20.0])
    w, loss = _scaled_pair(scales)
    wrong = 2 * scales * w
    wrong[2] = -wrong[2]  # sign error on the smallest entry only
    report = check_params(loss, {"w": w}, {"w": wrong})
    assert not report.passed
    assert report["w"].worst_index == (2,)


def test_hint_does_not_blame_a_constant_factor_when_the_ratio_is_one():
    from minivgg.gradcheck import _diagnose

    a = np.array([1.0, 2.0, 3.0])
    n = a * (1 + 1e-7)
    err = np.abs(a - n) / (np.abs(a) + np.abs(n))
    assert "constant factor" not in _diagnose(a, n, err, 1e-9, a, n, complete=True)
