"""Winograd F(4x4, 3x3): the matrices from Toom-Cook, agreement with im2col, gradients, blocking, threads, fp32 error.

The matrices, the per-tile reference transforms and the checks shared with F(2x2, 3x3) live in
``_winograd_reference.py`` (scheme :data:`~_winograd_reference.F4` here).
"""

from __future__ import annotations

import numpy as np
import pytest

import _winograd_reference as ref_w
from _winograd_reference import F4, max_diff as _max_diff
from minivgg import ops
from minivgg.bench import conv_algos
from minivgg.configs import layer_specs
from minivgg.kernels import _parallel as threads
from minivgg.kernels import winograd4 as wk
from minivgg.ops import conv as conv_mod
from minivgg.ops.conv import winograd4 as wmod

RNG = np.random.default_rng(2016)

# (N, C, H, W, F): H, W = 1 .. 4k+3 (every overhang of the last 4x4 tile), non-square, batch 1, channels 1, 1x1
CASES = ref_w.CONV_CASES + [(1, 3, 12, 11, 2)]

# ---------------------------------------------------------------- the matrices, as the kernel docstring prints them
B_T, G, A_T = F4.B_T, F4.G, F4.A_T
POINTS = (0, 1, -1, 2, -2)  # and infinity


def _toom_cook(points):
    """``(A^T, G, B^T)`` of F(m, 3) built from the points: correlation is the transpose of Toom-Cook convolution.

    Linear convolution ``s = h * g`` (h of length m, g of length 3) evaluates both polynomials at the
    points, multiplies, and interpolates: ``s = V^-1 [(E_m h) . (E_3 g)]`` with ``E_k`` the k-column
    evaluation matrices (infinity's row picks the leading coefficient) and ``V = E_{m+2}``. The
    correlation ``y = T_g^T d`` is its transpose: ``A^T = E_m^T``, ``G = E_3``, ``B^T = V^-T``.
    """
    n = len(points) + 1

    def evaluation(k):
        rows = [[float(a) ** i for i in range(k)] for a in points]
        return np.array(rows + [[0.0] * (k - 1) + [1.0]])

    m = n - 2
    return evaluation(m).T, evaluation(3), np.linalg.inv(evaluation(n)).T


def _kernel_matrix(fn, n_in):
    """The matrix of one of the kernel's 1-D maps, column by column from unit vectors."""
    return np.array([fn(*np.eye(n_in)[j]) for j in range(n_in)]).T


def test_lavin_gray_matrices_are_the_toom_cook_ones_up_to_a_row_scaling():
    a_t, g, b_t = _toom_cook(POINTS)
    assert np.allclose(A_T, a_t, atol=1e-15, rtol=0)
    scale = np.array([G[k][np.flatnonzero(g[k])[0]] / g[k][np.flatnonzero(g[k])[0]] for k in range(6)])
    assert np.allclose(G, scale[:, None] * g, atol=1e-15, rtol=0)        # row k of G times s_k ...
    assert np.allclose(B_T, b_t / scale[:, None], atol=1e-13, rtol=0)    # ... row k of B^T times 1/s_k
    # the kernel's 1-D maps are exactly these matrices and their transposes
    for fn, n_in, ref in ((wk._bt, 6, B_T), (wk._b, 6, B_T.T), (wk._at, 6, A_T), (wk._a, 4, A_T.T),
                          (wk._g, 3, G), (wk._gt, 6, G.T)):
        assert np.allclose(_kernel_matrix(fn, n_in), ref, atol=1e-15, rtol=0), fn.__name__


def test_minimal_filtering_identity_on_random_tiles_and_a_perturbed_matrix_fails():
    ref_w.check_minimal_filtering_identity(F4, RNG)


# ---------------------------------------------------------------- the whole convolution

def _inputs(n, c, h, w, f, dtype=np.float64):
    return ref_w.conv_inputs(RNG, n, c, h, w, f, dtype)


@pytest.mark.parametrize("case", CASES)
def test_winograd4_matches_im2col_to_1e10(case):
    cache4 = ref_w.check_agrees_with("winograd4", case, ("im2col",), RNG)
    assert cache4.algo == "winograd4"


@pytest.mark.parametrize("case", CASES[:4] + CASES[6:])
def test_winograd4_gradients_float64(case):
    report = ref_w.gradient_report("winograd4", *_inputs(*case), name="conv2d[winograd4]")
    assert report.passed, str(report)
    assert report.max_rel_error < 1e-7


