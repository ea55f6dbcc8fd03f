"""Winograd F(2x2, 3x3): agreement with im2col/naive, gradient checks, blocking, threads, fp32 error."""

from __future__ import annotations

import numpy as np
import pytest

from minivgg import ops
from minivgg.kernels import _parallel as threads
from minivgg.gradcheck import check_op
from minivgg.kernels import winograd as wk
from minivgg.ops import conv as conv_mod
from minivgg.ops.conv import winograd as wmod

RNG = np.random.default_rng(2015)
LINEAR_H = 1e-3  # conv is linear in x and w: no truncation error, a larger step shrinks round-off

# (N, C, H, W, F): odd and even sizes, non-square, 1x1 images, batch 1, channels 1
CASES = [
    (2, 3, 7, 7, 4),
    (1, 1, 5, 8, 2),
    (3, 2, 6, 5, 3),
    (1, 4, 1, 1, 2),
    (2, 2, 2, 3, 1),
    (1, 5, 9, 4, 6),
]


def _inputs(n, c, h, w, f, dtype=np.float64):
    return (RNG.standard_normal((n, c, h, w)).astype(dtype), RNG.standard_normal((f, c, 3, 3)).astype(dtype),
            RNG.standard_normal(f).astype(dtype))


def _max_diff(a, b):
    return float(np.max(np.abs(a - b)))


@pytest.mark.parametrize("case", CASES)
def test_winograd_matches_im2col_and_naive_to_1e10(case):
    x, w, b = _inputs(*case)
    out_w, cache_w = ops.conv2d_forward(x, w, b, algo="winograd")
    out_i, cache_i = ops.conv2d_forward(x, w, b, algo="im2col")
    out_n, _ = ops.conv2d_forward(x, w, b, algo="naive")
    assert out_w.shape == out_i.shape == (case[0], case[4], case[2], case[3])
    assert _max_diff(out_w, out_i) < 1e-10 and _max_diff(out_w, out_n) < 1e-10
    dout = RNG.standard_normal(out_w.shape)
    for g_w, g_i in zip(ops.conv2d_backward(dout, cache_w), ops.conv2d_backward(dout, cache_i)):
        assert g_w.shape == g_i.shape
        assert _max_diff(g_w, g_i) < 1e-10


def test_winograd_on_a_hand_computed_case():
    # all-ones 3x3 filter on a 1-channel 3x3 image of ones, pad 1: each output counts its in-bounds neighbours
    x = np.ones((1, 1, 3, 3))
    w = np.ones((1, 1, 3, 3))
    out, _ = ops.conv2d_forward(x, w, np.array([0.5]), algo="winograd")
    assert np.array_equal(out[0, 0], np.array([[4, 6, 4], [6, 9, 6], [4, 6, 4]]) + 0.5)


@pytest.mark.parametrize("case", CASES[:4])
def test_winograd_gradients_float64(case):
    x, w, b = _inputs(*case)
    report = check_op(lambda x, w, b: ops.conv2d_forward(x, w, b, algo="winograd"), ops.conv2d_backward,
                      {"x": x, "w": w, "b": b}, h=LINEAR_H, name="conv2d[winograd]")
    assert report.passed, str(report)
    assert report.max_rel_error < 1e-7


def test_gradient_check_catches_a_wrong_winograd_backward(monkeypatch):
    # negative control: transpose the tile transform wrongly in dx and the checker must fail
    x, w, b = _inputs(2, 3, 5, 6, 2)
    good = wmod.winograd_backward

    def wrong(dout, x, w, stride, pad):
        dx, dw = good(dout, x, w, stride, pad)
        return dx[:, :, ::-1, :].copy(), dw  # rows flipped: the classic forgotten-rotation bug

    monkeypatch.setitem(conv_mod.ALGORITHMS, "winograd", (wmod.winograd_forward, wrong))
    report = check_op(lambda x, w, b: ops.conv2d_forward(x, w, b, algo="winograd"), ops.conv2d_backward,
                      {"x": x, "w": w, "b": b}, h=LINEAR_H)
    assert not report.passed
    assert report["x"].rel_error > 1e-3 and report["w"].rel_error < 1e-7


