"""The gradient checker's hints: kinks, ties, sampling, and a user's op that raises (issue 11, part A).

Each hint is checked with a negative control: a correct op at a kink is named
as such (and still FAILS), a wrong backward away from kinks gets no kink hint,
and a sampled check says so.
"""

from __future__ import annotations

import numpy as np
import pytest

from minivgg import ops
from minivgg.gradcheck import (GradCheckError, Kinks, activation_kinks, check_op, check_params, maxpool_ties,
                               relu_kinks)

H = 1e-5


def _away_from_kinks(rng, shape, margin=1e-2):
    x = rng.standard_normal(shape)
    x[np.abs(x) < margin] = 0.5
    return x


# ---------------------------------------------------------------- ReLU kinks
def test_a_correct_relu_with_an_input_within_h_of_zero_fails_and_names_that_coordinate(rng):
    x = _away_from_kinks(rng, (2, 3, 4, 4))
    x[1, 2, 0, 3] = 0.3 * H  # inside the centered difference's reach of the kink
    report = check_op(ops.relu_forward, ops.relu_backward, {"x": x}, name="relu")
    row = report["x"]
    assert not report.passed and not row.passed  # a hint, not an excuse
    assert row.kink_coords == ((1, 2, 0, 3),)
    text = str(report)
    assert "ReLU kink" in text and "(1, 2, 0, 3)" in text and "still FAILS" in text
    assert "not near a kink" not in text  # every failing coordinate is explained


def test_a_wrong_relu_backward_away_from_kinks_fails_with_no_kink_hint(rng):
    x = _away_from_kinks(rng, (2, 3, 4, 4))
    report = check_op(ops.relu_forward, lambda d, c: 2 * ops.relu_backward(d, c), {"x": x}, name="relu")
    assert not report.passed
    assert report["x"].kink_coords == () and "kink" not in str(report)
    assert "constant factor" in str(report)


def test_a_wrong_backward_with_one_input_at_a_kink_says_the_others_are_real_errors(rng):
    x = _away_from_kinks(rng, (3, 5))
    x[0, 0] = 0.1 * H
    report = check_op(ops.relu_forward, lambda d, c: -ops.relu_backward(d, c), {"x": x}, name="relu")
    row = report["x"]
    assert not row.passed and (0, 0) in row.kink_coords
    assert "a real error" in row.hint


def test_the_correct_relu_away_from_kinks_passes_without_hints(rng):  # control of the three above
    report = check_op(ops.relu_forward, ops.relu_backward, {"x": _away_from_kinks(rng, (2, 3, 4, 4))}, name="relu")
    assert report.passed and "kink" not in str(report)


def test_kink_hints_can_be_turned_off_and_the_verdict_does_not_change(rng):
    x = _away_from_kinks(rng, (4, 4))
    x[2, 1] = 0.0
    on = check_op(ops.relu_forward, ops.relu_backward, {"x": x}, name="relu")
    off = check_op(ops.relu_forward, ops.relu_backward, {"x": x}, name="relu", kinks=None)
    assert on.passed == off.passed is False
    assert on["x"].rel_error == off["x"].rel_error
    assert off["x"].kink_coords == () and "kink" not in str(off)


def test_an_unnamed_op_gets_its_kink_finder_by_argument(rng):
    x = _away_from_kinks(rng, (6,))
    x[4] = 0.2 * H
    auto = check_op(lambda x: ops.relu_forward(x), ops.relu_backward, {"x": x})  # named "op": no auto finder
    assert auto["x"].kink_coords == ()
    named = check_op(lambda x: ops.relu_forward(x), ops.relu_backward, {"x": x}, kinks="relu")
    assert named["x"].kink_coords == ((4,),)


