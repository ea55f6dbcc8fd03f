"""Winograd F(2x2, 3x3): agreement with im2col/naive, gradient checks, blocking, threads, fp32 error.

The matrices, the per-tile reference transforms and the checks shared with F(4x4, 3x3) live in
``_winograd_reference.py`` (scheme :data:`~_winograd_reference.F2` here).
"""

from __future__ import annotations

import numpy as np
import pytest

import _winograd_reference as ref_w
from _winograd_reference import F2, max_diff as _max_diff
from minivgg import ops
from minivgg.gradcheck import check_op
from minivgg.kernels import _parallel as threads
from minivgg.kernels import winograd as wk
from minivgg.ops import conv as conv_mod
from minivgg.ops.conv import winograd as wmod

RNG = np.random.default_rng(2015)

# (N, C, H, W, F): odd and even sizes, non-square, 1x1 images, batch 1, channels 1
CASES = ref_w.CONV_CASES


def _inputs(n, c, h, w, f, dtype=np.float64):
    return ref_w.conv_inputs(RNG, n, c, h, w, f, dtype)


@pytest.mark.parametrize("case", CASES)
def test_winograd_matches_im2col_and_naive_to_1e10(case):
    ref_w.check_agrees_with("winograd", case, ("im2col", "naive"), RNG)


def test_winograd_on_a_hand_computed_case():
    # all-ones 3x3 filter on a 1-channel 3x3 image of ones, pad 1: each output counts its in-bounds neighbours
    x = np.ones((1, 1, 3, 3))
    w = np.ones((1, 1, 3, 3))
    out, _ = ops.conv2d_forward(x, w, np.array([0.5]), algo="winograd")
    assert np.array_equal(out[0, 0], np.array([[4, 6, 4], [6, 9, 6], [4, 6, 4]]) + 0.5)


@pytest.mark.parametrize("case", CASES[:4])
def test_winograd_gradients_float64(case):
    report = ref_w.gradient_report("winograd", *_inputs(*case), name="conv2d[winograd]")
    assert report.passed, str(report)
    assert report.max_rel_error < 1e-7


def test_gradient_check_catches_a_wrong_winograd_backward(monkeypatch):
    # negative control: transpose the tile transform wrongly in dx and the checker must fail
    x, w, b = _inputs(2, 3, 5, 6, 2)
    good = wmod.winograd_backward

    def wrong(dout, x, w, stride, pad):
        dx, dw = good(dout, x, w, stride, pad)
        return dx[:, :, ::-1, :].copy(), dw  # rows flipped: the classic forgotten-rotation bug

    report = ref_w.gradient_report_with_backward(monkeypatch, "winograd", wmod.winograd_forward, wrong, x, w, b)
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
    # 3 * 9 * 7 = 189 tiles in blocks of MIN_BLOCK_TILES (32) under the tiny budgets
    ref_w.check_blocked_paths_match_im2col(monkeypatch, wmod, "winograd", nthreads, RNG)


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
    ref_w.check_matches_torch("winograd", *_inputs(2, 3, 9, 6, 5), RNG)


# ---------------------------------------------------------------- the transform kernels, tile by tile
# The kernels work on runs of tiles along a tile row (vectorised); the references (_winograd_reference)
# are the textbook per-tile matrix form with explicit zero padding, so a wrong run boundary, border or
# overhang shows.

def test_minimal_filtering_identity_on_random_tiles_and_a_perturbed_matrix_fails():
    # the F2 matrices the references use give direct correlation on a 4x4 tile (negative control inside)
    ref_w.check_minimal_filtering_identity(F2, RNG)


# (N, C, H, W) x tile ranges that start and end mid-row, span images, or cover everything
TRANSFORM_CASES = [((2, 3, 7, 9), None), ((2, 3, 7, 9), (3, 29)), ((1, 2, 1, 1), None), ((3, 1, 5, 2), (2, 7)),
                   ((1, 2, 8, 8), (5, 6)), ((2, 2, 2, 1), (1, 2))]


@pytest.mark.parametrize("shape,span", TRANSFORM_CASES)
def test_vectorised_transforms_match_the_per_tile_matrix_form(shape, span):
    ref_w.check_transforms_match_reference(F2, wk, shape, span, RNG)


@pytest.mark.parametrize("shape,span", TRANSFORM_CASES)
def test_adjoint_kernels_are_the_transposes(shape, span):
    ref_w.check_adjoints_are_transposes(F2, wk, shape, span, RNG)


def test_adjoint_check_catches_a_mirrored_adjoint():
    # negative control for test_adjoint_kernels_are_the_transposes
    ref_w.check_adjoint_check_catches_a_mirrored_adjoint(F2, wk, RNG.standard_normal((1, 2, 6, 7)), 10, RNG)


def test_transform_reference_catches_a_wrong_border():
    # negative control: a tile range shifted by one, and an input shifted by a column, must disagree
    ref_w.check_reference_catches_a_wrong_border(F2, wk, RNG.standard_normal((1, 2, 6, 7)), 10)


def test_float32_transforms_error_against_float64():
    # the transforms only add and subtract: fp32 error is a few roundings of the tile's values
    x = RNG.standard_normal((1, 4, 11, 10)).astype(np.float32)
    th, tw = wmod.tiles(11, 10)
    total = th * tw
    v = np.empty((16, 4, total), dtype=np.float32)
    wk.input_transform(x, 0, 4, 0, total, th, tw, v)
    ref = ref_w.reference_input_transform(F2, x.astype(np.float64), 0, total)
    rms = np.sqrt(np.mean(ref ** 2))
    assert v.dtype == np.float32
    assert _max_diff(v, ref) / rms < 1e-6
    m = RNG.standard_normal((16, 3, total)).astype(np.float32)
    b = RNG.standard_normal(3).astype(np.float32)
    out = np.empty((1, 3, 11, 10), dtype=np.float32)
    wk.output_transform(m, b, 0, 3, 0, total, th, tw, out)
    ref_out = ref_w.reference_output_transform(F2, m.astype(np.float64), b.astype(np.float64), 0, total, out.shape)
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
