"""The VGG model: published parameter counts, whole-model gradient check, caches, bad input."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from minivgg import VGG, vgg11, vgg13, vgg16, vgg19
from minivgg.configs import layer_specs
from minivgg.gradcheck import check_params, numerical_gradient, rel_error
from minivgg.layers import Conv2d, ReLU
from minivgg.ops import softmax_cross_entropy
from minivgg.analysis.selfcheck import kink_free_input

RNG = np.random.default_rng(7)


@pytest.fixture
def tiny(tiny_vgg):
    """This module's tiny VGG-11: 1/32 width, 8-wide fc, 5 classes, no dropout (overridable)."""
    return lambda **kw: tiny_vgg(**{"num_classes": 5, "width": 1 / 32, "fc_width": 8, "dropout": 0.0, "seed": 1, **kw})


# Published by torchvision (models/vgg.py weight metadata, "num_params") and the paper's Table 2.
@pytest.mark.parametrize("build, expected", [
    (vgg11, 132_863_336), (vgg13, 133_047_848), (vgg16, 138_357_544), (vgg19, 143_667_240),
])
def test_parameter_counts_of_the_built_models_match_torchvision(build, expected):
    model = build()
    assert sum(a.size for a in model.params.values()) == expected
    assert model.num_params == expected
    del model
    gc.collect()


def test_vgg16_parameter_names_follow_the_lecture(tiny):
    names = list(layer_specs("vgg16"))
    model = tiny(config="vgg16")
    keys = list(model.params)
    assert keys[:4] == ["conv1_1.w", "conv1_1.b", "conv1_2.w", "conv1_2.b"]
    assert keys[-6:] == ["fc6.w", "fc6.b", "fc7.w", "fc7.b", "fc8.w", "fc8.b"]
    assert "conv5_3.w" in keys and "conv5_4.w" not in keys and len(keys) == 2 * 16
    assert len(names) == 39


def test_config_c_has_its_1x1_convs(tiny):
    model = tiny(config="vgg16c")
    assert model.params["conv3_3.w"].shape[2:] == (1, 1)
    assert model.params["conv5_2.w"].shape[2:] == (3, 3)


def test_whole_tiny_vgg_gradient_check_all_parameters_float64(tiny):
    model = tiny()
    x, y = kink_free_input(model, (2, 3, 32, 32)), np.array([0, 3])
    loss, grads = model.loss(x, y)
    report = check_params(lambda: model.loss(x, y)[0], model.params, grads, max_coords=20)
    assert [row.name for row in report.rows] == list(model.params)  # every parameter checked
    assert report.passed, str(report)
    # and the gradient with respect to the image, on sampled pixels
    _, dlogits = softmax_cross_entropy(model.forward(x, train=True), y)
    dx = model.backward(dlogits)
    # A fixed sample of pixels, not the per-test generator: on some samples a pixel whose gradient is
    # ~1e-5 meets the ~2e-11 round-off of the centred difference and the elementwise rel_error reaches
    # 3-4e-7 (2 of 12 seeds tried), a property of the check, not of the backward. Seed 7 is the sample
    # this test has always used (error 2.6e-8).
    pixels = np.random.default_rng(7)
    idx = [tuple(int(pixels.integers(0, s)) for s in x.shape) for _ in range(15)]
    num = numerical_gradient(lambda z: model.loss(z, y)[0], x, index=idx)
    rows = tuple(np.array(idx).T)
    assert rel_error(dx[rows], num[rows]) < 1e-7


def test_whole_model_check_catches_a_broken_layer(tiny):
    # negative control: a conv whose weight gradient is off by 2% must be caught by name
    model = tiny()
    layer = model.layers["conv3_1"]
    original = layer.backward

    def broken(dout):
        dx = original(dout)
        layer.grads["w"] = layer.grads["w"] * 1.02
        return dx

    layer.backward = broken
    x, y = kink_free_input(model, (2, 3, 32, 32)), np.array([1, 2])
    loss, grads = model.loss(x, y)
    report = check_params(lambda: model.loss(x, y)[0], model.params, grads, max_coords=20)
    assert not report.passed
    assert [row.name for row in report.rows if not row.passed] == ["conv3_1.w"]