def test_agreement_check_catches_a_wrong_filter_transform(monkeypatch):
    # negative control for the 1e-10 comparison: G with one sign wrong
    x, w, b = _inputs(1, 2, 6, 6, 3)
    reference, _ = ops.conv2d_forward(x, w, b, algo="im2col")

    def bad_transform(w):
        u = np.empty((16, w.shape[0], w.shape[1]), dtype=w.dtype)
        wk.filter_transform(w, 0, w.shape[0], u)
        u[5] = -u[5]
        return u

    monkeypatch.setattr(wmod, "transform_filters", bad_transform)
    out, _ = ops.conv2d_forward(x, w, b, algo="winograd")
    assert _max_diff(out, reference) > 1e-3


@pytest.mark.parametrize("nthreads", [1, 2])
def test_blocked_and_pipelined_paths_match_im2col(monkeypatch, nthreads):
    # tiny block budgets force many tile blocks (32 tiles each) that straddle images and tile rows,
    # through both the pipelined forward (one block per thread at a time) and the phase-parallel one
    if nthreads > threads.available_cores():
        pytest.skip("needs 2 cores")
    x, w, b = _inputs(3, 5, 17, 13, 4)                        # 3 * 9 * 7 = 189 tiles
    ref, cache_i = ops.conv2d_forward(x, w, b, algo="im2col")
    dout = RNG.standard_normal(ref.shape)
    ref_grads = ops.conv2d_backward(dout, cache_i)
    for budget in ("PIPELINE_BLOCK_BYTES", "FORWARD_BLOCK_BYTES"):
        with monkeypatch.context() as m:
            for name in ("PIPELINE_BLOCK_BYTES", "FORWARD_BLOCK_BYTES", "BACKWARD_BLOCK_BYTES"):
                m.setattr(wmod, name, 1 if name in (budget, "BACKWARD_BLOCK_BYTES") else 2**40)
            m.setattr(wmod, "_MIN_WORK_PER_THREAD", 1)
            with threads.limit_threads(nthreads):
                out, cache = ops.conv2d_forward(x, w, b, algo="winograd")
                grads = ops.conv2d_backward(dout, cache)
        assert _max_diff(out, ref) < 1e-10
        for g, r in zip(grads, ref_grads):
            assert _max_diff(g, r) < 1e-10


def test_one_and_two_threads_give_identical_float32_results():
    if threads.available_cores() < 2:
        pytest.skip("needs 2 cores")
    x, w, b = _inputs(2, 16, 20, 18, 8, np.float32)
    results = []
    for n in (1, 2):
        with threads.limit_threads(n):
            out, cache = ops.conv2d_forward(x, w, b, algo="winograd")
            results.append((out, *ops.conv2d_backward(np.ones_like(out), cache)))
    for a, c in zip(*results):
        # the transforms are exact per element whatever the split; only BLAS summation order may differ
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-4)


def test_float32_error_no_worse_than_direct_convolution():
    # same fp32 inputs through both algorithms, both compared with a float64 reference
    x = RNG.standard_normal((1, 32, 24, 24)).astype(np.float32)
    w = (RNG.standard_normal((32, 32, 3, 3)) * np.sqrt(2 / 288)).astype(np.float32)
    b = RNG.standard_normal(32).astype(np.float32)
    ref, ref_cache = ops.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                                        algo="naive")
    dout = RNG.standard_normal(ref.shape).astype(np.float32)
    ref_grads = ops.conv2d_backward(dout.astype(np.float64), ref_cache)
    errs = {}
    for algo in ("im2col", "winograd"):
        out, cache = ops.conv2d_forward(x, w, b, algo=algo)
        grads = ops.conv2d_backward(dout, cache)
        assert out.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
        errs[algo] = [float(np.sqrt(np.mean((got.astype(np.float64) - r) ** 2)) / np.sqrt(np.mean(r ** 2)))
                      for got, r in zip((out, *grads[:2]), (ref, *ref_grads[:2]))]
    for e_w, e_i in zip(errs["winograd"], errs["im2col"]):
        assert e_i < 1e-6                   # the yardstick is fp32 round-off, not a broken reference
        assert e_w <= 2.0 * e_i             # Winograd F(2x2,3x3): same order as direct
    # negative control: a float16 round trip of the output is clearly worse and would fail that bound
    coarse = ops.conv2d_forward(x, w, b, algo="winograd")[0].astype(np.float16).astype(np.float64)
    assert np.sqrt(np.mean((coarse - ref) ** 2)) / np.sqrt(np.mean(ref ** 2)) > 2.0 * errs["im2col"][0]


