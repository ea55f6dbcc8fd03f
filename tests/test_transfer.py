"""Feature extraction from named layers, the softmax classifier on frozen features, the transfer experiment."""

from __future__ import annotations

import math

import numpy as np
import pytest

from minivgg.training import transfer
from minivgg.training.transfer import extract_features, fit_softmax
from minivgg.vgg import VGG


@pytest.fixture(scope="module")
def model():
    return VGG("vgg11", num_classes=10, input_size=32, width=0.125, fc_width=24, dtype=np.float64, seed=0)


@pytest.mark.parametrize("layer,shape", [
    ("relu7", (24,)), ("fc8", (10,)), ("fc6", (24,)), ("pool5", (64, 1, 1)), ("relu4_2", (64, 4, 4)),
    ("conv1_1", (8, 32, 32)),
])
def test_feature_shapes_follow_the_layer_table(model, layer, shape):
    x = np.random.default_rng(0).standard_normal((5, 3, 32, 32))
    spec = next(s for s in model.specs if s.name == layer)
    assert spec.out_shape == shape  # the table agrees with what the test expects
    raw = extract_features(model, x, layer, batch_size=2, flatten=False)
    flat = extract_features(model, x, layer, batch_size=3)
    assert raw.shape == (5, *shape) and flat.shape == (5, math.prod(shape)) and raw.dtype == np.float64
    # batch sizes differ, so BLAS may round differently in the last bits
    np.testing.assert_allclose(flat, raw.reshape(5, -1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(raw, model.features(x, layer), rtol=1e-12, atol=1e-12)


def test_fc7_features_are_the_default_and_nonnegative(model):
    x = np.random.default_rng(1).standard_normal((4, 3, 32, 32))
    f = extract_features(model, x)
    assert f.shape == (4, 24) and (f >= 0).all()  # after relu7
    np.testing.assert_array_equal(f, extract_features(model, x, "relu7"))


def test_transform_is_applied_before_the_network(model):
    x = np.random.default_rng(2).integers(0, 256, (3, 3, 32, 32), dtype=np.uint8)
    f = extract_features(model, x, transform=lambda xb: xb / 255.0)
    np.testing.assert_allclose(f, model.features(x / 255.0), rtol=1e-12, atol=1e-12)


def test_unknown_layer_names_the_valid_ones(model):
    with pytest.raises(KeyError, match="relu7"):
        extract_features(model, np.zeros((1, 3, 32, 32)), "fc9")


def test_fit_softmax_separates_separable_classes():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((4, 20)) * 3
    y = rng.integers(0, 4, 400)
    f = centers[y] + rng.standard_normal((400, 20)) * 0.5
    clf = fit_softmax(f[:300], y[:300])
    assert clf.score(f[300:], y[300:]) == 1.0
    assert clf.losses[-1] < 0.1 < math.log(4) == pytest.approx(clf.losses[0])  # starts at W = 0
    p = clf.predict_proba(f[300:])
    np.testing.assert_allclose(p.sum(1), 1.0)


def test_fit_softmax_negative_control_random_labels_stay_at_chance():
    rng = np.random.default_rng(1)
    f = rng.standard_normal((2000, 20))
    y = rng.integers(0, 4, 2000)
    clf = fit_softmax(f[:1000], y[:1000])
    assert 0.18 < clf.score(f[1000:], y[1000:]) < 0.32  # chance is 0.25


def test_fit_softmax_reaches_the_optimum_of_its_objective():
    # at the optimum the gradient of mean CE + reg/2 |W|^2 (in standardised features) vanishes
    rng = np.random.default_rng(2)
    f = rng.standard_normal((200, 5))
    y = (f[:, 0] + 0.5 * rng.standard_normal(200) > 0).astype(int)
    reg = 0.1
    clf = fit_softmax(f, y, reg=reg, iters=3000, tol=0)
    z = (f - clf.mu) / clf.sigma
    logits = z @ clf.w + clf.b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(200), y] -= 1
    grad_w = z.T @ p / 200 + reg * clf.w
    assert np.abs(grad_w).max() < 1e-4 and np.abs(p.sum(0) / 200).max() < 1e-4


def test_fit_softmax_bad_input():
    with pytest.raises(ValueError, match="labels must be in 0..1"):
        fit_softmax(np.zeros((3, 2)), np.array([0, 1, 2]), num_classes=2)
    with pytest.raises(ValueError, match="integer labels"):
        fit_softmax(np.zeros((3, 2)), np.array([0.0, 1.0, 1.0]))
    clf = fit_softmax(np.eye(3), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="trained on 3 features"):
        clf.predict(np.zeros((1, 4)))


def test_constant_features_do_not_break_the_standardisation():
    f = np.zeros((6, 3))
    f[:, 0] = [0, 0, 0, 1, 1, 1]  # columns 1 and 2 are dead units
    clf = fit_softmax(f, np.array([0, 0, 0, 1, 1, 1]))
    assert np.isfinite(clf.w).all() and clf.score(f, [0, 0, 0, 1, 1, 1]) == 1.0


@pytest.mark.slow
def test_transfer_experiment_fc7_beats_raw_pixels_on_held_out_classes():
    from minivgg import training as tr

    r = transfer.transfer_experiment(seed=0, n_source_train=4000, n_source_val=500, n_target_train=500,
                                     n_target_test=500, config=tr.TrainConfig(epochs=4, seed=0))
    assert r.source_val_acc > 0.6
    assert r.feature_acc > r.pixel_acc + 0.1
    assert "raw pixels" in transfer.format_transfer_result(r)
