"""Guided backprop, Grad-CAM, maximally activating patches and per-class class models: their math.

Guided backprop against a hand-written NumPy twin of the whole network (forward and the guided
backward, layer by layer, no minivgg op used); Grad-CAM weights against finite differences of the
score along a whole channel, and its invariances; top patches against a brute-force scan and the
textbook receptive-field recurrence. Each checker has a negative control.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from minivgg import VGG
from minivgg.gradcheck.numerical import rel_error
from minivgg.visualize import (class_model, class_models, grad_cam, guided_backprop, input_gradient,
                               top_patches)
from minivgg.visualize.gradcam import bilinear_matrix


# -- a hand-written twin of a VGG (3x3/s1/p1 convs, 2x2 pools, dense), guided rule in the backward --------

def _conv(x, w, b):
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.stack([xp[:, :, i:i + h, j:j + wd] for i in range(3) for j in range(3)], axis=2)  # (N, C, 9, H, W)
    return np.einsum("ncthw,fct->nfhw", win, w.reshape(w.shape[0], c, 9)) + b[None, :, None, None], xp.shape


def _conv_dx(dout, w, xp_shape):
    _, _, h, wd = dout.shape
    dxp = np.zeros(xp_shape)
    for i in range(3):
        for j in range(3):
            dxp[:, :, i:i + h, j:j + wd] += np.einsum("nfhw,fc->nchw", dout, w[:, :, i, j])
    return dxp[:, :, 1:-1, 1:-1]


def _pool(x):
    n, c, h, w = x.shape
    blocks = x.reshape(n, c, h // 2, 2, w // 2, 2)
    out = blocks.max(axis=(3, 5))
    mask = blocks == out[:, :, :, None, :, None]  # random floats: one maximum per window
    return out, mask


def _twin_guided(model, x, c, guided=True):
    tape = []
    y = x
    for s in model.specs:
        p = model.params
        if s.kind == "conv":
            y, shp = _conv(y, p[f"{s.name}.w"], p[f"{s.name}.b"])
            tape.append(("conv", s.name, shp))
        elif s.kind == "relu":
            tape.append(("relu", y > 0))
            y = np.maximum(y, 0)
        elif s.kind == "pool":
            y, mask = _pool(y)
            tape.append(("pool", mask))
        elif s.kind == "flatten":
            tape.append(("flatten", y.shape))
            y = y.reshape(len(y), -1)
        elif s.kind == "dense":
            tape.append(("dense", s.name))
            y = y @ p[f"{s.name}.w"] + p[f"{s.name}.b"]
    d = np.zeros_like(y)
    d[:, c] = 1.0
    for entry in reversed(tape):
        kind = entry[0]
        if kind == "relu":
            d = d * entry[1] * ((d > 0) if guided else 1)  # guided: also drop negative upstream gradients
        elif kind == "dense":
            d = d @ model.params[f"{entry[1]}.w"].T
        elif kind == "flatten":
            d = d.reshape(entry[1])
        elif kind == "pool":
            d = (entry[1] * d[:, :, :, None, :, None]).reshape(d.shape[0], d.shape[1], d.shape[2] * 2, d.shape[3] * 2)
        else:
            d = _conv_dx(d, model.params[f"{entry[1]}.w"], entry[2])
    return d


def test_guided_backprop_equals_hand_written_rule(tiny_vgg, rng):
    model = tiny_vgg()
    x = rng.standard_normal((2, 3, 32, 32))
    got = guided_backprop(model, x, 3)
    want = _twin_guided(model, x, 3)
    assert np.abs(want).max() > 0
    assert rel_error(got, want) < 1e-10
    # the twin is right about the plain gradient too, and the two rules really differ here
    plain = _twin_guided(model, x, 3, guided=False)
    assert rel_error(input_gradient(model, x, 3), plain) < 1e-10
    assert rel_error(got, plain) > 1e-2  # negative control: guided is not the plain gradient


def _positive_model():
    model = VGG("vgg11", num_classes=4, input_size=32, width=1 / 16, fc_width=8, dtype=np.float64, seed=2)
    for key, p in model.params.items():
        p[...] = np.abs(p) + (0.05 if key.endswith(".b") else 0.0)
    return model


def test_guided_equals_plain_gradient_when_every_relu_is_open_and_upstream_positive(rng):
    """Positive weights, biases and input: every ReLU open; backward through positive weights keeps
    every upstream gradient >= 0, so the guided clamp removes nothing."""
    model = _positive_model()
    x = rng.uniform(0.1, 1.0, (2, 3, 32, 32))
    plain = input_gradient(model, x, 1)
    assert plain.min() >= 0 and plain.max() > 0
    assert np.array_equal(guided_backprop(model, x, 1), plain)
    # negative control: flip fc8's sign and the upstream gradients turn negative: guided zeroes them
    model.params["fc8.w"][...] *= -1
    assert np.abs(input_gradient(model, x, 1)).max() > 0
    assert np.abs(guided_backprop(model, x, 1)).max() == 0


def test_guided_backprop_of_a_layer_unit(tiny_vgg, rng):
    """A unit of a hidden layer: with every ReLU open it is the plain gradient; on a random net it is not."""
    model = _positive_model()
    x = rng.uniform(0.1, 1.0, (1, 3, 32, 32))
    unit = (2, 3, 4)
    assert np.array_equal(guided_backprop(model, x, unit, layer="relu3_1"), input_gradient(model, x, unit, "relu3_1"))
    model = tiny_vgg()
    x = rng.standard_normal((1, 3, 32, 32))
    a = model.features(x, "relu3_1")[0, 2]
    unit = (2, *map(int, np.unravel_index(a.argmax(), a.shape)))  # an open unit (a shut one has no gradient)
    g = guided_backprop(model, x, unit, layer="relu3_1")
    plain = input_gradient(model, x, unit, "relu3_1")
    assert np.abs(plain).max() > 0 and rel_error(g, plain) > 1e-2
    with pytest.raises(ValueError, match="outside"):
        guided_backprop(model, x, (99, 0, 0), layer="relu3_1")


# -- Grad-CAM -------------------------------------------------------------------------------------------

def _head(model, layer):
    """The layers above ``layer`` as a function of its activation (inference mode)."""
    names = model.layers.names()
    above = list(model.layers)[names.index(layer) + 1:]

    def f(a):
        for lay in above:
            a = lay.forward(a)
        return a
    return f


@pytest.mark.parametrize("layer", ["relu3_1", "pool4", "conv4_2"])
def test_grad_cam_weights_are_finite_difference_channel_derivatives(tiny_vgg, rng, layer):
    """alpha_k = (1/hw) d S_c(A + t 1_k)/dt at t=0: raise channel k everywhere, watch the score."""
    model = tiny_vgg()
    x = rng.standard_normal((2, 3, 32, 32))
    res = grad_cam(model, x, 5, layer=layer)
    a = model.features(x, layer)
    head = _head(model, layer)
    _, K, h, w = a.shape
    eps = 1e-5
    fd = np.empty((2, K))
    for k in range(K):
        e = np.zeros_like(a)
        e[:, k] = eps
        fd[:, k] = (head(a + e)[:, 5] - head(a - e)[:, 5]) / (2 * eps) / (h * w)
    assert np.abs(fd).max() > 0
    assert rel_error(res.weights, fd) < 1e-6
    # the map is ReLU(sum_k alpha_k A_k) of the layer's own activations, then resized
    assert np.allclose(res.cam, np.maximum(np.einsum("nk,nkij->nij", fd, a), 0), atol=1e-8 * np.abs(res.cam).max())
    assert res.heatmap.shape == (2, 32, 32) and res.heatmap.min() >= 0
    # negative control: the weights of another class are not these
    assert rel_error(grad_cam(model, x, 4, layer=layer).weights, fd) > 1e-2


def test_grad_cam_invariant_to_permuting_the_layers_channels(tiny_vgg, rng):
    """Permute conv3_1's filters and conv3_2's input channels the same way: the network computes the
    same function, Grad-CAM at relu3_1 gives the same map and permuted weights. Permuting only
    conv3_1 changes the function and the map (the control)."""
    model = tiny_vgg()
    x = rng.standard_normal((1, 3, 32, 32))
    ref = grad_cam(model, x, 2, layer="relu3_1")
    perm = rng.permutation(model.params["conv3_1.w"].shape[0])
    w1, b1, w2 = (model.params[k].copy() for k in ("conv3_1.w", "conv3_1.b", "conv3_2.w"))
    model.params["conv3_1.w"][...] = w1[perm]
    model.params["conv3_1.b"][...] = b1[perm]
    broken = grad_cam(model, x, 2, layer="relu3_1")
    model.params["conv3_2.w"][...] = w2[:, perm]
    same = grad_cam(model, x, 2, layer="relu3_1")
    assert np.allclose(same.cam, ref.cam, rtol=1e-10, atol=1e-12)
    assert np.allclose(same.weights, ref.weights[:, perm], rtol=1e-10, atol=1e-14)
    assert not np.allclose(broken.cam, ref.cam, rtol=1e-3)


def test_grad_cam_scales_with_the_class_score_and_ignores_its_bias(tiny_vgg, rng):
    """S_c -> a S_c + b (fc8 column c scaled by a > 0, bias shifted) scales the map by a."""
    model = tiny_vgg()
    x = rng.standard_normal((1, 3, 32, 32))
    ref = grad_cam(model, x, 7, layer="relu4_1")
    assert ref.cam.max() > 0
    model.params["fc8.w"][:, 7] *= 3.0
    model.params["fc8.b"][7] += 11.0
    assert np.allclose(grad_cam(model, x, 7, layer="relu4_1").heatmap, 3.0 * ref.heatmap, rtol=1e-10)
    model.params["fc8.w"][:, 7] *= -1.0  # negative control: a < 0 is not a rescaling of the same evidence
    assert not np.allclose(grad_cam(model, x, 7, layer="relu4_1").heatmap, -3.0 * ref.heatmap)


def test_bilinear_matrix():
    m = bilinear_matrix(32, 4)
    assert np.allclose(m.sum(axis=1), 1)                 # constants stay constant
    assert np.array_equal(bilinear_matrix(5, 5), np.eye(5))  # same size: the identity
    ramp = np.arange(4.0)
    up = m @ ramp                                        # a linear ramp stays linear away from the clamped edges
    u = (np.arange(32) + 0.5) * 4 / 32 - 0.5
    inside = (u >= 0) & (u <= 3)
    assert np.allclose(up[inside], u[inside])
    assert not np.allclose(bilinear_matrix(32, 4) @ ramp, np.repeat(ramp, 8))  # control: not nearest-neighbour


def test_grad_cam_bad_arguments(tiny_vgg):
    model = tiny_vgg()
    x = np.zeros((1, 3, 32, 32))
    with pytest.raises(ValueError, match="conv/relu/pool"):
        grad_cam(model, x, 0, layer="fc7")
    with pytest.raises(ValueError, match="class_index"):
        grad_cam(model, x, 10)
    with pytest.raises(KeyError):
        grad_cam(model, x, 0, layer="conv9_9")
    assert grad_cam(model, x, 0).layer == "relu5_2"  # VGG-11's last conv-part ReLU


# -- maximally activating patches -------------------------------------------------------------------------

def _textbook_box(specs, layer, row, col, S):
    """Receptive field by the jump/size/centre recurrence (Dumoulin & Visin; the lecture's 7x7 for three 3x3):
    j_out = j s, r_out = r + (k - 1) j, centre_out = centre + ((k - 1)/2 - p) j."""
    j, r, start = 1, 1, 0.0
    for s in specs:
        if s.kind in ("conv", "pool"):
            r, start, j = r + (s.kernel - 1) * j, start + ((s.kernel - 1) / 2 - s.pad) * j, j * s.stride
        if s.name == layer:
            break
    half = (r - 1) / 2
    lo_r, lo_c = int(round(start + row * j - half)), int(round(start + col * j - half))
    return max(lo_r, 0), min(lo_r + r - 1, S - 1), max(lo_c, 0), min(lo_c + r - 1, S - 1)


@pytest.mark.parametrize("layer,channel", [("relu3_1", 5), ("pool2", 1), ("conv4_2", 0)])
def test_top_patches_are_the_datasets_maxima_with_their_fields(tiny_vgg, rng, layer, channel):
    model = tiny_vgg()
    x = rng.standard_normal((23, 3, 32, 32))
    res = top_patches(model, x, layer, channel, k=5, batch_size=7)
    # brute force, one image at a time (another batching, so equal up to rounding, not bit for bit)
    a = np.concatenate([model.features(x[n:n + 1], layer)[:, channel] for n in range(len(x))])  # (N, H, W)
    for i, r, c, v in zip(res.index, res.row, res.col, res.activation):
        assert v == pytest.approx(a[i, r, c], rel=1e-12) and a[i, r, c] == a[i].max()
    per_image = a.reshape(len(x), -1).max(axis=1)
    assert res.activation[0] == pytest.approx(per_image.max(), rel=1e-12)
    assert list(res.index) == list(np.argsort(-per_image, kind="stable")[:5])
    assert np.allclose(res.activation, np.sort(per_image)[::-1][:5], rtol=1e-12)
    for (i, r, c, box, crop) in zip(res.index, res.row, res.col, res.boxes, res.crops):
        assert box == _textbook_box(model.specs, layer, r, c, 32)
        r0, r1, c0, c1 = box
        assert np.array_equal(crop, x[i, :, r0:r1 + 1, c0:c1 + 1])


def test_top_patches_controls(tiny_vgg, rng):
    """A ReLU network with zero biases is positively homogeneous: 3 x an image fires its units 3 x as
    hard, so appended to the dataset it must win, with three times the value."""
    model = tiny_vgg()
    for key, p in model.params.items():
        if key.endswith(".b"):
            p[...] = 0.0
    x = rng.standard_normal((12, 3, 32, 32))
    res = top_patches(model, x, "relu3_1", 2, k=3)
    j = int(res.index[2])
    boosted = np.concatenate([x, 3.0 * x[j:j + 1]])
    top = top_patches(model, boosted, "relu3_1", 2, k=1)
    assert top.index[0] == 12 and top.activation[0] == pytest.approx(3.0 * res.activation[2], rel=1e-12)
    # the box check is sharp: a field computed without the convs' padding is another box
    nopad = [dataclasses.replace(s, pad=0) for s in model.specs]
    r, c = int(res.row[0]), int(res.col[0])
    assert _textbook_box(nopad, "relu3_1", r, c, 32) != res.boxes[0]
    with pytest.raises(ValueError, match="channels"):
        top_patches(model, x, "relu3_1", 99)
    with pytest.raises(ValueError, match="k"):
        top_patches(model, x, "relu3_1", 0, k=13)


def test_receptive_recurrence_matches_hand_numbers():
    """The test's own recurrence against numbers derived by hand (not by minivgg)."""
    specs = VGG("vgg16", init="none", input_size=224, width=1 / 16, fc_width=8).specs
    r0, r1, _, _ = _textbook_box(specs, "conv1_2", 10, 10, 10 ** 6)
    assert (r0, r1) == (8, 12)  # two 3x3: 5 px centred on the unit
    r0, r1, _, _ = _textbook_box(specs, "pool5", 3, 3, 10 ** 6)
    assert r1 - r0 + 1 == 212


# -- one class model per class --------------------------------------------------------------------------

def test_class_models_batch_equals_separate_runs(tiny_vgg):
    model = tiny_vgg(dropout=0.0)
    start = np.random.default_rng(1).standard_normal((3, 3, 32, 32))
    both = class_models(model, [4, 0, 4], steps=6, lr=0.01, l2=1e-3, start=start)
    assert both.images.shape == (3, 3, 32, 32) and both.scores.shape == (7, 3)
    for k, c in enumerate([4, 0, 4]):
        one = class_model(model, c, steps=6, lr=0.01, l2=1e-3, start=start[k:k + 1])
        assert np.allclose(both.images[k], one.image[0], rtol=1e-10, atol=1e-12)
        assert np.allclose(both.scores[:, k], one.scores, rtol=1e-10)
    assert np.all(np.diff(both.objective, axis=0) > 0)  # small steps: every ascent rises
    # negative control: image 0 (class 4) is not class 0's ascent
    other = class_model(model, 0, steps=6, lr=0.01, l2=1e-3, start=start[0:1])
    assert not np.allclose(both.images[0], other.image[0], rtol=1e-6)
    assert class_models(model, steps=0).images.shape[0] == 10  # default: every class
    with pytest.raises(ValueError, match="classes"):
        class_models(model, [10], steps=1)


# -- the command: new kinds, and real weight files ------------------------------------------------------

TINY_CLI = ["--arch", "vgg11", "--input-size", "32", "--width", "0.125", "--num-classes", "4", "--fc-width", "8"]


@pytest.mark.parametrize("extra", [["guided"], ["gradcam", "--layer", "relu3_2"], ["patches", "--dataset-size", "20"],
                                   ["class-model", "--all-classes", "--steps", "3", "--lr", "0.1"]])
def test_cli_new_kinds_write_a_picture(tmp_path, extra):
    pytest.importorskip("matplotlib")
    from minivgg.cli import main

    out = tmp_path / "pic.png"
    assert main(["visualize", *extra, *TINY_CLI, "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv", [["patches", "--dataset-size", "5", "--top", "6"],
                                  ["patches", "--layer", "fc6", "--dataset-size", "5"],
                                  ["patches", "--channel", "99", "--dataset-size", "5"],
                                  ["gradcam", "--layer", "conv9_9"]])
def test_cli_new_kinds_bad_arguments_exit_2(tmp_path, argv, capsys):
    from minivgg.cli import main

    assert main(["visualize", *argv, *TINY_CLI, "--out", str(tmp_path / "x.png")]) == 2
    assert not (tmp_path / "x.png").exists()
    assert capsys.readouterr().err.strip().count("\n") == 0  # one line


def _safetensors(path, tensors):
    """The documented layout, written here: u64 LE header length, JSON header, the raw little-endian data."""
    import json
    import struct

    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        raw = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def test_weights_files_give_the_same_pictures(tmp_path, rng):
    """A torchvision-layout .pth (minivgg's own writer) and a .safetensors of one model's weights load into
    a model whose saliency and Grad-CAM equal the original's; the command draws from both; a file whose
    fc6 does not fit is refused with exit status 2."""
    pytest.importorskip("matplotlib")
    from minivgg.cli import main
    from minivgg.io.torch_write import write_torch_state_dict
    from minivgg.io.torchvision import to_torchvision
    from minivgg.io.weights import load_model

    model = VGG("vgg11", num_classes=4, input_size=32, width=0.125, fc_width=8, seed=3)
    state = to_torchvision(model.params, model.config)
    pth, st = tmp_path / "w.pth", tmp_path / "w.safetensors"
    write_torch_state_dict(pth, state)
    _safetensors(st, state)
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    for path in (pth, st):
        loaded = load_model(path)
        assert (loaded.input_size, loaded.num_classes, loaded.width) == (32, 4, 0.125)
        assert np.array_equal(input_gradient(loaded, x, 2), input_gradient(model, x, 2))
        assert np.array_equal(grad_cam(loaded, x, 2, "relu3_1").cam, grad_cam(model, x, 2, "relu3_1").cam)
        for kind in ("saliency", "gradcam"):
            out = tmp_path / f"{path.suffix[1:]}-{kind}.png"
            assert main(["visualize", kind, "--weights", str(path), "--out", str(out)]) == 0
            assert out.read_bytes()[:4] == b"\x89PNG"
    # negative control: the loaded model really is the file's (other weights give another gradient)
    other = VGG("vgg11", num_classes=4, input_size=32, width=0.125, fc_width=8, seed=4)
    assert not np.array_equal(input_gradient(other, x, 2), input_gradient(model, x, 2))
    bad = dict(state)
    bad["classifier.0.weight"] = np.zeros((8, 65), np.float32)
    write_torch_state_dict(tmp_path / "bad.pth", bad)
    assert main(["visualize", "saliency", "--weights", str(tmp_path / "bad.pth"), "--out",
                 str(tmp_path / "bad.png")]) == 2
    assert not (tmp_path / "bad.png").exists()