def test_inference_keeps_no_caches_and_training_shares_activations(tiny):
    model = tiny()
    x = RNG.standard_normal((1, 3, 32, 32))
    model.forward(x, train=False)
    assert all(layer._cache is None for layer in model.layers)
    model.forward(x, train=True)
    assert all(layer._cache is not None for layer in model.layers if not layer.name.startswith("drop"))
    relu, conv = model.layers["relu3_1"], model.layers["conv3_2"]
    assert conv._cache.x is relu._cache.out  # one array, kept once
    assert model.layers["pool1"]._cache.argmax.dtype == np.uint8
    model.backward(np.ones((1, 5)))
    assert all(layer._cache is None for layer in model.layers)  # backward releases what it used


def test_backward_without_training_forward_is_a_clear_error(tiny):
    model = tiny()
    model.forward(RNG.standard_normal((1, 3, 32, 32)))
    with pytest.raises(RuntimeError, match="fc8: backward.*train=True"):
        model.backward(np.ones((1, 5)))


def test_seed_makes_models_reproducible_and_init_scales_are_right(tiny):
    a, b, c = tiny(seed=3), tiny(seed=3), tiny(seed=4)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert not np.array_equal(a.params["conv1_1.w"], c.params["conv1_1.w"])
    big = VGG("vgg11", num_classes=10, input_size=32, width=1.0, fc_width=64, init="paper")
    assert abs(big.params["conv4_1.w"].std() - 0.01) < 0.0005
    he = VGG("vgg11", num_classes=10, input_size=32, width=1.0, fc_width=64, init="he")
    fan_in = 256 * 9
    assert abs(he.params["conv4_1.w"].std() / np.sqrt(2 / fan_in) - 1) < 0.02
    assert np.all(he.params["conv4_1.b"] == 0)


def test_dropout_is_active_only_in_training(tiny):
    model = tiny(dropout=0.5, fc_width=64)
    x = RNG.standard_normal((2, 3, 32, 32))
    assert np.array_equal(model.forward(x), model.forward(x))
    assert not np.array_equal(model.forward(x, train=True), model.forward(x, train=True))


def test_predict_proba_features_shapes(tiny):
    model = tiny(config="vgg16", dtype=np.float32)
    x = RNG.standard_normal((5, 3, 32, 32)).astype(np.float32)
    proba = model.predict_proba(x, batch_size=2)
    assert proba.shape == (5, 5) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert np.array_equal(model.predict(x, batch_size=3), proba.argmax(1))
    assert model.features(x).shape == (5, 8)  # relu7: fc7 after its ReLU
    assert model.features(x, "conv5_3").shape == (5, 16, 2, 2)
    assert np.all(model.features(x) >= 0)
    with pytest.raises(KeyError, match="fc9"):
        model.features(x, "fc9")


def test_float32_model_stays_float32(tiny):
    model = tiny(dtype=np.float32)
    x = RNG.standard_normal((2, 3, 32, 32)).astype(np.float32)
    logits = model.forward(x, train=True)
    assert logits.dtype == np.float32
    model.backward(np.ones_like(logits))
    assert all(g.dtype == np.float32 for g in model.grads.values())


def test_load_params_is_all_or_nothing(tiny):
    model, donor = tiny(), tiny(seed=9)
    before = {k: v.copy() for k, v in model.params.items()}
    bad = dict(donor.params)
    bad["fc8.w"] = np.zeros((8, 6))
    with pytest.raises(ValueError, match=r"fc8.w must have shape \(8, 5\), got \(8, 6\)"):
        model.load_params(bad)
    assert all(np.array_equal(before[k], model.params[k]) for k in before)  # nothing was half-written
    with pytest.raises(ValueError, match="missing parameters"):
        model.load_params({"fc8.b": np.zeros(5)})
    with pytest.raises(ValueError, match="unknown parameter names.*conv9_9.w"):
        model.load_params({**donor.params, "conv9_9.w": np.zeros(1)})
    nan = dict(donor.params)
    nan["conv1_1.b"] = np.full(2, np.nan)
    with pytest.raises(ValueError, match="conv1_1.b contains NaN"):
        model.load_params(nan)
    live = model.params["conv1_1.w"]
    model.load_params(donor.params)
    assert model.params["conv1_1.w"] is live  # loaded in place
    assert all(np.array_equal(donor.params[k], model.params[k]) for k in before)


