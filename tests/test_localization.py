"""Localization (paper Appendix A): the SCR/PCR heads, fine-tuning, the self-contained checkpoint, the metric."""

from __future__ import annotations

import numpy as np
import pytest

from minivgg import ops
from minivgg.gradcheck import numerical_gradient, rel_error
from minivgg.io.files import CheckpointError
from minivgg.training import TrainConfig, load_dataset, recipe_config, save_checkpoint, train
from minivgg.training.data import SHAPE_CLASSES
from minivgg.training.data import shapes as shapes_mod
from minivgg.training.localization import (LocConfig, LocTrainer, Localizer, load_localizer, localization_correct,
                                           localization_error, localization_error_with_classes,
                                           regressor_from_classifier, save_localizer, select_boxes,
                                           select_boxes_backward)
from minivgg.training.localization.finetune import _mirror
from minivgg.training.localization.head import FC8_INIT_STD, trainable_params

RNG = np.random.default_rng(3)


# ---------------------------------------------------------------- heads

def test_pcr_selects_the_class_columns_and_backward_scatters_into_them():
    out = np.arange(2 * 12, dtype=np.float64).reshape(2, 12)  # 3 classes x 4
    boxes, cache = select_boxes(out, np.array([2, 0]), "pcr")
    assert boxes.tolist() == [[8, 9, 10, 11], [12, 13, 14, 15]]
    d = select_boxes_backward(np.ones((2, 4)), cache)
    assert d.tolist() == [[0] * 8 + [1] * 4, [1] * 4 + [0] * 8]
    scr, _ = select_boxes(out[:, :4], None, "scr")
    assert np.array_equal(scr, out[:, :4])


def test_pcr_loss_gradient_through_the_selection_float64():
    out, labels, target = RNG.standard_normal((5, 12)), np.array([0, 2, 1, 2, 0]), RNG.random((5, 4))

    def f(z):
        return ops.l2_loss(select_boxes(z, labels, "pcr")[0], target)[0]

    boxes, cache = select_boxes(out, labels, "pcr")
    _, dboxes = ops.l2_loss(boxes, target)
    dout = select_boxes_backward(dboxes, cache)
    assert rel_error(dout, numerical_gradient(f, out)) < 1e-7
    # negative control: scattering into the wrong class's columns is caught
    wrong = select_boxes_backward(dboxes, cache._replace(cols=4 * ((labels + 1) % 3)))
    assert rel_error(wrong, numerical_gradient(f, out)) > 1e-2


def test_select_boxes_bad_input():
    with pytest.raises(ValueError, match="SCR predicts 4"):
        select_boxes(np.zeros((2, 8)), None, "scr")
    with pytest.raises(ValueError, match="multiple of 4"):
        select_boxes(np.zeros((2, 10)), np.array([0, 1]), "pcr")
    with pytest.raises(ValueError, match="one integer class per image"):
        select_boxes(np.zeros((2, 8)), None, "pcr")
    with pytest.raises(ValueError, match="out of range for 2"):
        select_boxes(np.zeros((2, 8)), np.array([0, 2]), "pcr")
    with pytest.raises(ValueError, match="regression must be"):
        select_boxes(np.zeros((2, 4)), None, "rcnn")


def test_regressor_copies_everything_but_fc8(tiny_vgg):
    cls = tiny_vgg(dtype=np.float32)
    before = {k: v.copy() for k, v in cls.params.items()}
    for regression, width in (("scr", 4), ("pcr", 40)):
        reg = regressor_from_classifier(cls, regression, seed=1)
        assert reg.params["fc8.w"].shape == (16, width) and reg.params["fc8.w"].dtype == np.float32
        for k, v in cls.params.items():
            if not k.startswith("fc8."):
                assert np.array_equal(reg.params[k], v) and reg.params[k] is not v
        assert not reg.params["fc8.b"].any()
    w = regressor_from_classifier(tiny_vgg(num_classes=10, fc_width=512), "pcr").params["fc8.w"]
    assert abs(w.std() - FC8_INIT_STD) < 0.01 and abs(w.mean()) < 0.01  # the paper's N(0, 1e-2)
    assert all(np.array_equal(before[k], v) for k, v in cls.params.items())  # the classifier is untouched
    assert sorted(trainable_params(reg, "fc")) == ["fc6.b", "fc6.w", "fc7.b", "fc7.w", "fc8.b", "fc8.w"]
    assert len(trainable_params(reg, "all")) == len(reg.params)


# ---------------------------------------------------------------- metric

def test_localization_error_by_hand():
    gt = np.array([[0.5, 0.5, 0.4, 0.4]] * 4)
    pred = np.array([[0.5, 0.5, 0.4, 0.4],  # identical: correct
                     [0.5, 0.5, 0.2, 0.4],  # IoU 0.5 exactly: NOT correct (> 0.5 is)
                     [0.5, 0.5, 0.3, 0.4],  # IoU 0.75: correct
                     [0.5, 0.5, -0.4, 0.4]])  # negative width: wrong, not an error
    assert localization_correct(pred, gt).tolist() == [True, False, True, False]
    assert localization_error(pred, gt) == 0.5
    assert localization_error_with_classes(pred, gt, np.array([0, 0, 1, 0]), np.array([0, 0, 0, 0])) == 0.75
    with pytest.raises(ValueError, match="zero or negative"):
        localization_error(pred, pred)  # a degenerate ground truth is a data error


