"""The math behind each picture of minivgg.visualize (not its pixels).

Input gradients against centered differences (float64), effective receptive
fields against the analytic field, class-model ascent monotonicity, and
occlusion against saliency. Each checker has a negative control.
"""

from __future__ import annotations

import numpy as np
import pytest

from minivgg import VGG
from minivgg.gradcheck.numerical import numerical_gradient, rel_error
from minivgg.visualize import (class_model, effective_receptive_field, feature_maps, first_layer_filters,
                               input_gradient, occlusion_map, receptive_box, saliency)
from minivgg.visualize.gradients import scores


def _coords(rng, shape, n):
    flat = rng.choice(int(np.prod(shape)), size=n, replace=False)
    return [tuple(int(i) for i in np.unravel_index(f, shape)) for f in flat]


def _fd(model, x, target, layer, coords):
    return numerical_gradient(lambda z: float(scores(model, z, target, layer).sum()), x, 1e-5, index=coords)


@pytest.mark.parametrize("target,layer", [(3, None), ((1, 2, 1), "conv3_1"), ((5,), "fc7")])
def test_input_gradient_matches_finite_differences(tiny_vgg, rng, target, layer):
    model = tiny_vgg()  # dropout 0.5: the check also proves the gradient is the inference-mode one
    x = rng.standard_normal((2, 3, 32, 32))
    dx = input_gradient(model, x, target, layer)
    coords = _coords(rng, x.shape, 40)
    num = _fd(model, x, target, layer, coords)
    picked = np.array([dx[c] for c in coords])
    expect = np.array([num[c] for c in coords])
    assert np.abs(expect).max() > 0  # the check is not of zeros against zeros
    assert rel_error(picked, expect) < 1e-6


def test_input_gradient_negative_control(tiny_vgg, rng):
    """The same check rejects the gradient of another class and a train-mode (dropout) gradient."""
    model = tiny_vgg()
    x = rng.standard_normal((1, 3, 32, 32))
    coords = _coords(rng, x.shape, 40)
    num = np.array([_fd(model, x, 3, None, coords)[c] for c in coords])
    wrong_class = input_gradient(model, x, 4)
    assert rel_error(np.array([wrong_class[c] for c in coords]), num) > 1e-2
    logits = model.layers.forward(x, train=True)  # dropout active: not the score the picture is about
    d = np.zeros_like(logits)
    d[0, 3] = 1.0
    dropout_dx = model.layers.backward(d)
    assert rel_error(np.array([dropout_dx[c] for c in coords]), num) > 1e-2


def test_input_gradient_bad_target(tiny_vgg):
    model = tiny_vgg()
    x = np.zeros((1, 3, 32, 32))
    with pytest.raises(ValueError, match="outside"):
        input_gradient(model, x, 10)
    with pytest.raises(ValueError, match="3 integer"):
        input_gradient(model, x, 1, layer="conv1_1")
    with pytest.raises(KeyError):
        input_gradient(model, x, 1, layer="conv9_9")


def test_saliency_is_max_abs_channel_gradient(tiny_vgg, rng):
    model = tiny_vgg()
    x = rng.standard_normal((2, 3, 32, 32))
    coords = [(n, c, i, j) for n in range(2) for c in range(3) for (i, j) in [(5, 7), (16, 16), (30, 2)]]
    num = _fd(model, x, 2, None, coords)
    sal = saliency(model, x, 2)
    assert sal.shape == (2, 32, 32)
    for n in range(2):
        for (i, j) in [(5, 7), (16, 16), (30, 2)]:
            assert sal[n, i, j] == pytest.approx(np.abs(num[n, :, i, j]).max(), rel=1e-6, abs=1e-12)


def test_receptive_box_textbook_numbers():
    # Hand-derived: two 3x3 convs see 5x5, three see 7x7 (the lecture); pool5 of VGG-16 sees 212 px.
    specs = VGG("vgg16", init="none", input_size=224, width=1 / 16, fc_width=8).specs
    r0, r1, c0, c1 = receptive_box(specs, "conv1_2", 10, 10)
    assert (r1 - r0 + 1, c1 - c0 + 1) == (5, 5) and (r0, c0) == (8, 8)
    r0, r1, _, _ = receptive_box(specs, "pool5", 3, 3)
    assert r1 - r0 + 1 == 212
    assert receptive_box(specs, "conv1_2", 0, 0, clip=224) == (0, 2, 0, 2)