def test_a_custom_kink_finder_is_a_callable_of_inputs_h_and_cache(rng):
    x = _away_from_kinks(rng, (5,))
    x[1] = 0.0
    seen = {}

    def finder(inputs, h, cache):
        seen.update(h=h, cache=cache, keys=list(inputs))
        return Kinks("custom kink", {"x": np.abs(inputs["x"]) < h})

    report = check_op(ops.relu_forward, ops.relu_backward, {"x": x}, kinks=finder)
    assert seen["h"] == H and seen["keys"] == ["x"] and seen["cache"] is not None
    assert "custom kink: (1,)" in str(report)


def test_a_kink_finder_with_a_wrong_mask_is_refused_naming_it(rng):
    def finder(inputs, h, cache):
        return Kinks("custom", {"x": np.zeros(2, bool)})

    with pytest.raises(ValueError, match=r"kink finder's mask for 'x' has shape \(2,\)"):
        check_op(ops.relu_forward, ops.relu_backward, {"x": rng.standard_normal(5)}, kinks=finder)


@pytest.mark.parametrize("bad", ["reLU", 3])
def test_a_bad_kinks_argument_is_refused_naming_the_choices(bad, rng):
    with pytest.raises((ValueError, TypeError), match="kinks must be 'auto', 'relu', 'maxpool'"):
        check_op(ops.relu_forward, ops.relu_backward, {"x": rng.standard_normal(3)}, kinks=bad)


# ---------------------------------------------------------------- max-pool ties
def test_a_correct_maxpool_on_tied_values_fails_and_names_the_tied_coordinates():
    x = np.zeros((1, 1, 4, 4))
    report = check_op(lambda x: ops.maxpool_forward(x, 2, 2), ops.maxpool_backward, {"x": x}, name="maxpool")
    row = report["x"]
    assert not row.passed and row.kink_coords  # still a failure
    assert "max-pool tie" in row.hint and row.worst_index in row.kink_coords
    assert "not near a kink" not in row.hint  # all-zero input: every failure is a tie


def test_a_maxpool_with_one_near_tie_names_exactly_that_window(rng):
    x = rng.permutation(16).reshape(1, 1, 4, 4).astype(np.float64)  # distinct: no ties
    x[0, 0, 2, 3] = x[0, 0, 2:, 2:].max() + 0.4 * H  # window (1, 1) now has two entries within 2h
    report = check_op(lambda x: ops.maxpool_forward(x, 2, 2), ops.maxpool_backward, {"x": x}, name="maxpool")
    assert not report.passed
    tied = set(report["x"].kink_coords)
    assert tied and tied <= {(0, 0, 2, 2), (0, 0, 2, 3), (0, 0, 3, 2), (0, 0, 3, 3)}


def test_maxpool_ties_reads_size_and_stride_from_the_cache():
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    x[0, 0, 2, 2] = x[0, 0, 2, 1] = 30.0  # a tie in the first 3x3 window of a 3x3/s2 pool
    report = check_op(lambda x: ops.maxpool_forward(x, 3, 2), ops.maxpool_backward, {"x": x}, name="maxpool")
    assert {(0, 0, 2, 1), (0, 0, 2, 2)} <= set(report["x"].kink_coords)


def test_maxpool_ties_and_relu_kinks_masks_and_their_controls():
    x = np.array([[[[1.0, 1.0 + H / 2, 5.0, 0.0], [0.0, 0.0, 1.0, 2.0]]]])  # window 1 tied, window 2 not
    mask = maxpool_ties(x, H)
    assert mask[0, 0, 0, 0] and mask[0, 0, 0, 1] and not mask[0, 0, 1, 0]  # only the two near the max
    assert not mask[..., 2:].any()
    assert maxpool_ties(x, H, size=2, stride=2).shape == x.shape
    dead = np.zeros((1, 1, 2, 2))  # an all-zero window behind a ReLU: tied, but a dead unit
    assert maxpool_ties(dead, H).all() and not maxpool_ties(dead, H, live_only=True).any()
    np.testing.assert_array_equal(relu_kinks(np.array([0.0, H / 2, -H / 2, 2 * H, -1.0]), H),
                                  [True, True, True, False, False])
    with pytest.raises(ValueError, match=r"maxpool_ties: x must be \(N, C, H, W\)"):
        maxpool_ties(np.zeros(4), H)