def test_winograd_refuses_other_kernels_strides_and_pads():
    x, w, b = _inputs(1, 2, 6, 6, 2)
    with pytest.raises(ValueError, match="3x3 kernel with stride 1 and pad 1"):
        ops.conv2d_forward(x, w, b, stride=2, algo="winograd")
    with pytest.raises(ValueError, match="3x3 kernel with stride 1 and pad 1"):
        ops.conv2d_forward(x, w, b, pad=0, algo="winograd")
    w5 = RNG.standard_normal((2, 2, 5, 5))
    with pytest.raises(ValueError, match="got kernel 5x5"):
        ops.conv2d_forward(x, w5, b, pad=1, algo="winograd")


def test_auto_picks_winograd_only_where_it_applies_and_pays():
    choose = conv_mod.choose_algorithm
    assert choose((1, 64, 224, 224), (64, 64, 3, 3), 1, 1, "auto") == "winograd"
    assert choose((1, 3, 224, 224), (64, 3, 3, 3), 1, 1, "auto") == "im2col"      # K = 3 GEMMs
    assert choose((1, 512, 14, 14), (512, 512, 3, 3), 1, 1, "auto") == "im2col"   # 49 tiles
    assert choose((8, 512, 14, 14), (512, 512, 3, 3), 1, 1, "auto") == "winograd"  # 392 tiles
    assert choose((1, 64, 56, 56), (64, 64, 3, 3), 2, 1, "auto") == "im2col"
    assert choose((1, 64, 56, 56), (64, 64, 1, 1), 1, 0, "auto") == "im2col"
    with pytest.raises(ValueError, match="unknown convolution algorithm"):
        choose((1, 64, 56, 56), (64, 64, 3, 3), 1, 1, "fft")


def test_auto_conv_caches_the_algorithm_it_ran_and_backward_uses_it():
    x, w, b = _inputs(1, 16, 16, 16, 4)          # 16 channels but only 64 tiles -> im2col
    _, cache = ops.conv2d_forward(x, w, b)
    assert cache.algo == "im2col"
    x, w, b = _inputs(2, 16, 24, 24, 4)          # 2 * 144 tiles -> winograd
    out, cache = ops.conv2d_forward(x, w, b)
    assert cache.algo == "winograd" and cache.x is x
    ref, _ = ops.conv2d_forward(x, w, b, algo="im2col")
    assert _max_diff(out, ref) < 1e-10


@pytest.mark.torch
def test_winograd_matches_torch_float64():
    torch = pytest.importorskip("torch")
    x, w, b = _inputs(2, 3, 9, 6, 5)
    out, cache = ops.conv2d_forward(x, w, b, algo="winograd")
    dout = RNG.standard_normal(out.shape)
    dx, dw, db = ops.conv2d_backward(dout, cache)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = torch.nn.functional.conv2d(tx, tw, tb, stride=1, padding=1)
    tout.backward(torch.from_numpy(dout))
    assert _max_diff(out, tout.detach().numpy()) < 1e-10
    for mine, theirs in ((dx, tx.grad), (dw, tw.grad), (db, tb.grad)):
        assert _max_diff(mine, theirs.numpy()) < 1e-10