def test_gradient_check_catches_a_wrong_winograd4_backward(monkeypatch):
    # negative control: dw computed with the filter transform's adjoint mirrored must fail the check
    x, w, b = _inputs(2, 3, 5, 6, 2)
    good = wmod.winograd4_backward

    def wrong(dout, x, w, stride, pad):
        dx, dw = good(dout, x, w, stride, pad)
        return dx, dw[:, :, :, ::-1].copy()

    report = ref_w.gradient_report_with_backward(monkeypatch, "winograd4", wmod.winograd4_forward, wrong, x, w, b)
    assert not report.passed
    assert report["w"].rel_error > 1e-3 and report["x"].rel_error < 1e-7


def test_agreement_check_catches_a_wrong_filter_transform(monkeypatch):
    # negative control for the 1e-10 comparison: one Winograd position of U with the wrong sign
    x, w, b = _inputs(1, 2, 8, 8, 3)
    reference, _ = ops.conv2d_forward(x, w, b, algo="im2col")
    good = wmod.transform_filters

    def bad_transform(w):
        u = good(w)
        u[14] = -u[14]
        return u

    monkeypatch.setattr(wmod, "transform_filters", bad_transform)
    out, _ = ops.conv2d_forward(x, w, b, algo="winograd4")
    assert _max_diff(out, reference) > 1e-3


@pytest.mark.parametrize("nthreads", [1, 2])
def test_blocked_and_pipelined_paths_match_im2col(monkeypatch, nthreads):
    # 3 * 5 * 4 = 60 tiles; MIN_BLOCK_TILES = 3 makes the tiny budgets give many 3-tile blocks
    monkeypatch.setattr(wmod, "MIN_BLOCK_TILES", 3)
    assert wmod.block_tiles(5, 4, 8, 1, 60) == 3
    ref_w.check_blocked_paths_match_im2col(monkeypatch, wmod, "winograd4", nthreads, RNG)


@pytest.mark.parametrize("pipeline_bytes", [2**40, 1])
def test_one_and_two_threads_give_identical_float32_results(monkeypatch, pipeline_bytes):
    # 2**40: both runs take the phase-parallel loop; 1: the 2-thread run takes the per-thread pipeline
    # with 32-tile blocks while the 1-thread run does one big block. The transforms are exact per element
    # whatever the split, and the 36 GEMMs are split over the stack or over columns, never over the
    # summation: the same products summed in the same order, hence bit-identical.
    if threads.available_cores() < 2:
        pytest.skip("needs 2 cores")
    monkeypatch.setattr(wmod, "PIPELINE_BLOCK_BYTES", pipeline_bytes)
    x, w, b = _inputs(2, 16, 41, 38, 8, np.float32)           # 2 * 11 * 10 = 220 tiles
    results = []
    for n in (1, 2):
        with threads.limit_threads(n):
            out, cache = ops.conv2d_forward(x, w, b, algo="winograd4")
            results.append((out, *ops.conv2d_backward(np.ones_like(out), cache)))
    for a, c in zip(*results):
        assert a.dtype == np.float32 and c.dtype == np.float32
        np.testing.assert_array_equal(a, c)


def test_float32_in_float32_out_and_error_within_ten_times_direct():
    x, w, b = _inputs(1, 32, 24, 24, 32, np.float32)
    w *= np.float32(np.sqrt(2 / 288))
    ref, ref_cache = ops.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                                        algo="im2col")
    out, cache = ops.conv2d_forward(x, w, b, algo="winograd4")
    grads = ops.conv2d_backward(np.ones_like(out), cache)
    assert out.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    assert conv_mod.workspace_bytes(x.shape, w.shape, 1, 1, 4, algo="winograd4") == \
        wmod.forward_workspace_bytes(x.shape, w.shape, 4) > 36 * 32 * 32 * 4      # U and more
    err = conv_algos._relative_errors(out, ref)
    assert 0 < err["rms_rel"] < 1e-5


def test_winograd4_refuses_other_kernels_strides_and_pads():
    x, w, b = _inputs(1, 2, 6, 6, 2)
    with pytest.raises(ValueError, match="winograd4: F\\(4x4, 3x3\\) needs a 3x3 kernel with stride 1 and pad 1"):
        ops.conv2d_forward(x, w, b, stride=2, algo="winograd4")
    with pytest.raises(ValueError, match="stride 1, pad 0"):
        ops.conv2d_forward(x, w, b, pad=0, algo="winograd4")
    with pytest.raises(ValueError, match="got kernel 5x5"):
        ops.conv2d_forward(x, RNG.standard_normal((2, 2, 5, 5)), b, pad=1, algo="winograd4")
    with pytest.raises(ValueError, match="got kernel 1x1"):
        ops.conv2d_forward(x, RNG.standard_normal((2, 2, 1, 1)), b, pad=1, algo="winograd4")


