"""The measured algorithm choice (algo="tune"): picks the fastest by the given clock, measures each shape once."""

from __future__ import annotations

import numpy as np
import pytest

from minivgg import ops
from minivgg.layers import TUNER, Conv2d
from minivgg.ops.conv import tune

RNG = np.random.default_rng(91)


def test_candidates_are_the_fast_algorithms_that_apply():
    assert "naive" not in tune.candidates((8, 4, 3, 3), 1, 1)
    assert {"im2col", "winograd"} <= set(tune.candidates((8, 4, 3, 3), 1, 1))
    assert tune.candidates((8, 4, 5, 5), 1, 2) == ["im2col"]      # Winograd is 3x3/s1/p1 only


def test_time_algorithms_uses_the_clock_it_is_given():
    ticks = iter(range(1000))
    times = tune.time_algorithms((1, 2, 5, 5), (3, 2, 3, 3), 1, 1, np.float64, repeats=2,
                                 clock=lambda: next(ticks))
    assert set(times) == set(tune.candidates((3, 2, 3, 3), 1, 1)) and all(t == 1 for t in times.values())


def test_tuner_keeps_the_fastest_and_measures_each_case_once():
    calls = []

    def fake(x_shape, w_shape, stride, pad, dtype, train, repeats):
        calls.append((x_shape, train))
        return {"im2col": 2.0, "winograd": 1.0} if x_shape[2] > 4 else {"im2col": 1.0, "winograd": 3.0}

    tuner = tune.Tuner(measure=fake)
    assert tuner.choose((1, 8, 16, 16), (8, 8, 3, 3), 1, 1, np.float32) == "winograd"
    assert tuner.choose((1, 8, 16, 16), (8, 8, 3, 3), 1, 1, np.float32) == "winograd"
    assert tuner.choose((1, 8, 4, 4), (8, 8, 3, 3), 1, 1, np.float32) == "im2col"
    assert tuner.choose((1, 8, 16, 16), (8, 8, 3, 3), 1, 1, np.float32, train=True) == "winograd"
    assert calls == [((1, 8, 16, 16), False), ((1, 8, 4, 4), False), ((1, 8, 16, 16), True)]
    tuner.clear()
    tuner.choose((1, 8, 16, 16), (8, 8, 3, 3), 1, 1, np.float32)
    assert len(calls) == 4


def test_tuned_layer_runs_the_chosen_algorithm_and_matches_the_reference(monkeypatch):
    monkeypatch.setattr(TUNER, "measure", lambda *a, **k: {"im2col": 5.0, "winograd": 1.0})
    TUNER.clear()
    layer = Conv2d("c", 3, 4, dtype=np.float64, rng=RNG, algo="tune")
    x = RNG.standard_normal((2, 3, 6, 7))
    out = layer.forward(x, train=True)
    assert layer._cache.algo == "winograd"        # the backward follows the choice
    ref = ops.conv2d_forward(x, layer.params["w"], layer.params["b"], algo="im2col")[0]
    assert np.abs(out - ref).max() < 1e-10
    layer.backward(np.ones_like(out))
    TUNER.clear()


def test_a_tuned_model_gives_the_same_logits_as_auto(tiny_vgg):
    TUNER.clear()
    x = RNG.standard_normal((2, 3, 32, 32))
    tuned = tiny_vgg(algo="tune", dtype=np.float64)
    auto = tiny_vgg(dtype=np.float64)
    np.testing.assert_allclose(tuned.forward(x), auto.forward(x), rtol=1e-9, atol=1e-9)
    assert TUNER.table                              # something was measured
    TUNER.clear()


def test_tune_is_a_layer_setting_not_an_op_algorithm():
    x, w, b = RNG.standard_normal((1, 2, 4, 4)), RNG.standard_normal((2, 2, 3, 3)), np.zeros(2)
    with pytest.raises(ValueError, match="unknown convolution algorithm 'tune'"):
        ops.conv2d_forward(x, w, b, algo="tune")