# ---------------------------------------------------------------- the transform kernels, tile by tile
# The kernels work on runs of tiles along a tile row (vectorised); the reference here is the textbook
# per-tile matrix form with explicit zero padding, so a wrong run boundary, border or overhang shows.
B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def _reference_input_transform(x, p0, p1):
    n_img, c, h, w = x.shape
    th, tw = wmod.tiles(h, w)
    xp = np.zeros((n_img, c, 2 * th + 2, 2 * tw + 2))
    xp[:, :, 1:h + 1, 1:w + 1] = x
    v = np.empty((16, c, p1 - p0))
    for p in range(p0, p1):
        n, rem = divmod(p, th * tw)
        ty, tx = divmod(rem, tw)
        d = xp[n, :, 2 * ty:2 * ty + 4, 2 * tx:2 * tx + 4]           # (C, 4, 4)
        v[:, :, p - p0] = (B_T @ d @ B_T.T).reshape(c, 16).T
    return v


def _reference_output_transform(m, b, p0, p1, out_shape):
    n_img, f, h, w = out_shape
    th, tw = wmod.tiles(h, w)
    out = np.full((n_img, f, 2 * th, 2 * tw), np.nan)
    for p in range(p0, p1):
        n, rem = divmod(p, th * tw)
        ty, tx = divmod(rem, tw)
        y = A_T @ m[:, :, p - p0].T.reshape(f, 4, 4) @ A_T.T + b[:, None, None]   # (F, 2, 2)
        out[n, :, 2 * ty:2 * ty + 2, 2 * tx:2 * tx + 2] = y
    return out[:, :, :h, :w]


# (N, C, H, W) x tile ranges that start and end mid-row, span images, or cover everything
TRANSFORM_CASES = [((2, 3, 7, 9), None), ((2, 3, 7, 9), (3, 29)), ((1, 2, 1, 1), None), ((3, 1, 5, 2), (2, 7)),
                   ((1, 2, 8, 8), (5, 6)), ((2, 2, 2, 1), (1, 2))]


@pytest.mark.parametrize("shape,span", TRANSFORM_CASES)
def test_vectorised_transforms_match_the_per_tile_matrix_form(shape, span):
    x = RNG.standard_normal(shape)
    th, tw = wmod.tiles(*shape[2:])
    p0, p1 = span or (0, shape[0] * th * tw)
    v = np.full((16, shape[1], p1 - p0), np.nan)
    wk.input_transform(x, 0, shape[1], p0, p1, th, tw, v)
    assert _max_diff(v, _reference_input_transform(x, p0, p1)) < 1e-12
    f = 3
    m, b = RNG.standard_normal((16, f, p1 - p0)), RNG.standard_normal(f)
    out = np.full((shape[0], f) + shape[2:], np.nan)
    wk.output_transform(m, b, 0, f, p0, p1, th, tw, out)
    ref = _reference_output_transform(m, b, p0, p1, out.shape)
    assert np.array_equal(np.isnan(out), np.isnan(ref))               # exactly the tiles asked for are written
    assert np.nanmax(np.abs(out - ref)) < 1e-12


def test_transform_reference_catches_a_wrong_border():
    # negative control: the same kernel fed a tile range shifted by one must disagree with the reference
    x = RNG.standard_normal((1, 2, 6, 7))
    th, tw = wmod.tiles(6, 7)
    v = np.empty((16, 2, 10))
    wk.input_transform(x, 0, 2, 1, 11, th, tw, v)
    assert _max_diff(v, _reference_input_transform(x, 0, 10)) > 1e-3
    x_shift = np.zeros_like(x)
    x_shift[:, :, :, 1:] = x[:, :, :, :-1]                            # padding on the wrong side
    wk.input_transform(x_shift, 0, 2, 0, 10, th, tw, v)
    assert _max_diff(v, _reference_input_transform(x, 0, 10)) > 1e-3


