"""PyTorch as a float64 oracle: every op's output and gradients, and VGG-16 logits at 224x224.

Skipped cleanly when torch is not installed. torch is only ever imported here
(and in other tests), never by minivgg itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from minivgg import ops

torch = pytest.importorskip("torch")
F = torch.nn.functional
pytestmark = pytest.mark.torch

RNG = np.random.default_rng(99)


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a)).requires_grad_(True)


def _close(ours, theirs, tol=1e-10):
    theirs = theirs.detach().numpy()
    assert ours.shape == theirs.shape
    scale = max(1.0, float(np.max(np.abs(theirs))))
    assert np.max(np.abs(ours - theirs)) / scale < tol


@pytest.mark.parametrize("case", [(2, 3, 8, 7, 4, 3, 1, 1), (1, 1, 5, 5, 2, 3, 2, 0), (2, 2, 9, 6, 3, 5, 2, 2),
                                  (1, 4, 4, 6, 2, 1, 1, 0)])
@pytest.mark.parametrize("algo", ["naive", "im2col", "auto"])
def test_conv2d_matches_torch(case, algo):
    n, c, h, w, f, k, s, p = case
    x, wt, b = RNG.standard_normal((n, c, h, w)), RNG.standard_normal((f, c, k, k)), RNG.standard_normal(f)
    out, cache = ops.conv2d_forward(x, wt, b, s, p, algo=algo)
    tx, tw, tb = _t(x), _t(wt), _t(b)
    tout = F.conv2d(tx, tw, tb, stride=s, padding=p)
    _close(out, tout)
    dout = RNG.standard_normal(out.shape)
    tout.backward(torch.from_numpy(dout))
    dx, dw, db = ops.conv2d_backward(dout, cache)
    _close(dx, tx.grad)
    _close(dw, tw.grad)
    _close(db, tb.grad)


def test_relu_matches_torch():
    x = RNG.standard_normal((2, 3, 4, 5))
    out, cache = ops.relu_forward(x)
    tx = _t(x)
    tout = F.relu(tx)
    _close(out, tout)
    dout = RNG.standard_normal(x.shape)
    tout.backward(torch.from_numpy(dout))
    _close(ops.relu_backward(dout, cache), tx.grad)


@pytest.mark.parametrize("shape, size, stride", [((2, 3, 8, 8), 2, 2), ((1, 2, 7, 9), 3, 2), ((1, 1, 6, 6), 2, 1)])
def test_maxpool_matches_torch(shape, size, stride):
    x = RNG.permutation(np.prod(shape)).reshape(shape).astype(np.float64)  # no ties: torch may break them differently
    out, cache = ops.maxpool_forward(x, size, stride)
    tx = _t(x)
    tout = F.max_pool2d(tx, size, stride)
    _close(out, tout)
    dout = RNG.standard_normal(out.shape)
    tout.backward(torch.from_numpy(dout))
    _close(ops.maxpool_backward(dout, cache), tx.grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("algo", ["numba", "naive"])
def test_maxpool_nan_and_inf_match_torch(algo, dtype):
    # one NaN per window at every position, plus +-inf: torch propagates NaN and routes the gradient to it
    # (with two NaNs in a window torch picks the last, minivgg the first like np.argmax, so one per window)
    x = RNG.permutation(64).reshape(1, 4, 4, 4).astype(dtype)
    for k, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        x[0, k, i, j] = np.nan
    x[0, 0, 2, 3], x[0, 1, 3, 3], x[0, 2, 2:, 2:] = np.inf, -np.inf, -np.inf
    out, cache = ops.maxpool_forward(x, algo=algo)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    tout = F.max_pool2d(tx, 2, 2)
    np.testing.assert_array_equal(out, tout.detach().numpy())  # NaN where torch has NaN
    dout = RNG.standard_normal(out.shape).astype(dtype)
    tout.backward(torch.from_numpy(dout))
    np.testing.assert_array_equal(ops.maxpool_backward(dout, cache, algo=algo), tx.grad.numpy())


def test_dense_matches_torch():
    x, w, b = RNG.standard_normal((3, 2, 3, 2)), RNG.standard_normal((12, 5)), RNG.standard_normal(5)
    out, cache = ops.dense_forward(x, w, b)
    tx, tw, tb = _t(x), _t(w.T), _t(b)  # torch Linear weights are (D_out, D_in)
    tout = F.linear(tx.reshape(3, -1), tw, tb)
    _close(out, tout)
    dout = RNG.standard_normal(out.shape)
    tout.backward(torch.from_numpy(dout))
    dx, dw, db = ops.dense_backward(dout, cache)
    _close(dx, tx.grad)
    _close(dw, tw.grad.T)
    _close(db, tb.grad)


def test_dropout_matches_torch_given_the_same_mask():
    # torch draws its own random numbers, so compare the math with our mask applied in torch
    x = RNG.standard_normal((4, 10))
    out, cache = ops.dropout_forward(x, 0.25, train=True, rng=5)
    tx = _t(x)
    tout = tx * torch.from_numpy(cache.mask.astype(np.float64)) / 0.75
    _close(out, tout)
    dout = RNG.standard_normal(x.shape)
    tout.backward(torch.from_numpy(dout))
    _close(ops.dropout_backward(dout, cache), tx.grad)


def test_softmax_cross_entropy_matches_torch():
    logits, y = RNG.standard_normal((6, 10)) * 5, RNG.integers(0, 10, 6)
    loss, dlogits = ops.softmax_cross_entropy(logits, y)
    tl = _t(logits)
    tloss = F.cross_entropy(tl, torch.from_numpy(y))
    tloss.backward()
    assert abs(loss - tloss.item()) < 1e-12
    _close(dlogits, tl.grad)


def _torch_vgg_from(model):
    """A torchvision-layout VGG in plain torch (same module indices), weights copied from ``model``."""
    nn = torch.nn
    feats = []
    for spec in model.specs:  # the features part: conv, relu, pool in order (torchvision's indices)
        if spec.kind == "conv":
            feats.append(nn.Conv2d(spec.in_channels, spec.out_channels, spec.kernel, padding=spec.pad))
        elif spec.kind == "relu" and spec.name.startswith("relu") and "_" in spec.name:
            feats.append(nn.ReLU())
        elif spec.kind == "pool":
            feats.append(nn.MaxPool2d(spec.kernel, spec.stride))
    fc6 = next(s for s in model.specs if s.name == "fc6")
    net = nn.Module()
    net.features = nn.Sequential(*feats)
    net.classifier = nn.Sequential(nn.Linear(fc6.in_channels, model.fc_width), nn.ReLU(), nn.Dropout(),
                                   nn.Linear(model.fc_width, model.fc_width), nn.ReLU(), nn.Dropout(),
                                   nn.Linear(model.fc_width, model.num_classes))
    net = net.to(torch.float64 if model.dtype == np.float64 else torch.float32)  # before loading: no rounding
    state = {}
    for ours, theirs in model.torchvision_keys().items():
        value = model.params[ours]
        state[theirs] = torch.from_numpy(np.ascontiguousarray(value.T if value.ndim == 2 else value))
    net.load_state_dict(state)
    return net.eval()


def _torch_forward(net, x):
    return net.classifier(torch.flatten(net.features(x), 1))


def _torch_logits(net, x):
    with torch.no_grad():
        return _torch_forward(net, torch.from_numpy(x)).numpy()


def test_tiny_vgg_logits_and_gradients_match_torch_float64():
    from minivgg import VGG

    model = VGG("vgg11", num_classes=10, input_size=32, width=0.125, fc_width=32, dtype=np.float64, seed=3)
    net = _torch_vgg_from(model)
    x, y = RNG.standard_normal((2, 3, 32, 32)), np.array([1, 7])
    np.testing.assert_allclose(model.forward(x), _torch_logits(net, x), rtol=1e-10, atol=1e-12)

    for layer in model.layers:  # compare gradients without dropout's randomness (torch net is in eval mode)
        if layer.name.startswith("drop"):
            layer.p = 0.0
    loss, grads = model.loss(x, y)
    tloss = F.cross_entropy(_torch_forward(net, torch.from_numpy(x)), torch.from_numpy(y))
    tloss.backward()
    assert abs(loss - tloss.item()) < 1e-12
    named = dict(net.named_parameters())
    for ours, theirs in model.torchvision_keys().items():
        g = named[theirs].grad.numpy()
        np.testing.assert_allclose(grads[ours], g.T if g.ndim == 2 else g, rtol=1e-8, atol=1e-12, err_msg=ours)


@pytest.mark.slow
def test_vgg16_logits_match_torch_at_224_float32():
    from minivgg import vgg16

    model = vgg16(seed=0)
    net = _torch_vgg_from(model)
    x = RNG.standard_normal((1, 3, 224, 224)).astype(np.float32)
    ours, theirs = model.forward(x), _torch_logits(net, x)
    rel = np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs))
    assert rel < 1e-4, rel
