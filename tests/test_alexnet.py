"""AlexNet (Krizhevsky et al. 2012) beside VGG: grouped convolution, parameter counts, the built model."""

from __future__ import annotations

import numpy as np
import pytest

from minivgg import ops
from minivgg.gradcheck import check_op

LINEAR_H = 1e-3  # convolution is linear in each input: any step is exact up to rounding

# ---------------------------------------------------------------- grouped convolution

GROUP_CASES = [  # n, c, h, w, f, k, stride, pad, groups
    (2, 4, 5, 6, 6, 3, 1, 1, 2),
    (1, 6, 7, 5, 3, 3, 2, 0, 3),
    (1, 2, 4, 4, 4, 1, 1, 0, 2),
    (2, 4, 4, 4, 4, 3, 1, 1, 4),   # depthwise
]


def _grouped_inputs(rng, n, c, h, w, f, k, groups):
    return (rng.standard_normal((n, c, h, w)), rng.standard_normal((f, c // groups, k, k)),
            rng.standard_normal(f))


@pytest.mark.parametrize("case", GROUP_CASES)
@pytest.mark.parametrize("algo", ["naive", "im2col", "winograd"])
def test_grouped_conv_gradients_float64(rng, case, algo):
    n, c, h, w, f, k, s, p, g = case
    if algo == "winograd" and (k, s, p) != (3, 1, 1):
        pytest.skip("Winograd is 3x3/s1/p1 only")
    x, wt, b = _grouped_inputs(rng, n, c, h, w, f, k, g)
    report = check_op(lambda x, w, b: ops.conv2d_forward(x, w, b, s, p, algo=algo, groups=g),
                      ops.conv2d_backward, {"x": x, "w": wt, "b": b}, h=LINEAR_H)
    assert report.passed, str(report)
    assert report.max_rel_error < 1e-7


def test_grouped_conv_gradcheck_catches_a_backward_that_ignores_the_groups(rng):
    """Negative control: a dw with the two groups' halves swapped must fail the check."""
    x, wt, b = _grouped_inputs(rng, 1, 4, 4, 4, 4, 3, 2)

    def swapped(dout, cache):
        dx, dw, db = ops.conv2d_backward(dout, cache)
        return dx, np.concatenate([dw[2:], dw[:2]]), db

    report = check_op(lambda x, w, b: ops.conv2d_forward(x, w, b, 1, 1, algo="im2col", groups=2), swapped,
                      {"x": x, "w": wt, "b": b}, h=LINEAR_H)
    assert not report.passed


def test_grouped_conv_is_two_separate_convolutions(rng):
    """groups=2 by hand: each half of the input convolved with its half of the filters (naive algo, groups=1)."""
    x, wt, b = _grouped_inputs(rng, 2, 4, 5, 5, 6, 3, 2)
    out, _ = ops.conv2d_forward(x, wt, b, 1, 1, algo="im2col", groups=2)
    lo, _ = ops.conv2d_forward(x[:, :2].copy(), wt[:3], b[:3], 1, 1, algo="naive")
    hi, _ = ops.conv2d_forward(x[:, 2:].copy(), wt[3:], b[3:], 1, 1, algo="naive")
    np.testing.assert_allclose(out, np.concatenate([lo, hi], axis=1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", GROUP_CASES)
def test_grouped_conv_matches_torch_float64(rng, case):
    torch = pytest.importorskip("torch")
    n, c, h, w, f, k, s, p, g = case
    x, wt, b = _grouped_inputs(rng, n, c, h, w, f, k, g)
    out, cache = ops.conv2d_forward(x, wt, b, s, p, algo="im2col", groups=g)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = ops.conv2d_backward(dout, cache)
    xt, wtt, bt = (torch.tensor(a, requires_grad=True) for a in (x, wt, b))
    yt = torch.nn.functional.conv2d(xt, wtt, bt, stride=s, padding=p, groups=g)
    yt.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    for mine, theirs in ((dx, xt), (dw, wtt), (db, bt)):
        np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_grouped_conv_need_dx_false_gives_the_same_dw(rng):
    x, wt, b = _grouped_inputs(rng, 2, 4, 5, 5, 6, 3, 2)
    _, cache = ops.conv2d_forward(x, wt, b, 1, 1, algo="im2col", groups=2)
    dout = rng.standard_normal((2, 6, 5, 5))
    dx, dw, _ = ops.conv2d_backward(dout, cache, need_dx=False)
    assert dx is None
    np.testing.assert_allclose(dw, ops.conv2d_backward(dout, cache)[1], rtol=1e-13)


@pytest.mark.parametrize("c, f, wc, groups, words", [
    (5, 4, 2, 2, "must divide both the input channels"), (4, 5, 2, 2, "must divide both"),
    (4, 4, 4, 2, "expects 8"), (4, 4, 2, 0, "groups must be an int >= 1"),
])
def test_grouped_conv_bad_groups_are_named(c, f, wc, groups, words):
    x, w, b = np.ones((1, c, 4, 4)), np.ones((f, wc, 3, 3)), np.ones(f)
    with pytest.raises(ValueError, match=words):
        ops.conv2d_forward(x, w, b, 1, 1, groups=groups, name="conv2")
