"""Local Response Normalisation (AlexNet §3.3): gradient checks, hand values, torch parity, the alpha convention."""

from __future__ import annotations

import numpy as np
import pytest

from minivgg import ops
from minivgg.gradcheck import check_op

SHAPES = [(2, 7, 3, 4), (1, 1, 2, 3), (1, 3, 1, 1), (3, 6, 2, 2)]  # incl. batch 1, channels 1 and 3
SETTINGS = [dict(size=5, alpha=1e-4, beta=0.75, k=2.0),          # the paper's constants
            dict(size=5, alpha=0.3, beta=0.75, k=1.0),           # large alpha: the cross term matters
            dict(size=3, alpha=0.2, beta=1.5, k=0.5),
            dict(size=4, alpha=0.2, beta=0.6, k=1.0),            # even size: PyTorch's lopsided window
            dict(size=1, alpha=0.5, beta=0.75, k=1.0)]


def _hand_lrn(x, size, alpha, beta, k):
    """The formula written out channel by channel (no shared code with ops.lrn)."""
    n, c, h, w = x.shape
    out = np.empty_like(x)
    for ch in range(c):
        lo, hi = max(0, ch - size // 2), min(c - 1, ch + (size - 1) // 2)
        s = k + alpha * sum(x[:, j] ** 2 for j in range(lo, hi + 1))
        out[:, ch] = x[:, ch] / s ** beta
    return out


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("setting", SETTINGS)
def test_lrn_gradient_float64(rng, shape, setting):
    x = rng.standard_normal(shape)
    report = check_op(lambda x: ops.lrn_forward(x, **setting), ops.lrn_backward, {"x": x})
    assert report.passed, str(report)
    assert report.max_rel_error < 1e-7


def test_lrn_gradcheck_catches_a_backward_without_the_cross_term(rng):
    """Negative control: dropping the neighbours' term (treating s as a constant) must fail."""
    x = rng.standard_normal((2, 6, 3, 3))

    def wrong_backward(dout, cache):
        return dout * cache.scale ** -cache.beta

    report = check_op(lambda x: ops.lrn_forward(x, size=5, alpha=0.3, beta=0.75, k=1.0), wrong_backward, {"x": x})
    assert not report.passed
    assert report.max_rel_error > 1e-3


@pytest.mark.parametrize("setting", SETTINGS)
def test_lrn_forward_matches_the_formula_by_hand(rng, setting):
    x = rng.standard_normal((2, 7, 3, 2))
    out, _ = ops.lrn_forward(x, **setting)
    np.testing.assert_allclose(out, _hand_lrn(x, **setting), rtol=1e-13, atol=0)


def test_lrn_single_value_by_hand():
    """One channel, one pixel: b = a / (k + alpha a^2)^beta, computed on paper: 2 / (2 + 4e-4)^0.75."""
    x = np.full((1, 1, 1, 1), 2.0)
    out, _ = ops.lrn_forward(x)
    assert out[0, 0, 0, 0] == pytest.approx(2.0 / 2.0004 ** 0.75, rel=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lrn_preserves_dtype(rng, dtype):
    x = rng.standard_normal((1, 5, 2, 2)).astype(dtype)
    out, cache = ops.lrn_forward(x)
    assert out.dtype == dtype
    assert ops.lrn_backward(np.ones_like(out), cache).dtype == dtype


@pytest.mark.parametrize("kwargs, exc, words", [
    (dict(size=0), ValueError, "size"), (dict(size=2.0), ValueError, "size"),
    (dict(alpha=-1.0), ValueError, "alpha"), (dict(beta=float("nan")), ValueError, "beta"),
    (dict(k=0.0), ValueError, "k must be > 0"), (dict(alpha="big"), TypeError, "alpha"),
])
def test_lrn_bad_constants_are_named(rng, kwargs, exc, words):
    with pytest.raises(exc, match=words):
        ops.lrn_forward(rng.standard_normal((1, 3, 2, 2)), name="norm1", **kwargs)


def test_lrn_bad_arrays():
    with pytest.raises(ValueError, match="norm1: input x"):
        ops.lrn_forward(np.ones((3, 2, 2)), name="norm1")
    with pytest.raises(TypeError, match="input x"):
        ops.lrn_forward(np.ones((1, 3, 2, 2), dtype=np.int64))
    _, cache = ops.lrn_forward(np.ones((1, 3, 2, 2)))
    with pytest.raises(ValueError, match="forward output's shape"):
        ops.lrn_backward(np.ones((1, 3, 2, 3)), cache)
    with pytest.raises(TypeError, match="dtype"):
        ops.lrn_backward(np.ones((1, 3, 2, 2), dtype=np.float32), cache)


# ------------------------------------------------------------------ PyTorch, the oracle

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("setting", SETTINGS)
def test_lrn_matches_torch_with_alpha_times_size(rng, shape, setting):
    """Paper's alpha == torch's alpha / size: LocalResponseNorm(n, alpha=n*alpha) is the same layer."""
    torch = pytest.importorskip("torch")
    x = rng.standard_normal(shape)
    g = rng.standard_normal(shape)
    out, cache = ops.lrn_forward(x, **setting)
    dx = ops.lrn_backward(g, cache)
    layer = torch.nn.LocalResponseNorm(setting["size"], alpha=setting["size"] * setting["alpha"],
                                       beta=setting["beta"], k=setting["k"])
    xt = torch.tensor(x, requires_grad=True)
    yt = layer(xt)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(out, yt.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_lrn_paper_constants_equal_torch_5e4_and_differ_from_torch_1e4(rng):
    """The convention trap, pinned: the paper's layer is LocalResponseNorm(5, alpha=5e-4), not alpha=1e-4."""
    torch = pytest.importorskip("torch")
    x = 10 * rng.standard_normal((1, 8, 3, 3))  # large activations so the normaliser matters
    out, _ = ops.lrn_forward(x)  # the paper's size=5, alpha=1e-4, beta=0.75, k=2
    same = torch.nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)(torch.tensor(x)).numpy()
    naive = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)(torch.tensor(x)).numpy()
    np.testing.assert_allclose(out, same, rtol=1e-12)
    assert np.max(np.abs(out - naive)) > 1e-2
