"""The inference filter cache of Conv2d: reused while the weights are unchanged, rebuilt the moment they change."""

from __future__ import annotations

import numpy as np
import pytest

from minivgg import ops
from minivgg.kernels.compare import same_bits
from minivgg.layers import Conv2d, _bits
from minivgg.ops import conv as conv_mod

RNG = np.random.default_rng(14)


def _layer_and_input(dtype=np.float64):
    layer = Conv2d("conv", 16, 8, dtype=dtype, rng=RNG, algo="winograd")
    x = RNG.standard_normal((2, 16, 9, 10)).astype(dtype)
    return layer, x


def _reference(layer, x):
    w, b = layer.params["w"], layer.params["b"]
    return ops.conv2d_forward(x, w, b, algo="im2col")[0]


@pytest.fixture
def transforms(monkeypatch):
    """Count the calls of the Winograd filter transform."""
    calls = []
    real = conv_mod.FILTER_TRANSFORMS["winograd"]
    monkeypatch.setitem(conv_mod.FILTER_TRANSFORMS, "winograd", lambda w: calls.append(1) or real(w))
    return calls


def test_unchanged_weights_reuse_the_transform(transforms):
    layer, x = _layer_and_input()
    first = layer.forward(x)
    second = layer.forward(x)
    assert len(transforms) == 1
    assert np.array_equal(first, second)
    assert np.abs(first - _reference(layer, x)).max() < 1e-10


@pytest.mark.parametrize("change", ["in_place_element", "in_place_all", "new_array", "dtype_cast_back"])
def test_changing_a_weight_gives_the_new_output(change, transforms):
    layer, x = _layer_and_input()
    before = layer.forward(x)
    w = layer.params["w"]
    if change == "in_place_element":
        w[3, 5, 2, 1] += 0.25                         # one value, in place: the copy comparison sees it
    elif change == "in_place_all":
        w *= -1.0
    elif change == "new_array":
        layer.params["w"] = w + 1.0
    else:
        layer.params["w"] = np.nextafter(w, np.inf)  # every value moved by one ulp
    after = layer.forward(x)
    assert len(transforms) == 2
    assert not np.array_equal(before, after)
    assert np.abs(after - _reference(layer, x)).max() < 1e-10


def test_the_cache_is_not_fooled_by_a_change_and_change_back(transforms):
    # negative control for staleness: the output follows the weights whatever their history
    layer, x = _layer_and_input()
    a = layer.forward(x)
    layer.params["w"][0, 0, 0, 0] += 1.0
    b = layer.forward(x)
    layer.params["w"][0, 0, 0, 0] -= 1.0
    c = layer.forward(x)
    assert not np.array_equal(a, b)
    assert np.abs(c - _reference(layer, x)).max() < 1e-10


def test_a_stale_cache_would_be_caught(monkeypatch):
    # the test above can fail: with the comparison disabled, a changed weight gives the OLD output
    import minivgg.layers as layers_mod

    monkeypatch.setattr(layers_mod, "same_bits", lambda a, b: True)
    layer, x = _layer_and_input()
    before = layer.forward(x)
    layer.params["w"][3, 5, 2, 1] += 0.25
    assert np.array_equal(layer.forward(x), before)  # stale: this is what the real check prevents


def test_training_forwards_and_disabled_cache_transform_every_time(transforms):
    layer, x = _layer_and_input()
    layer.forward(x, train=True)
    layer.forward(x, train=True)
    assert len(transforms) == 2 and layer._filters is None
    layer.forward(x)
    assert layer._filters is not None
    layer.cache_filters = False
    assert layer._filters is None                    # turning it off frees U and the copy
    layer.forward(x)
    layer.forward(x)
    assert len(transforms) == 5 and layer._filters is None


def test_whole_model_load_params_takes_effect(tiny_vgg):
    from minivgg import VGG

    model = tiny_vgg(algo="winograd", dtype=np.float64)
    other = VGG(model.config, seed=99, algo="winograd", dtype=np.float64)
    x = RNG.standard_normal((2, model.in_channels, model.input_size, model.input_size))
    model.forward(x)                                 # fill the caches
    model.load_params(other.params)
    np.testing.assert_allclose(model.forward(x), other.forward(x), rtol=1e-12, atol=1e-12)


