"""Every op: float64 gradient checks, fast path vs naive reference, dtype contract, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from minivgg import ops
from minivgg.gradcheck import check_op, numerical_gradient, rel_error

RNG = np.random.default_rng(1234)

# conv and dense are linear in each argument separately, so centered differences
# have no truncation error and a larger step only shrinks the round-off
# (eps * |f| / h), which otherwise dominates the relative error of tiny
# gradient entries. Non-linear ops keep the classic h = 1e-5.
LINEAR_H = 1e-3

# (N, C, H, W, F, K, stride, pad): square/non-square, batch 1, channels 1, strides, 1x1, 5x5
CONV_CASES = [
    (2, 3, 7, 7, 4, 3, 1, 1),
    (1, 1, 5, 8, 2, 3, 1, 1),
    (3, 2, 6, 5, 3, 3, 2, 1),
    (2, 3, 9, 7, 2, 5, 3, 2),
    (2, 4, 5, 6, 3, 1, 1, 0),
    (1, 2, 4, 4, 1, 4, 1, 0),
    (2, 2, 7, 6, 2, 3, 2, 0),
]


def _conv_inputs(n, c, h, w, f, k, dtype=np.float64):
    return (RNG.standard_normal((n, c, h, w)).astype(dtype),
            RNG.standard_normal((f, c, k, k)).astype(dtype),
            RNG.standard_normal(f).astype(dtype))


# ---------------------------------------------------------------- convolution

@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("algo", ["naive", "im2col"])
def test_conv_gradients_float64(case, algo):
    n, c, h, w, f, k, s, p = case
    x, wt, b = _conv_inputs(n, c, h, w, f, k)
    report = check_op(lambda x, w, b: ops.conv2d_forward(x, w, b, s, p, algo=algo), ops.conv2d_backward,
                      {"x": x, "w": wt, "b": b}, h=LINEAR_H)
    assert report.passed, str(report)
    assert report.max_rel_error < 1e-7


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_im2col_matches_naive_to_1e10(case):
    n, c, h, w, f, k, s, p = case
    x, wt, b = _conv_inputs(n, c, h, w, f, k)
    out_n, cache_n = ops.conv2d_forward(x, wt, b, s, p, algo="naive")
    out_i, cache_i = ops.conv2d_forward(x, wt, b, s, p, algo="im2col")
    assert out_n.shape == out_i.shape == (n, f, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
    assert np.max(np.abs(out_n - out_i)) < 1e-10
    dout = RNG.standard_normal(out_n.shape)
    for g_naive, g_fast in zip(ops.conv2d_backward(dout, cache_n), ops.conv2d_backward(dout, cache_i)):
        assert np.max(np.abs(g_naive - g_fast)) < 1e-10


def test_conv_naive_against_hand_computed_values():
    # 1 channel, 3x3 input, 2x2 kernel, no padding: out[y,x] = sum of the window * kernel + b
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    b = np.array([0.5])
    out, _ = ops.conv2d_forward(x, w, b, stride=1, pad=0, algo="naive")
    # window at (0,0) = [[0,1],[3,4]] -> 0+2+9+16 = 27; (0,1) = [[1,2],[4,5]] -> 1+4+12+20 = 37
    # (1,0) = [[3,4],[6,7]] -> 3+8+18+28 = 57; (1,1) = [[4,5],[7,8]] -> 4+10+21+32 = 67
    assert np.array_equal(out[0, 0], np.array([[27.5, 37.5], [57.5, 67.5]]))


def test_conv_workspace_chunking_gives_same_answer(monkeypatch):
    from minivgg.ops.conv import im2col as im2col_mod

    x, wt, b = _conv_inputs(5, 3, 6, 6, 4, 3)
    full, cache = ops.conv2d_forward(x, wt, b, algo="im2col")
    dout = RNG.standard_normal(full.shape)
    grads = ops.conv2d_backward(dout, cache)
    # a workspace of one image's columns forces 5 chunks (counted: the check cannot pass unchunked)
    monkeypatch.setattr(im2col_mod, "WORKSPACE_BYTES", 27 * 36 * 8)
    real, chunks = im2col_mod._im2col, []
    monkeypatch.setattr(im2col_mod, "_im2col", lambda xb, *a: (chunks.append(len(xb)), real(xb, *a)))
    chunked, cache2 = ops.conv2d_forward(x, wt, b, algo="im2col")
    assert chunks == [1, 1, 1, 1, 1]
    assert np.max(np.abs(full - chunked)) < 1e-12
    for g1, g2 in zip(grads, ops.conv2d_backward(dout, cache2)):
        assert np.max(np.abs(g1 - g2)) < 1e-12


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_preserves_dtype(dtype):
    x, wt, b = _conv_inputs(1, 2, 5, 5, 3, 3, dtype)
    out, cache = ops.conv2d_forward(x, wt, b)
    assert out.dtype == dtype
    assert all(g.dtype == dtype for g in ops.conv2d_backward(np.ones_like(out), cache))


def test_conv_cache_keeps_the_input_itself_not_a_copy():
    x, wt, b = _conv_inputs(1, 2, 5, 5, 3, 3)
    _, cache = ops.conv2d_forward(x, wt, b)
    assert cache.x is x and cache.w is wt


@pytest.mark.parametrize("kwargs, exc, words", [
    (dict(x=np.zeros((3, 5, 5))), ValueError, ["conv_test", "4-D", "(3, 5, 5)"]),
    (dict(x=np.zeros((1, 2, 5, 5), dtype=np.int64)), TypeError, ["conv_test", "floating", "int64"]),
    (dict(x=np.zeros((1, 2, 5, 5), dtype=np.complex128)), TypeError, ["conv_test", "complex128"]),
    (dict(x=np.zeros((1, 4, 5, 5))), ValueError, ["conv_test", "4 channels", "expects 3"]),
    (dict(w=np.zeros((2, 3, 3))), ValueError, ["conv_test", "weight", "4-D"]),
    (dict(b=np.zeros(3)), ValueError, ["conv_test", "bias", "(2,)"]),
    (dict(x=np.zeros((1, 3, 5, 5), dtype=np.float32)), TypeError, ["conv_test", "float64", "float32"]),
    (dict(w=np.zeros((2, 3, 9, 9))), ValueError, ["conv_test", "larger than the padded input", "7x7"]),
    (dict(stride=0), ValueError, ["conv_test", "stride", "0"]),
    (dict(pad=-1), ValueError, ["conv_test", "pad", "-1"]),
    (dict(algo="fft"), ValueError, ["fft"]),
])
def test_conv_bad_input_is_named(kwargs, exc, words):
    args = dict(x=np.zeros((1, 3, 5, 5)), w=np.zeros((2, 3, 3, 3)), b=np.zeros(2), stride=1, pad=1, algo="auto")
    args.update(kwargs)
    with pytest.raises(exc) as info:
        ops.conv2d_forward(args["x"], args["w"], args["b"], args["stride"], args["pad"], algo=args["algo"],
                           name="conv_test")
    for word in words:
        assert word in str(info.value)


def test_conv_backward_rejects_wrong_dout_shape():
    x, wt, b = _conv_inputs(1, 2, 5, 5, 3, 3)
    out, cache = ops.conv2d_forward(x, wt, b)
    with pytest.raises(ValueError, match=r"\(1, 3, 5, 5\)"):
        ops.conv2d_backward(np.zeros((1, 3, 4, 5)), cache)


# ---------------------------------------------------------------- ReLU

def test_relu_gradient_float64():
    x = RNG.standard_normal((3, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # stay away from the kink, where centered differences straddle it
    report = check_op(ops.relu_forward, ops.relu_backward, {"x": x})
    assert report.passed, str(report)


def test_relu_derivative_at_zero_is_zero():
    x = np.array([-1.0, 0.0, 2.0])
    out, cache = ops.relu_forward(x)
    assert np.array_equal(out, [0.0, 0.0, 2.0])
    assert np.array_equal(ops.relu_backward(np.ones(3), cache), [0.0, 0.0, 1.0])


def test_relu_does_not_modify_its_input():
    x = RNG.standard_normal(10)
    before = x.copy()
    ops.relu_forward(x)
    assert np.array_equal(x, before)


# ---------------------------------------------------------------- max-pool

@pytest.mark.parametrize("shape, size, stride", [
    ((2, 3, 8, 8), 2, 2), ((1, 1, 7, 5), 2, 2), ((2, 2, 7, 7), 3, 2), ((1, 2, 6, 9), 3, 3), ((2, 1, 5, 5), 2, 1),
])
@pytest.mark.parametrize("algo", ["naive", "numba"])
def test_maxpool_gradient_float64(shape, size, stride, algo):
    x = RNG.permutation(np.prod(shape)).reshape(shape).astype(np.float64) / 10  # distinct: no ties
    report = check_op(lambda x: ops.maxpool_forward(x, size, stride, algo=algo),
                      lambda d, c: ops.maxpool_backward(d, c, algo=algo), {"x": x})
    assert report.passed, str(report)


def test_maxpool_numba_matches_naive_and_hand_values():
    x = np.array([[[[1.0, 5.0, 2.0, 0.0],
                    [3.0, 4.0, 9.0, 1.0],
                    [0.0, 0.0, 7.0, 7.0],
                    [6.0, 0.0, 7.0, 7.0]]]])
    out, cache = ops.maxpool_forward(x, 2, 2)
    assert np.array_equal(out[0, 0], [[5.0, 9.0], [6.0, 7.0]])
    # ties (the 7s) go to the first maximum in row-major order: window position 0
    assert np.array_equal(cache.argmax[0, 0], [[1, 2], [2, 0]])
    out_n, cache_n = ops.maxpool_forward(x, 2, 2, algo="naive")
    assert np.array_equal(out, out_n) and np.array_equal(cache.argmax, cache_n.argmax)
    dx = ops.maxpool_backward(np.ones_like(out), cache)
    expected = np.zeros_like(x)
    expected[0, 0, 0, 1] = expected[0, 0, 1, 2] = expected[0, 0, 3, 0] = expected[0, 0, 2, 2] = 1
    assert np.array_equal(dx, expected)


def test_maxpool_overlapping_windows_accumulate():
    x = np.array([[[[0.0, 9.0, 0.0]]]])  # the 9 wins both 1x2 windows when stride is 1
    out, cache = ops.maxpool_forward(np.repeat(x, 2, axis=2), size=2, stride=1)
    dx = ops.maxpool_backward(np.ones_like(out), cache)
    assert dx[0, 0, 0, 1] == 2.0 and dx.sum() == 2.0


def test_maxpool_bad_input():
    with pytest.raises(ValueError, match="pool_test.*smaller than the 2x2"):
        ops.maxpool_forward(np.zeros((1, 1, 1, 4)), name="pool_test")
    with pytest.raises(TypeError, match="pool_test.*floating"):
        ops.maxpool_forward(np.zeros((1, 1, 4, 4), dtype=np.int32), name="pool_test")
    with pytest.raises(ValueError, match="pool_test.*4-D"):
        ops.maxpool_forward(np.zeros((4, 4)), name="pool_test")


# ---------------------------------------------------------------- dense

@pytest.mark.parametrize("x_shape, d_out", [((4, 6), 3), ((2, 3, 2, 2), 5), ((1, 7), 1)])
def test_dense_gradient_float64(x_shape, d_out):
    x = RNG.standard_normal(x_shape)
    d_in = int(np.prod(x_shape[1:]))
    report = check_op(ops.dense_forward, ops.dense_backward,
                      {"x": x, "w": RNG.standard_normal((d_in, d_out)), "b": RNG.standard_normal(d_out)},
                      h=LINEAR_H)
    assert report.passed, str(report)


def test_dense_flattens_and_returns_dx_in_input_shape():
    x = RNG.standard_normal((2, 3, 2, 2))
    w, b = RNG.standard_normal((12, 4)), RNG.standard_normal(4)
    out, cache = ops.dense_forward(x, w, b)
    assert np.allclose(out, x.reshape(2, 12) @ w + b)
    dx, dw, db = ops.dense_backward(np.ones((2, 4)), cache)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape


def test_dense_bad_input():
    with pytest.raises(ValueError, match="fc_test.*flattens to 12.*D_in = 10"):
        ops.dense_forward(np.zeros((2, 3, 2, 2)), np.zeros((10, 4)), np.zeros(4), name="fc_test")
    with pytest.raises(TypeError, match="fc_test.*float32"):
        ops.dense_forward(np.zeros((2, 10)), np.zeros((10, 4), dtype=np.float32), np.zeros(4), name="fc_test")


# ---------------------------------------------------------------- dropout

def test_dropout_gradient_float64_with_fixed_mask():
    x = RNG.standard_normal((4, 50))
    report = check_op(lambda x: ops.dropout_forward(x, 0.3, train=True, rng=7), ops.dropout_backward, {"x": x})
    assert report.passed, str(report)


def test_dropout_is_inverted_and_seeded():
    x = np.ones((200, 500))
    out, cache = ops.dropout_forward(x, 0.5, train=True, rng=np.random.default_rng(3))
    kept = out != 0
    assert np.allclose(out[kept], 2.0)  # scaled by 1/(1-p)
    assert abs(kept.mean() - 0.5) < 0.01  # 100k Bernoulli(0.5): std 0.0016
    assert abs(out.mean() - 1.0) < 0.02  # expectation preserved
    out2, _ = ops.dropout_forward(x, 0.5, train=True, rng=np.random.default_rng(3))
    assert np.array_equal(out, out2)
    assert cache.mask.dtype == np.bool_


def test_dropout_is_identity_at_test_time():
    x = RNG.standard_normal((3, 4))
    out, cache = ops.dropout_forward(x, 0.5, train=False)
    assert out is x and cache.mask is None


def test_dropout_bad_arguments():
    with pytest.raises(ValueError, match="p must be in"):
        ops.dropout_forward(np.ones(3), 1.0, train=True, rng=0)
    with pytest.raises(ValueError, match="seeded rng"):
        ops.dropout_forward(np.ones(3), 0.5, train=True)
    with pytest.raises(TypeError, match="train must be a bool"):
        ops.dropout_forward(np.ones(3), 0.5, train="yes", rng=0)


# ---------------------------------------------------------------- softmax cross-entropy

def test_softmax_cross_entropy_gradient_float64():
    logits, y = RNG.standard_normal((5, 7)), RNG.integers(0, 7, 5)
    loss, dlogits = ops.softmax_cross_entropy(logits, y)
    num = numerical_gradient(lambda z: ops.softmax_cross_entropy(z, y)[0], logits)
    assert rel_error(dlogits, num) < 1e-7


def test_softmax_cross_entropy_value_by_hand():
    # two classes, logits (0, log 3): p = (1/4, 3/4); label 1 -> loss = -log(3/4)
    loss, dlogits = ops.softmax_cross_entropy(np.array([[0.0, np.log(3.0)]]), np.array([1]))
    assert np.isclose(loss, -np.log(0.75))
    assert np.allclose(dlogits, [[0.25, -0.25]])


def test_softmax_cross_entropy_stable_for_huge_logits():
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]], dtype=np.float32)
    loss, dlogits = ops.softmax_cross_entropy(logits, np.array([0, 0]))
    # row 0 is certain and right (loss 0), row 1 is certain and wrong by 2e4
    assert np.isfinite(loss) and np.isclose(loss, 1e4, rtol=1e-6)
    assert np.all(np.isfinite(dlogits)) and dlogits.dtype == np.float32


def test_softmax_cross_entropy_bad_labels():
    with pytest.raises(ValueError, match="label 3 is out of range for 3 classes"):
        ops.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="label -1"):
        ops.softmax_cross_entropy(np.zeros((2, 3)), np.array([-1, 0]))
    with pytest.raises(TypeError, match="integers"):
        ops.softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        ops.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2]))


def test_dense_backward_writes_into_a_given_buffer():
    x, w, b = RNG.standard_normal((3, 4)), RNG.standard_normal((4, 2)), RNG.standard_normal(2)
    _, cache = ops.dense_forward(x, w, b)
    dout = RNG.standard_normal((3, 2))
    buf = np.full((4, 2), np.nan)
    _, dw, _ = ops.dense_backward(dout, cache, dw_out=buf)
    assert dw is buf and np.allclose(buf, x.T @ dout)
    with pytest.raises(ValueError, match=r"dw_out must be a float64 array of shape \(4, 2\)"):
        ops.dense_backward(dout, cache, dw_out=np.zeros((2, 4)))
