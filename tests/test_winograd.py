"""Winograd F(2x2, 3x3): agreement with im2col/naive, gradient checks, blocking, threads, fp32 error."""

from __future__ import annotations

import numpy as np
import pytest

from minivgg import ops, threads
from minivgg.gradcheck import check_op
from minivgg.kernels import winograd as wk
from minivgg.ops import conv as conv_mod
from minivgg.ops import winograd as wmod

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