def test_winograd4_layers_cache_their_36_position_transform_too():
    layer = Conv2d("conv", 8, 4, dtype=np.float64, rng=RNG, algo="winograd4")
    x = RNG.standard_normal((1, 8, 9, 9))
    before = layer.forward(x)
    assert layer._filters[2].shape == (36, 4, 8)
    layer.params["w"][1, 2, 0, 0] -= 0.5
    after = layer.forward(x)
    assert not np.array_equal(before, after)
    assert np.abs(after - _reference(layer, x)).max() < 1e-10


def test_only_winograd_layers_cache_and_im2col_layers_keep_nothing():
    layer = Conv2d("conv", 3, 4, dtype=np.float32, rng=RNG, algo="im2col")
    layer.forward(RNG.standard_normal((1, 3, 8, 8)).astype(np.float32))
    assert layer._filters is None


def test_conv2d_forward_checks_the_filters_it_is_given():
    x = RNG.standard_normal((1, 4, 6, 6))
    w = RNG.standard_normal((5, 4, 3, 3))
    b = np.zeros(5)
    u = conv_mod.FILTER_TRANSFORMS["winograd"](w)
    out, _ = ops.conv2d_forward(x, w, b, algo="winograd", filters=u)
    assert np.abs(out - ops.conv2d_forward(x, w, b, algo="im2col")[0]).max() < 1e-10
    with pytest.raises(ValueError, match="only for"):
        ops.conv2d_forward(x, w, b, algo="im2col", filters=u)
    with pytest.raises(ValueError, match=r"C-contiguous \(16, 5, 4\) float64"):
        ops.conv2d_forward(x, w, b, algo="winograd", filters=u[:, :4])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_bits_finds_any_single_difference(dtype):
    a = RNG.standard_normal(10_001).astype(dtype)
    assert same_bits(_bits(a), _bits(a.copy()))
    for i in (0, 4095, 4096, 5000, 10_000):           # block edges and the tail
        b = a.copy()
        b[i] = np.nextafter(b[i], np.inf)
        assert not same_bits(_bits(a), _bits(b)), i
    nan = np.full(3, np.nan, dtype)
    assert same_bits(_bits(nan), _bits(nan.copy()))  # bits, not values: NaN equals its own copy
    assert not same_bits(_bits(np.zeros(3, dtype)), _bits(-np.zeros(3, dtype)))


# ----------------------------------------------------------------- the first layer skips its input gradient

@pytest.mark.parametrize("algo", ["im2col", "winograd", "naive"])
def test_need_dx_false_gives_the_same_weight_gradients_and_no_dx(algo):
    x = RNG.standard_normal((2, 3, 7, 6))
    w, b = RNG.standard_normal((4, 3, 3, 3)), RNG.standard_normal(4)
    out, cache = ops.conv2d_forward(x, w, b, algo=algo)
    dout = RNG.standard_normal(out.shape)
    dx, dw, db = ops.conv2d_backward(dout, cache)
    none, dw2, db2 = ops.conv2d_backward(dout, cache, need_dx=False)
    assert none is None and dx.shape == x.shape
    assert np.array_equal(dw, dw2) and np.array_equal(db, db2)


def test_model_loss_skips_only_the_input_gradient(tiny_vgg):
    model = tiny_vgg(dtype=np.float64, dropout=0.0)  # no dropout: both passes see the same network
    x = RNG.standard_normal((2, model.in_channels, model.input_size, model.input_size))
    y = np.array([0, 1])
    _, grads = model.loss(x, y)
    grads = {k: v.copy() for k, v in grads.items()}
    logits = model.forward(x, train=True)
    from minivgg.ops import softmax_cross_entropy

    _, dlogits = softmax_cross_entropy(logits, y)
    dx = model.backward(dlogits)                      # the full backward still returns the image gradient
    assert dx.shape == x.shape
    for k, g in model.grads.items():
        np.testing.assert_array_equal(g, grads[k], err_msg=k)