def test_mirrored_box_is_the_box_of_the_mirrored_drawing():
    _, _, px, cover = shapes_mod._generate(50, 9, 32, SHAPE_CLASSES, coverage=True)
    norm = ops.xyxy_to_cxcywh(px / 32)
    mirrored = ops.cxcywh_to_xyxy(_mirror(norm, np.ones(50, bool))) * 32
    centres = np.arange(32) + 0.5
    for i in range(50):
        rows, cols = np.nonzero(cover[i][:, ::-1] >= 0.5)  # pixels inside the mirrored figure
        x0, y0, x1, y1 = mirrored[i]
        assert x0 - 1e-4 <= centres[cols].min() and centres[cols].max() <= x1 + 1e-4
        assert y0 - 1e-4 <= centres[rows].min() and centres[rows].max() <= y1 + 1e-4
    # control: the unmirrored box does not contain the mirrored drawing for off-centre shapes
    off = np.abs(norm[:, 0] - 0.5) > 0.1
    assert off.any()
    bad = [i for i in np.flatnonzero(off)
           if centres[np.nonzero(cover[i][:, ::-1] >= 0.5)[1]].min() < px[i, 0] - 1e-4
           or centres[np.nonzero(cover[i][:, ::-1] >= 0.5)[1]].max() > px[i, 2] + 1e-4]
    assert len(bad) == off.sum()


# ---------------------------------------------------------------- fine-tuning and the checkpoint

@pytest.fixture(scope="module")
def small():
    """A tiny shapes set and a tiny classifier trained on it for one epoch."""
    data = load_dataset("shapes", n_train=96, n_val=48)
    cls = train(data, TrainConfig(epochs=1, batch_size=32), arch=recipe_config(data, width=1 / 16, fc_width=16))
    return data, cls.model


@pytest.mark.parametrize("finetune", ["fc", "all"])
def test_finetune_updates_only_what_it_should(small, finetune):
    data, cls = small
    t = LocTrainer(cls, data, data.preprocess, LocConfig(regression="pcr", finetune=finetune, epochs=1, batch_size=32))
    start = {k: v.copy() for k, v in t.regressor.params.items()}
    result = t.fit()
    e = result.final
    for key in ("val_loc_error", "val_loc_error_pred", "train_loc_error"):
        assert 0.0 <= e[key] <= 1.0
    # same box where the class is right, always an error where it is wrong: never below protocol 1
    assert e["val_loc_error_pred"] >= e["val_loc_error"]
    changed = {k for k, v in t.regressor.params.items() if not np.array_equal(v, start[k])}
    fc = {k for k in start if k.startswith("fc")}
    assert changed == (fc if finetune == "fc" else set(start))


def test_fc_only_cached_features_equal_the_full_forward(small):
    data, cls = small
    t = LocTrainer(cls, data, data.preprocess, LocConfig(finetune="fc", epochs=1))
    idx, flip = np.array([3, 0, 7]), np.array([True, False, True])
    via_cache = t._step_outputs(idx, flip)
    t.regressor.layers.clear_caches()
    xb = data.x_train[idx].copy()
    xb[flip] = xb[flip, :, :, ::-1]
    assert np.allclose(via_cache, t.regressor.forward(data.preprocess(xb)), atol=1e-5)


def test_localizer_checkpoint_is_self_contained(small, tmp_path):
    data, cls = small
    t = LocTrainer(cls, data, data.preprocess, LocConfig(regression="scr", epochs=1))
    t.fit()
    path = save_localizer(tmp_path / "loc.npz", t.localizer, {"note": "test"})
    loc, ckpt = load_localizer(path)
    a, b = t.localizer.predict(data.x_val, data.y_val), loc.predict(data.x_val, data.y_val)
    assert np.array_equal(a.classes, b.classes) and np.array_equal(a.boxes, b.boxes)
    assert np.array_equal(a.probs, b.probs)  # the classifier came back from the same file
    assert ckpt.meta["regression"] == "scr" and ckpt.meta["note"] == "test"
    # a classification checkpoint is refused with the way to make a localizer
    save_checkpoint(tmp_path / "cls.npz", cls, {"preprocess": data.preprocess.to_json(), "data": data.info})
    with pytest.raises(CheckpointError, match="not a localization checkpoint.*--task localize"):
        load_localizer(tmp_path / "cls.npz")


def test_loc_trainer_refuses_data_without_boxes_or_other_classes(small):
    data, cls = small
    import dataclasses

    no_boxes = dataclasses.replace(data, boxes_train=None)
    with pytest.raises(ValueError, match="no bounding boxes"):
        LocTrainer(cls, no_boxes, data.preprocess)
    five = load_dataset("shapes", n_train=10, n_val=10, classes=SHAPE_CLASSES[:5])
    with pytest.raises(ValueError, match="10 classes but the shapes data have 5"):
        LocTrainer(cls, five, data.preprocess)
    with pytest.raises(ValueError, match="regression"):
        LocConfig(regression="box")
    with pytest.raises(ValueError, match="finetune"):
        LocConfig(finetune="conv")
    with pytest.raises(ValueError, match="Localizer: a PCR regressor for 10 classes has 40"):
        Localizer(cls, cls, "pcr", data.preprocess, data.class_names)


def test_dataset_boxes_and_aux_arrays(small, tmp_path):
    import dataclasses

    from minivgg.io.npz import read_minivgg, write_minivgg

    data, cls = small
    assert data.has_boxes and data.boxes("val").shape == (len(data.x_val), 4)
    with pytest.raises(ValueError, match="no bounding boxes"):
        dataclasses.replace(data, name="cifar10", boxes_val=None).boxes("val")
    path = write_minivgg(tmp_path / "w.npz", cls.config, cls.params, aux={"extra.a": np.arange(3.0)})
    assert read_minivgg(path).aux["extra.a"].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="auxiliary array extra.a must be numeric and finite"):
        write_minivgg(tmp_path / "bad.npz", cls.config, cls.params, aux={"extra.a": np.array([np.nan])})