def _positive_model(config="vgg16"):
    """Positive weights and biases with a positive input keep every ReLU open (no data-dependent zeros)."""
    model = VGG(config, num_classes=3, input_size=32, width=1 / 16, fc_width=8, dtype=np.float64, seed=1)
    for key, p in model.params.items():
        p[...] = np.abs(p) + (0.05 if key.endswith(".b") else 0.0)
    return model


def _support(g):
    nz = np.argwhere(np.abs(g).sum(axis=(0, 1)) > 0)
    return set(map(tuple, nz))


def _box_set(box):
    r0, r1, c0, c1 = box
    return {(r, c) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)}


@pytest.mark.parametrize("layer,unit", [("conv1_2", (16, 16)), ("conv1_2", (0, 0)), ("relu1_2", (31, 5))])
def test_erf_support_equals_analytic_field_without_pools(rng, layer, unit):
    """Before any pool, with every ReLU open, the gradient is non-zero exactly on the clipped field."""
    model = _positive_model()
    x = rng.uniform(0.1, 1.0, (1, 3, 32, 32))
    spec = next(s for s in model.specs if s.name == layer)
    dout = np.zeros((1, *spec.out_shape))
    dout[0, :, unit[0], unit[1]] = 1.0
    g = model.input_gradient(x, dout, layer=layer)
    box = receptive_box(model.specs, layer, *unit, clip=32)
    assert _support(g) == _box_set(box)
    # negative control: a field computed as if the convs had no padding is a different set
    r0, r1, c0, c1 = box
    assert _support(g) != _box_set((r0 + 1, r1 + 1, c0 + 1, c1 + 1))


@pytest.mark.parametrize("layer", ["pool2", "conv3_2", "pool5"])
def test_erf_support_inside_analytic_field_with_pools(rng, layer):
    """Max-pool routes each window's gradient to one pixel, so the support can only shrink: subset, never out."""
    model = _positive_model()
    x = rng.uniform(0.1, 1.0, (2, 3, 32, 32))
    erf = effective_receptive_field(model, x, layer)
    support = set(map(tuple, np.argwhere(erf.heatmap > 0)))
    assert support and support <= _box_set(erf.box)
    assert erf.mass_inside == pytest.approx(1.0)
    assert 0 < erf.area_for_mass <= 1


@pytest.mark.parametrize("layer", ["pool2", "conv3_2"])
def test_erf_support_over_many_inputs_equals_analytic_field_with_pools(layer):
    """Luo et al. average the ERF over inputs: then max-pool's routing varies and the union of supports is the field.

    With 32 random positive inputs every pixel of the analytic field (16 px at pool2; 32 px at conv3_2, whose centre
    unit's field is clipped to 30 px by the 32x32 image) carries gradient to the centre unit for some input, and no pixel outside it ever does.
    """
    model = _positive_model()
    x = np.random.default_rng(0).uniform(0.1, 1.0, (32, 3, 32, 32))
    erf = effective_receptive_field(model, x, layer)
    support = set(map(tuple, np.argwhere(erf.heatmap > 0)))
    assert support == _box_set(erf.box)
    r0, r1, c0, c1 = erf.box
    u0, u1, _, _ = erf.unclipped
    assert u1 - u0 + 1 == {"pool2": 16, "conv3_2": 32}[layer]  # hand-derived: 3, 5, 6, 10, 14, 16, 24, 32
    assert (r1 - r0 + 1, c1 - c0 + 1) == {"pool2": (16, 16), "conv3_2": (30, 30)}[layer]  # clipped to the image
    # negative control: the same field one pixel off is a different set
    assert support != _box_set((r0 + 1, r1 + 1, c0, c1))


def test_erf_random_weights_mass_and_box(tiny_vgg, rng):
    model = tiny_vgg(config="vgg16")
    erf = effective_receptive_field(model, rng.standard_normal((4, 3, 32, 32)), "conv3_3")
    assert erf.unclipped[1] - erf.unclipped[0] + 1 == 40  # conv3_3 of VGG-16: 40 px (hand-derived)
    support = set(map(tuple, np.argwhere(erf.heatmap > 0)))
    assert support <= _box_set(erf.box)
    assert erf.area_for_mass < 1  # the mass concentrates: 90% of it sits on part of the field