def test_float32_transforms_error_against_float64():
    # the transforms only add and subtract: fp32 error is a few roundings of the tile's values
    x = RNG.standard_normal((1, 4, 11, 10)).astype(np.float32)
    th, tw = wmod.tiles(11, 10)
    total = th * tw
    v = np.empty((16, 4, total), dtype=np.float32)
    wk.input_transform(x, 0, 4, 0, total, th, tw, v)
    ref = _reference_input_transform(x.astype(np.float64), 0, total)
    rms = np.sqrt(np.mean(ref ** 2))
    assert v.dtype == np.float32
    assert _max_diff(v, ref) / rms < 1e-6
    m = RNG.standard_normal((16, 3, total)).astype(np.float32)
    b = RNG.standard_normal(3).astype(np.float32)
    out = np.empty((1, 3, 11, 10), dtype=np.float32)
    wk.output_transform(m, b, 0, 3, 0, total, th, tw, out)
    ref_out = _reference_output_transform(m.astype(np.float64), b.astype(np.float64), 0, total, out.shape)
    assert _max_diff(out, ref_out) / np.sqrt(np.mean(ref_out ** 2)) < 1e-6
    # negative control: a float16 round trip of the same result fails that bound
    assert _max_diff(v.astype(np.float16).astype(np.float64), ref) / rms > 1e-6


# ---------------------------------------------------------------- 2x2/stride-2 max-pool fast path

@pytest.mark.parametrize("shape", [(1, 64, 224, 224), (2, 3, 7, 9), (1, 1, 2, 2), (3, 2, 5, 4)])
def test_maxpool_2x2_fast_path_matches_the_naive_loops(shape):
    x = RNG.standard_normal(shape).astype(np.float32)
    x[0, 0, :2, :2] = 3.0                                              # a four-way tie: first (top-left) wins
    if shape[3] >= 4:
        x[0, -1, 0, 2:4] = np.nan                                      # NaN handling as the generic loop
    out, cache = ops.maxpool_forward(x, 2, 2)
    out_n, cache_n = ops.maxpool_forward(x, 2, 2, algo="naive")
    assert out.dtype == np.float32 and out.shape == out_n.shape
    finite = ~np.isnan(out_n)
    assert np.array_equal(out[finite], out_n[finite])
    assert np.array_equal(cache.argmax[finite], cache_n.argmax[finite])
    assert cache.argmax[0, 0, 0, 0] == 0
    # negative control: the same check sees a permuted window order
    x_perm = x.copy()
    x_perm[0, 0, 0, 0] = 2.0
    out_p, cache_p = ops.maxpool_forward(x_perm, 2, 2)
    assert cache_p.argmax[0, 0, 0, 0] != cache_n.argmax[0, 0, 0, 0]


# ---------------------------------------------------------------- ReLU kernel

@pytest.mark.parametrize("dtype,bits", [(np.float32, np.uint32), (np.float64, np.uint64)])
def test_relu_kernel_is_bit_identical_to_np_maximum(dtype, bits):
    x = RNG.standard_normal((2, 3, 5, 4)).astype(dtype)
    x.flat[:6] = [np.nan, -0.0, 0.0, np.inf, -np.inf, -1e-300 if dtype == np.float64 else -1e-45]
    out, cache = ops.relu_forward(x)
    ref = np.maximum(x, 0)
    assert out.dtype == dtype and cache.out is out and out is not x   # the cache keeps the OUTPUT array
    assert np.array_equal(out.view(bits), ref.view(bits))             # -0.0 -> +0.0, NaN kept
    strided = x[:, :, ::2]                                            # non-contiguous input: the NumPy path
    assert np.array_equal(ops.relu_forward(strided)[0], np.maximum(strided, 0), equal_nan=True)
    # negative control: the bitwise check tells -0.0 from +0.0
    assert not np.array_equal(np.where(x == 0, -0.0, ref).view(bits), ref.view(bits))


def test_relu_gradient_float64_and_a_wrong_backward_is_caught():
    x = RNG.standard_normal((2, 3, 4, 5))
    x[np.abs(x) < 1e-2] = 0.5                                          # keep away from the kink
    report = check_op(ops.relu_forward, ops.relu_backward, {"x": x}, name="relu")
    assert report.passed, str(report)
    bad = check_op(ops.relu_forward, lambda dout, cache: dout * (cache.out >= 0), {"x": x}, name="relu")
    assert not bad.passed
