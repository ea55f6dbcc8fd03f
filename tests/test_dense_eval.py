"""Dense evaluation (VGG §3.2): fc layers as convolutions give the same scores, and score maps on larger images."""

from __future__ import annotations

import numpy as np
import pytest

from minivgg.training import dense_eval
from minivgg.training.dense_eval import DenseVGG, dense_to_conv_weight, to_dense
from minivgg.vgg import VGG


@pytest.fixture
def tiny(tiny_vgg):
    """``tiny(input_size)``: fc6 sees a 2x2 pool5 map at 64x64 (32 channels at width 1/16), so the
    flattening order matters."""
    return lambda input_size=64, **kw: tiny_vgg(num_classes=5, input_size=input_size, fc_width=12, **kw)


def randomize_biases(model, seed=1):
    # VGG starts with zero biases; random ones make the check meaningful for b too
    rng = np.random.default_rng(seed)
    model.load_params({k: rng.standard_normal(v.shape) * 0.1 for k, v in model.params.items() if k.endswith(".b")},
                      strict=False)
    return model


def test_dense_to_conv_weight_matches_the_index_formula():
    rng = np.random.default_rng(0)
    c, h, w, d_out = 3, 2, 4, 5
    dense = rng.standard_normal((c * h * w, d_out))
    kernel = dense_to_conv_weight(dense, (c, h, w))
    assert kernel.shape == (d_out, c, h, w) and kernel.flags.c_contiguous
    for f in range(d_out):
        for ch in range(c):
            for i in range(h):
                for j in range(w):
                    assert kernel[f, ch, i, j] == dense[ch * h * w + i * w + j, f]
    assert dense_to_conv_weight(dense, (c * h * w,)).shape == (d_out, c * h * w, 1, 1)
    with pytest.raises(ValueError, match="does not fit"):
        dense_to_conv_weight(dense, (c, h, w + 1))


@pytest.mark.parametrize("input_size", [32, 64])
def test_identical_scores_at_the_training_size(tiny, input_size):
    model = randomize_biases(tiny(input_size))
    dense = to_dense(model)
    x = np.random.default_rng(2).standard_normal((4, 3, input_size, input_size))
    scores = dense.forward(x)
    assert scores.shape == (4, 5, 1, 1)
    np.testing.assert_allclose(scores[:, :, 0, 0], model.forward(x), rtol=0, atol=1e-10)
    np.testing.assert_allclose(dense.scores(x), model.forward(x), rtol=0, atol=1e-10)


def test_a_wrong_flattening_order_is_caught(tiny, monkeypatch):
    # negative control: reshaping as if pool5 were flattened channel-last breaks the equivalence
    def channel_last(w, in_shape):
        if len(in_shape) != 3:
            return np.ascontiguousarray(w.T.reshape(w.shape[1], -1, 1, 1))
        c, h, wd = in_shape
        return np.ascontiguousarray(w.T.reshape(w.shape[1], h, wd, c).transpose(0, 3, 1, 2))

    model = randomize_biases(tiny(64))
    monkeypatch.setattr(dense_eval, "dense_to_conv_weight", channel_last)
    x = np.random.default_rng(2).standard_normal((2, 3, 64, 64))
    assert np.abs(DenseVGG(model).forward(x)[:, :, 0, 0] - model.forward(x)).max() > 1e-3


def test_score_map_on_a_larger_image_equals_the_classifier_on_every_pool5_window(tiny):
    model = randomize_biases(tiny(64))
    dense = to_dense(model)
    x = np.random.default_rng(3).standard_normal((2, 3, 96, 128))
    scores = dense.forward(x)
    # pool5 is 3x4 on a 96x128 input; a 2x2 fc6 kernel gives a 2x3 map
    assert scores.shape == (2, 5, 2, 3) and dense.output_size(96, 128) == (2, 3)
    pool5 = model.layers.forward(x, until="pool5")  # the conv part runs on any size
    assert pool5.shape == (2, 32, 3, 4)
    p = model.params
    for i in range(2):
        for j in range(3):
            window = pool5[:, :, i:i + 2, j:j + 2].reshape(2, -1)  # channel-major, as fc6 was trained
            h6 = np.maximum(window @ p["fc6.w"] + p["fc6.b"], 0)
            h7 = np.maximum(h6 @ p["fc7.w"] + p["fc7.b"], 0)
            np.testing.assert_allclose(scores[:, :, i, j], h7 @ p["fc8.w"] + p["fc8.b"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(dense.scores(x), scores.mean(axis=(2, 3)), rtol=1e-14)


def test_predict_proba_averages_the_mirror_image(tiny):
    model = randomize_biases(tiny(32))
    dense = to_dense(model)
    x = np.random.default_rng(4).standard_normal((2, 3, 40, 48))
    z1, z2 = dense.scores(x), dense.scores(x[..., ::-1].copy())

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    np.testing.assert_allclose(dense.predict_proba(x), softmax(z1), rtol=1e-12)
    np.testing.assert_allclose(dense.predict_proba(x, flip=True), (softmax(z1) + softmax(z2)) / 2, rtol=1e-12)


def test_conversion_is_a_snapshot_and_dropout_is_gone(tiny):
    model = tiny(32, dropout=0.5)
    dense = to_dense(model)
    kinds = [s.kind for s in dense.steps]
    assert "dropout" not in kinds and [s.name for s in dense.steps[-5:]] == ["fc6", "relu6", "fc7", "relu7", "fc8"]
    model.params["fc8.b"][...] = 123.0  # later training does not leak into the converted copy
    assert not np.any(dense.steps[-1].b == 123.0)


def test_float32_works_and_bad_input_is_reported(tiny):
    model = tiny(32, dtype=np.float32)
    dense = to_dense(model)
    x = np.random.default_rng(5).standard_normal((1, 3, 64, 64)).astype(np.float32)
    assert dense.forward(x).dtype == np.float32 and dense.forward(x).shape == (1, 5, 2, 2)
    with pytest.raises(ValueError, match="at least 32x32"):
        dense.forward(x[:, :, :16, :])
    with pytest.raises(TypeError, match="float32"):
        dense.forward(x.astype(np.float64))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        dense.forward(x[:, :1])
    with pytest.raises(ValueError, match="evaluation only"):
        dense.forward(x, train=True)
    with pytest.raises(TypeError):
        DenseVGG("not a model")


@pytest.mark.parametrize("arch, kw", [
    ("vgg11-lrn", dict(input_size=32, width=1 / 16, fc_width=16)),
    ("alexnet", dict(input_size=67, width=0.0625, fc_width=8)),  # LRN and grouped convs
])
def test_lrn_and_grouped_convs_keep_their_form(arch, kw):
    """A-LRN's LRN and AlexNet's groups=2 convs and LRNs survive the conversion: same scores at the training size."""
    model = randomize_biases(VGG(arch, num_classes=5, dropout=0.0, dtype=np.float64, seed=3, **kw))
    dense = to_dense(model)
    kinds = [s.kind for s in dense.steps]
    assert "lrn" in kinds
    x = 3 * np.random.default_rng(4).standard_normal((2, 3, kw["input_size"], kw["input_size"]))
    np.testing.assert_allclose(dense.scores(x), model.forward(x), rtol=0, atol=1e-10)
    # negative control: without its LRN steps the same network gives other scores
    dense.steps = [s for s in dense.steps if s.kind != "lrn"]
    assert np.abs(dense.scores(x) - model.forward(x)).max() > 1e-6