def test_winograd4_is_a_named_algorithm():
    # "auto" is the lead's to decide from measurements; here only that the name resolves and is listed
    assert conv_mod.choose_algorithm((1, 4, 8, 8), (4, 4, 3, 3), 1, 1, "winograd4") == "winograd4"
    assert conv_mod.ALGORITHMS["winograd4"] == (wmod.winograd4_forward, wmod.winograd4_backward)
    with pytest.raises(ValueError, match="'winograd4'"):
        conv_mod.choose_algorithm((1, 4, 8, 8), (4, 4, 3, 3), 1, 1, "winograd8")


@pytest.mark.torch
def test_winograd4_matches_torch_float64():
    ref_w.check_matches_torch("winograd4", *_inputs(2, 3, 10, 7, 5), RNG)


# ---------------------------------------------------------------- the transform kernels, tile by tile
# The kernels work on runs of tiles along a tile row; the references (_winograd_reference) are the
# textbook per-tile matrix form with explicit zero padding, so a wrong run boundary, border or overhang shows.

# (N, C, H, W) x tile ranges that start and end mid-row, span images, or cover everything
TRANSFORM_CASES = [((2, 3, 7, 9), None), ((2, 3, 7, 9), (2, 11)), ((1, 2, 1, 1), None), ((3, 1, 5, 2), (1, 5)),
                   ((1, 2, 12, 16), (5, 6)), ((2, 2, 4, 5), (1, 3))]


@pytest.mark.parametrize("shape,span", TRANSFORM_CASES)
def test_run_wise_transforms_match_the_per_tile_matrix_form(shape, span):
    ref_w.check_transforms_match_reference(F4, wk, shape, span, RNG)


@pytest.mark.parametrize("shape,span", TRANSFORM_CASES)
def test_adjoint_kernels_are_the_transposes(shape, span):
    # <T a, c> == <a, T^T c> for each forward transform T and its adjoint, on random a and c
    ref_w.check_adjoints_are_transposes(F4, wk, shape, span, RNG)


def test_transform_references_catch_a_wrong_border_and_a_wrong_adjoint():
    # negative controls: a tile range shifted by one, an input shifted by a column, a mirrored adjoint
    x = RNG.standard_normal((1, 2, 10, 11))
    ref_w.check_reference_catches_a_wrong_border(F4, wk, x, 8)
    ref_w.check_adjoint_check_catches_a_mirrored_adjoint(F4, wk, x, 8, RNG)


# ---------------------------------------------------------------- the fp32 error table (Lavin & Gray Table 4)

SMALL_SPECS = layer_specs("vgg11", input_size=32, width=0.125, fc_width=16, num_classes=10)


def test_error_table_structure_and_f4_within_bounds():
    rows = conv_algos.winograd_error_table(SMALL_SPECS, max_hw=16)
    convs = [s for s in SMALL_SPECS if s.kind == "conv"]
    assert ",".join(r["layers"] for r in rows) == ",".join(s.name for s in convs)   # each shape once, in order
    for r in rows:
        assert r["x_shape"][0] == 1 and max(r["x_shape"][2:]) <= 16
        assert set(r["errors"]) == {"im2col", "winograd", "winograd4"}
        for algo, e in r["errors"].items():
            for part in ("out", "dx", "dw"):
                rms, mx = e[part]["rms_rel"], e[part]["max_rel"]
                assert np.isfinite(mx) and 0 < rms <= mx, (r["layers"], algo, part)
                assert mx < 1e-4                                   # F4 included: fp32 round-off, not a bug
        # the yardstick is direct convolution's own fp32 round-off
        assert all(r["errors"]["im2col"][p]["rms_rel"] < 1e-6 for p in ("out", "dx", "dw"))
    assert conv_algos.conv_accuracy((1, 4, 9, 9), (4, 4, 3, 3)).keys() >= {"im2col", "winograd", "winograd4"}


def test_error_table_catches_a_perturbed_algorithm(monkeypatch):
    # negative control: an F4 whose output is off by 1e-3 relative must show far above the bound
    good_fwd, good_bwd = conv_mod.ALGORITHMS["winograd4"]

    def perturbed(x, w, b, stride, pad, u=None):
        out = good_fwd(x, w, b, stride, pad, u)
        return out * out.dtype.type(1 + 1e-3)

    monkeypatch.setitem(conv_mod.ALGORITHMS, "winograd4", (perturbed, good_bwd))
    rows = conv_algos.winograd_error_table(SMALL_SPECS[:1], max_hw=8)
    assert rows[0]["errors"]["winograd4"]["out"]["max_rel"] > 1e-4
    assert rows[0]["errors"]["winograd4"]["dx"]["max_rel"] < 1e-4      # only the forward was broken