@pytest.mark.parametrize("x, exc, words", [
    (np.zeros((3, 32, 32)), ValueError, ["(N, 3, 32, 32)", "(3, 32, 32)"]),
    (np.zeros((1, 1, 32, 32)), ValueError, ["(N, 3, 32, 32)", "(1, 1, 32, 32)"]),
    (np.zeros((1, 3, 64, 64)), ValueError, ["input_size=32", "(1, 3, 64, 64)"]),
    (np.zeros((1, 3, 32, 32), dtype=np.uint8), TypeError, ["float64", "uint8"]),
    (np.zeros((1, 3, 32, 32), dtype=np.complex128), TypeError, ["float64", "complex128"]),
    (np.zeros((1, 3, 32, 32), dtype=np.float32), TypeError, ["float64", "float32"]),
    ([[1.0]], TypeError, ["numpy.ndarray", "list"]),
])
def test_model_rejects_bad_input_with_a_clear_message(tiny, x, exc, words):
    with pytest.raises(exc) as info:
        tiny().forward(x)
    for word in words + ["vgg11"]:
        assert word in str(info.value)


def test_model_rejects_bad_labels_and_bad_construction(tiny):
    model = tiny()
    with pytest.raises(ValueError, match="label 5 is out of range for 5 classes"):
        model.loss(RNG.standard_normal((2, 3, 32, 32)), np.array([0, 5]))
    with pytest.raises(ValueError, match="input_size 16 is too small for 5 max-pools; expected at least 32"):
        VGG("vgg16", input_size=16)
    with pytest.raises(ValueError, match="unknown architecture 'vgg17'"):
        VGG("vgg17")
    with pytest.raises(TypeError, match="float32.*float64.*int32"):
        VGG("vgg11", input_size=32, width=0.1, dtype=np.int32)
    with pytest.raises(ValueError, match="init"):
        VGG("vgg11", input_size=32, width=0.1, init="xavier")
    with pytest.raises(ValueError, match="custom VGG config item 1"):
        VGG([8, "X", 16], input_size=32)


def test_custom_config_and_sequential_layers():
    model = VGG([4, "M", (6, 1), 8, "M"], num_classes=3, input_size=8, fc_width=5, dtype=np.float64)
    assert model.arch == "custom"
    assert isinstance(model.layers["conv2_1"], Conv2d) and model.layers["conv2_1"].params["w"].shape == (6, 4, 1, 1)
    assert isinstance(model.layers[1], ReLU)
    assert model.forward(RNG.standard_normal((2, 3, 8, 8))).shape == (2, 3)


def test_torchvision_key_mapping_for_vgg16(tiny):
    keys = tiny(config="vgg16").torchvision_keys()
    # torchvision vgg16 features: convs at 0,2 | pool 4 | 5,7 | 9 | 10,12,14 | 16 | 17,19,21 | 23 | 24,26,28 | 30
    conv_idx = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    convs = [k for k in keys if k.startswith("conv") and k.endswith(".w")]
    assert [keys[k] for k in convs] == [f"features.{i}.weight" for i in conv_idx]
    assert keys["fc6.w"] == "classifier.0.weight" and keys["fc8.b"] == "classifier.6.bias"
    # config C's 1x1 convs take a Conv2d + ReLU slot like any conv, so its keys sit where D's do
    keys_c = tiny(config="vgg16c").torchvision_keys()
    assert [keys_c[k] for k in convs] == [f"features.{i}.weight" for i in conv_idx]
    assert tiny(config="vgg16c").params["conv3_3.w"].shape[2:] == (1, 1)
    # the model method and the io layer read the one map
    from minivgg.vgg import torchvision_keys
    assert torchvision_keys("vgg16") == keys


def test_dense_gradient_buffer_is_reused_and_fully_overwritten(tiny):
    model = tiny(dropout=0.0)
    x1, x2, y = RNG.standard_normal((2, 3, 32, 32)), RNG.standard_normal((2, 3, 32, 32)), np.array([0, 1])
    _, g1 = model.loss(x1, y)
    first = g1["fc6.w"]
    expected = tiny(dropout=0.0).loss(x2, y)[1]["fc6.w"].copy()  # a fresh model, same weights
    _, g2 = model.loss(x2, y)
    assert g2["fc6.w"] is first  # same buffer, no 411 MB page-faulting at full size
    assert np.array_equal(g2["fc6.w"], expected)  # nothing left over from step 1