def test_class_model_ascent_is_monotone(tiny_vgg):
    """Small steps from an image-scale start: S_c - lambda ||I||^2 rises at every step.

    (From the default 0.01-scale start the same lr is a large step relative to the image,
    and ReLU/max-pool kinks then make single steps go down: seen, so the start is explicit.)
    """
    model = tiny_vgg(dropout=0.0)
    start = np.random.default_rng(0).standard_normal((1, 3, 32, 32))
    res = class_model(model, 1, steps=15, lr=0.01, l2=1e-3, start=start)
    assert np.all(np.diff(res.objective) > 0)
    assert res.scores[-1] > res.scores[0]
    plain = class_model(model, 1, steps=15, lr=0.01, l2=0.0, start=start)  # lambda = 0: the raw score rises
    assert np.all(np.diff(plain.scores) > 0)
    # negative control: descent (the ascent's sign flipped by hand) makes the monotone check fail
    g = input_gradient(model, start, 1)
    down = start - 0.01 * g
    assert scores(model, down, 1)[0] < scores(model, start, 1)[0]


def test_occlusion_least_salient_regions_change_score_least(tiny_vgg):
    """Over 6 random tiny nets: the eighth of 4x4 patches with the least saliency mass drops the score
    less, on average, than the eighth with the most. An empirical link (saliency is first order and
    ignores signs), not a theorem, so it is tested on averages over patches, for a fixed seed."""
    rng = np.random.default_rng(5)
    p = 4
    for seed in range(6):
        model = tiny_vgg(seed=seed)
        x = rng.standard_normal((1, 3, 32, 32))
        c = int(model.layers.forward(x)[0].argmax())
        sal = saliency(model, x, c)[0]
        drop = np.abs(occlusion_map(model, x, c, patch=p, stride=p, fill=0.0)).ravel()
        R = 32 // p
        mass = sal.reshape(R, p, R, p).sum(axis=(1, 3)).ravel()
        order = np.argsort(mass)
        k = len(order) // 8
        assert drop[order[:k]].mean() < drop[order[-k:]].mean(), seed


def test_occlusion_map_by_hand(tiny_vgg, rng):
    model = tiny_vgg()
    x = rng.standard_normal((1, 3, 32, 32))
    drop = occlusion_map(model, x, 2, patch=16, stride=16, fill=0.0)
    assert drop.shape == (2, 2)
    y = x.copy()
    y[:, :, 16:, 0:16] = 0.0
    assert drop[1, 0] == pytest.approx(model.layers.forward(x)[0, 2] - model.layers.forward(y)[0, 2])


def test_feature_maps_and_filters(tiny_vgg, rng):
    model = tiny_vgg()
    x = rng.standard_normal((2, 3, 32, 32))
    fm = feature_maps(model, x, "relu2_1")
    assert fm.shape == (2, 8, 16, 16) and fm.min() >= 0
    f = first_layer_filters(model)
    assert f.shape == (4, 3, 3, 3)
    assert np.allclose(f.reshape(4, -1).min(axis=1), 0) and np.allclose(f.reshape(4, -1).max(axis=1), 1)
    with pytest.raises(ValueError, match="feature maps"):
        feature_maps(model, x, "fc6")


TINY_CLI = ["--arch", "vgg11", "--input-size", "32", "--width", "0.125", "--num-classes", "4", "--fc-width", "8"]


@pytest.mark.parametrize("kind", ["saliency", "erf"])
def test_cli_writes_a_picture(tmp_path, kind):
    pytest.importorskip("matplotlib")
    from minivgg.cli import main

    out = tmp_path / f"{kind}.png"
    assert main(["visualize", kind, *TINY_CLI, "--layer", "pool3", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left beside it


@pytest.mark.parametrize("argv", [["visualize", "nonsense", "--out", "x.png"],
                                  ["visualize", "saliency", "--out", "x.txt"],
                                  ["visualize", "erf", *TINY_CLI, "--layer", "conv9_9", "--out", "x.png"],
                                  ["visualize", "saliency", *TINY_CLI, "--class", "4", "--out", "x.png"]])
def test_cli_bad_arguments_exit_2(tmp_path, monkeypatch, argv):
    from minivgg.cli import main

    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors
        code = exc.code
    assert code == 2
    assert not (tmp_path / "x.png").exists()


def test_cli_checkpoint_pictures_a_validation_image(tmp_path, capsys):
    """train -> visualize: the checkpoint's own dataset supplies the image (its preprocessing applied)."""
    pytest.importorskip("matplotlib")
    from minivgg.cli import main

    run = tmp_path / "run"
    assert main(["train", "--data", "shapes", "--n-train", "64", "--n-val", "32", "--width", "0.0625",
                 "--fc-width", "16", "--epochs", "1", "--out", str(run)]) == 0
    out = tmp_path / "occ.png"
    assert main(["visualize", "occlusion", "--checkpoint", str(run / "checkpoint.npz"), "--index", "2",
                 "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert main(["visualize", "saliency", "--checkpoint", str(run / "checkpoint.npz"), "--index", "32",
                 "--out", str(out)]) == 2  # only 32 validation images
