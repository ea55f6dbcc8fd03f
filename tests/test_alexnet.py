"""AlexNet (Krizhevsky et al. 2012) beside VGG: grouped convolution, parameter counts, the built model."""

from __future__ import annotations

import numpy as np
import pytest

from minivgg import ops
from minivgg.gradcheck import check_op

LINEAR_H = 1e-3  # convolution is linear in each input: any step is exact up to rounding

# ---------------------------------------------------------------- grouped convolution

GROUP_CASES = [  # n, c, h, w, f, k, stride, pad, groups
    (2, 4, 5, 6, 6, 3, 1, 1, 2),
    (1, 6, 7, 5, 3, 3, 2, 0, 3),
    (1, 2, 4, 4, 4, 1, 1, 0, 2),
    (2, 4, 4, 4, 4, 3, 1, 1, 4),   # depthwise
]


def _grouped_inputs(rng, n, c, h, w, f, k, groups):
    return (rng.standard_normal((n, c, h, w)), rng.standard_normal((f, c // groups, k, k)),
            rng.standard_normal(f))


@pytest.mark.parametrize("case", GROUP_CASES)
@pytest.mark.parametrize("algo", ["naive", "im2col", "winograd"])
def test_grouped_conv_gradients_float64(rng, case, algo):
    n, c, h, w, f, k, s, p, g = case
    if algo == "winograd" and (k, s, p) != (3, 1, 1):
        pytest.skip("Winograd is 3x3/s1/p1 only")
    x, wt, b = _grouped_inputs(rng, n, c, h, w, f, k, g)
    report = check_op(lambda x, w, b: ops.conv2d_forward(x, w, b, s, p, algo=algo, groups=g),
                      ops.conv2d_backward, {"x": x, "w": wt, "b": b}, h=LINEAR_H)
    assert report.passed, str(report)
    assert report.max_rel_error < 1e-7


def test_grouped_conv_gradcheck_catches_a_backward_that_ignores_the_groups(rng):
    """Negative control: a dw with the two groups' halves swapped must fail the check."""
    x, wt, b = _grouped_inputs(rng, 1, 4, 4, 4, 4, 3, 2)

    def swapped(dout, cache):
        dx, dw, db = ops.conv2d_backward(dout, cache)
        return dx, np.concatenate([dw[2:], dw[:2]]), db

    report = check_op(lambda x, w, b: ops.conv2d_forward(x, w, b, 1, 1, algo="im2col", groups=2), swapped,
                      {"x": x, "w": wt, "b": b}, h=LINEAR_H)
    assert not report.passed


def test_grouped_conv_is_two_separate_convolutions(rng):
    """groups=2 by hand: each half of the input convolved with its half of the filters (naive algo, groups=1)."""
    x, wt, b = _grouped_inputs(rng, 2, 4, 5, 5, 6, 3, 2)
    out, _ = ops.conv2d_forward(x, wt, b, 1, 1, algo="im2col", groups=2)
    lo, _ = ops.conv2d_forward(x[:, :2].copy(), wt[:3], b[:3], 1, 1, algo="naive")
    hi, _ = ops.conv2d_forward(x[:, 2:].copy(), wt[3:], b[3:], 1, 1, algo="naive")
    np.testing.assert_allclose(out, np.concatenate([lo, hi], axis=1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", GROUP_CASES)
def test_grouped_conv_matches_torch_float64(rng, case):
    torch = pytest.importorskip("torch")
    n, c, h, w, f, k, s, p, g = case
    x, wt, b = _grouped_inputs(rng, n, c, h, w, f, k, g)
    out, cache = ops.conv2d_forward(x, wt, b, s, p, algo="im2col", groups=g)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = ops.conv2d_backward(dout, cache)
    xt, wtt, bt = (torch.tensor(a, requires_grad=True) for a in (x, wt, b))
    yt = torch.nn.functional.conv2d(xt, wtt, bt, stride=s, padding=p, groups=g)
    yt.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    for mine, theirs in ((dx, xt), (dw, wtt), (db, bt)):
        np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_grouped_conv_need_dx_false_gives_the_same_dw(rng):
    x, wt, b = _grouped_inputs(rng, 2, 4, 5, 5, 6, 3, 2)
    _, cache = ops.conv2d_forward(x, wt, b, 1, 1, algo="im2col", groups=2)
    dout = rng.standard_normal((2, 6, 5, 5))
    dx, dw, _ = ops.conv2d_backward(dout, cache, need_dx=False)
    assert dx is None
    np.testing.assert_allclose(dw, ops.conv2d_backward(dout, cache)[1], rtol=1e-13)


@pytest.mark.parametrize("c, f, wc, groups, words", [
    (5, 4, 2, 2, "must divide both the input channels"), (4, 5, 2, 2, "must divide both"),
    (4, 4, 4, 2, "expects 8"), (4, 4, 2, 0, "groups must be an int >= 1"),
])
def test_grouped_conv_bad_groups_are_named(c, f, wc, groups, words):
    x, w, b = np.ones((1, c, 4, 4)), np.ones((f, wc, 3, 3)), np.ones(f)
    with pytest.raises(ValueError, match=words):
        ops.conv2d_forward(x, w, b, 1, 1, groups=groups, name="conv2")


# ---------------------------------------------------------------- AlexNet and A-LRN as configs

def _conv(f, c, k, groups=1):
    """Weights + biases of a conv, written out: F * (C/groups) * K * K + F."""
    return f * (c // groups) * k * k + f


def _dense(d_in, d_out):
    return d_in * d_out + d_out


# Per-layer arithmetic by hand (Krizhevsky et al. 2012, Fig. 2; torchvision's alexnet), not from minivgg.
ALEXNET_BY_HAND = (_conv(96, 3, 11) + _conv(256, 96, 5, 2) + _conv(384, 256, 3) + _conv(384, 384, 3, 2)
                   + _conv(256, 384, 3, 2) + _dense(256 * 6 * 6, 4096) + _dense(4096, 4096) + _dense(4096, 1000))
ALEXNET_TV_BY_HAND = (_conv(64, 3, 11) + _conv(192, 64, 5) + _conv(384, 192, 3) + _conv(256, 384, 3)
                      + _conv(256, 256, 3) + _dense(256 * 6 * 6, 4096) + _dense(4096, 4096) + _dense(4096, 1000))


def test_hand_counts_are_the_published_ones():
    assert ALEXNET_BY_HAND == 60_965_224
    assert ALEXNET_TV_BY_HAND == 61_100_840


@pytest.mark.parametrize("arch, expected", [("alexnet", 60_965_224), ("alexnet-tv", 61_100_840),
                                            ("vgg11-lrn", 132_863_336), ("vgg11", 132_863_336)])
def test_config_counts(arch, expected):
    from minivgg.configs import VGGConfig
    assert VGGConfig.from_arch(arch).num_params == expected


def test_alexnet_layer_names_shapes_and_default_input():
    from minivgg.configs import VGGConfig
    cfg = VGGConfig.from_arch("alexnet")
    assert cfg.input_size == 227
    specs = {s.name: s for s in cfg.specs()}
    assert [s.name for s in cfg.specs() if s.kind in ("conv", "lrn", "pool", "dense")] == [
        "conv1", "norm1", "pool1", "conv2", "norm2", "pool2", "conv3", "conv4", "conv5", "pool5",
        "fc6", "fc7", "fc8"]
    assert specs["conv1"].out_shape == (96, 55, 55)   # (227 - 11) / 4 + 1
    assert specs["pool1"].out_shape == (96, 27, 27)   # overlapping 3x3/2
    assert specs["pool5"].out_shape == (256, 6, 6)
    assert specs["conv2"].weight_shape == (256, 48, 5, 5)
    assert VGGConfig.from_arch("alexnet-tv").specs()[0].out_shape == (64, 55, 55)  # 224, pad 2
    lrn = [s.name for s in VGGConfig.from_arch("vgg11-lrn").specs()][:4]
    assert lrn == ["conv1_1", "relu1_1", "norm1_1", "pool1"]


def test_alexnet_too_small_input_is_named():
    from minivgg.configs import VGGConfig
    with pytest.raises(ValueError, match="too small"):
        VGGConfig.from_arch("alexnet", input_size=40)


@pytest.mark.parametrize("arch, expected", [("alexnet", 60_965_224), ("alexnet-tv", 61_100_840),
                                            ("vgg11-lrn", 132_863_336)])
def test_built_model_has_the_counted_parameters(arch, expected):
    from minivgg.vgg import VGG
    model = VGG(arch)
    assert sum(v.size for v in model.params.values()) == expected
    if arch == "alexnet":
        assert model.params["conv2.w"].shape == (256, 48, 5, 5)
        assert "norm1" in [layer.name for layer in model.layers.layers]


def test_alexnet_forward_float32_shape():
    from minivgg.vgg import VGG
    model = VGG("alexnet", dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((1, 3, 227, 227)).astype(np.float32)
    out = model.forward(x)
    assert out.shape == (1, 1000) and out.dtype == np.float32 and np.isfinite(out).all()


def test_alexnet_small_trains_through_lrn_and_groups(rng):
    """Gradient check of the whole small AlexNet (LRN + grouped convs + overlapping pools) in float64."""
    from minivgg.gradcheck import check_params
    from minivgg.vgg import VGG
    model = VGG("alexnet", input_size=67, width=0.0625, fc_width=8, num_classes=3, dropout=0.0, dtype=np.float64)
    x = rng.standard_normal((2, 3, 67, 67))
    y = np.array([0, 2])
    _, grads = model.loss(x, y)
    report = check_params(lambda: model.loss(x, y)[0], model.params, grads, max_coords=6)
    assert report.passed, str(report)


def test_alexnet_tv_matches_torch_float64(rng):
    """Forward of torchvision's AlexNet layout (conv/ReLU/pool then the classifier) with the same weights."""
    torch = pytest.importorskip("torch")
    from minivgg.vgg import VGG
    model = VGG("alexnet-tv", input_size=63, width=0.125, fc_width=16, num_classes=5, dtype=np.float64)
    x = rng.standard_normal((2, 3, 63, 63))
    for k in model.params:
        if k.endswith(".b"):
            model.params[k][...] = rng.standard_normal(model.params[k].shape)
    out = model.forward(x)
    p = {k: torch.tensor(v) for k, v in model.params.items()}
    F = torch.nn.functional
    t = torch.tensor(x)
    for i, pad in zip(range(1, 6), (2, 2, 1, 1, 1)):
        t = F.relu(F.conv2d(t, p[f"conv{i}.w"], p[f"conv{i}.b"], stride=4 if i == 1 else 1, padding=pad))
        if i in (1, 2, 5):
            t = F.max_pool2d(t, 3, 2)
    t = t.flatten(1)
    t = F.relu(t @ p["fc6.w"] + p["fc6.b"])
    t = F.relu(t @ p["fc7.w"] + p["fc7.b"])
    t = t @ p["fc8.w"] + p["fc8.b"]
    np.testing.assert_allclose(out, t.numpy(), rtol=1e-10, atol=1e-10)


# MACs per image by hand: H_out * W_out * F * K * K * C/groups per conv, D_in * D_out per fc (227 input)
ALEXNET_MACS_BY_HAND = (55 * 55 * 96 * 11 * 11 * 3 + 27 * 27 * 256 * 5 * 5 * 48 + 13 * 13 * 384 * 9 * 256
                        + 13 * 13 * 384 * 9 * 192 + 13 * 13 * 256 * 9 * 192 + 9216 * 4096 + 4096 * 4096 + 4096 * 1000)


def test_alexnet_macs_and_the_lecture_ratio_line():
    from minivgg.analysis import compare, format_compare, summarize
    assert summarize("alexnet").totals.macs == ALEXNET_MACS_BY_HAND == 724_406_816
    vgg16_params, vgg16_macs = 138_357_544, 15_470_264_320  # torchvision's count; the lecture's 15.5 GMACs
    text = format_compare(compare(["vgg16", "alexnet"]))
    expected = (f"vgg16 has {vgg16_params / 60_965_224:.2f}x alexnet's parameters and "
                f"{vgg16_macs / ALEXNET_MACS_BY_HAND:.1f}x its MACs")
    assert expected in text and "2.27x" in expected and "21.4x" in expected
    assert "alexnet@227" in text  # a row at another input size than the header's says so


def test_custom_grouped_config_errors_and_round_trip():
    import json

    from minivgg.configs import VGGConfig
    with pytest.raises(ValueError, match="2 groups but 3 input channels"):
        VGGConfig.from_arch([(8, 3, 2, 1, 2)])
    with pytest.raises(ValueError, match="'LRN'"):
        VGGConfig.from_arch([(8, 3, 2, 1, 3)])  # 3 groups do not divide 8 filters
    for arch in ("alexnet", "alexnet-tv", "vgg11-lrn"):
        cfg = VGGConfig.from_arch(arch)
        assert VGGConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