# ---------------------------------------------------------------- sampling
def test_a_wrong_single_element_in_a_big_tensor_can_pass_a_sampled_check_and_the_report_says_sampled(rng):
    x = rng.standard_normal((30, 40))  # 1200 coordinates, 200 checked

    def backward(dout, cache):
        g = 2 * dout
        g[13, 17] += 1.0  # one wrong element
        return g

    sampled = check_op(lambda x: 2 * x, backward, {"x": x}, name="scale", max_coords=200)
    row = sampled["x"]
    assert row.sampled and (row.checked, row.total) == (200, 1200)
    assert "sampled: x 200/1200" in str(sampled) and "max_coords=1200" in str(sampled)
    full = check_op(lambda x: 2 * x, backward, {"x": x}, name="scale", max_coords=1200)
    assert not full.passed and full["x"].worst_index == (13, 17)  # checking all catches it
    assert "sampled" not in str(full)  # control: a complete check does not claim to be sampled


# ---------------------------------------------------------------- a user's op that raises
def test_a_backward_that_raises_gives_one_clear_error_naming_the_op_and_the_line(rng):
    def my_backward(dout, cache):
        return dout[None][3]  # IndexError

    with pytest.raises(GradCheckError, match=r"check_op\(affine\): backward raised IndexError: .* in my_backward"):
        check_op(lambda x: 2 * x, my_backward, {"x": rng.standard_normal(4)}, name="affine")


def test_a_forward_that_raises_names_forward(rng):
    def my_forward(x):
        raise ZeroDivisionError("division by zero")

    with pytest.raises(GradCheckError, match=r"check_op\(my_forward\): forward raised ZeroDivisionError"):
        check_op(my_forward, lambda d, c: d, {"x": rng.standard_normal(4)})


def test_the_checkers_own_errors_are_not_wrapped(rng):  # control: bad arguments stay ValueError/TypeError
    with pytest.raises(TypeError, match="float64"):
        check_op(lambda x: 2 * x, lambda d, c: 2 * d, {"x": rng.standard_normal(4).astype(np.float32)})
    with pytest.raises(ValueError, match="backward returned 2 gradients"):
        check_op(lambda x: 2 * x, lambda d, c: (d, d), {"x": rng.standard_normal(4)})


def test_a_loss_fn_that_raises_in_check_params_names_loss_fn():
    p = {"w": np.ones(3)}
    with pytest.raises(GradCheckError, match=r"check_params: loss_fn raised KeyError"):
        check_params(lambda: {}["missing"], p, {"w": np.zeros(3)})


# ---------------------------------------------------------------- whole-model checks
def test_a_whole_model_check_names_the_layers_whose_inputs_sit_at_a_kink(tiny_vgg, rng):
    model = tiny_vgg(dropout=0.0)
    x = rng.standard_normal((1, 3, 32, 32))
    sentence = activation_kinks(model.layers, x, h=10.0)  # a huge margin: every ReLU has inputs "near" 0
    assert sentence is not None and "relu1_1" in sentence and "still FAILS" in sentence
    assert activation_kinks(model.layers, x, h=1e-300) is None  # control: nothing that close


def test_check_params_adds_the_kink_sentence_to_failing_rows_only(tiny_vgg, rng):
    params = {"w": rng.standard_normal(4)}

    def loss():
        return float(np.sum(params["w"] ** 2))

    wrong = check_params(loss, params, {"w": 3 * params["w"]}, kinks=lambda h: "relu9 sits at a kink")
    assert not wrong.passed and "relu9 sits at a kink" in wrong["w"].hint
    right = check_params(loss, params, {"w": 2 * params["w"]}, kinks=lambda h: "relu9 sits at a kink")
    assert right.passed and "relu9" not in str(right)
