"""Ensembles and flip averaging against hand-computed probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from minivgg.training import evaluate as ev
from minivgg.vgg import VGG


class FixedLogits:
    """A stand-in model returning given logits for images identified by their first pixel."""

    def __init__(self, rows):
        self.rows = np.asarray(rows, dtype=np.float64)

    def forward(self, x, train=False):
        idx = x[:, 0, 0, 0].astype(int)  # image i carries i in its first pixel
        return self.rows[idx]


def images(n):
    x = np.zeros((n, 1, 2, 2))
    x[:, 0, 0, 0] = np.arange(n)
    return x


def test_predict_proba_is_the_softmax_of_the_logits():
    # logits log(p) give back p exactly up to rounding: p = [0.2, 0.3, 0.5]
    model = FixedLogits(np.log([[0.2, 0.3, 0.5], [0.7, 0.2, 0.1]]))
    p = ev.predict_proba(model, images(2), batch_size=1)
    np.testing.assert_allclose(p, [[0.2, 0.3, 0.5], [0.7, 0.2, 0.1]], rtol=1e-12)


def test_ensemble_averages_probabilities_as_computed_by_hand():
    a = FixedLogits(np.log([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]))
    b = FixedLogits(np.log([[0.6, 0.3, 0.1], [0.1, 0.1, 0.8]]))
    c = FixedLogits(np.log([[0.1, 0.8, 0.1], [0.4, 0.4, 0.2]]))
    mean, members = ev.ensemble_proba([a, b, c], images(2))
    # by hand: image 0: (0.2+0.6+0.1)/3, (0.3+0.3+0.8)/3, (0.5+0.1+0.1)/3
    np.testing.assert_allclose(mean, [[0.3, 1.4 / 3, 0.7 / 3], [1.1 / 3, 0.8 / 3, 1.1 / 3]], rtol=1e-12)
    assert len(members) == 3
    np.testing.assert_allclose(members[1], [[0.6, 0.3, 0.1], [0.1, 0.1, 0.8]], rtol=1e-12)


def test_ensemble_averages_probabilities_not_logits():
    # negative control: averaging logits would pick another class here.
    # model a is very sure of class 0; model b mildly prefers class 1 with a huge negative logit on 0.
    a = FixedLogits([[10.0, 0.0, 0.0]])
    b = FixedLogits([[-30.0, 1.0, 0.0]])
    mean, _ = ev.ensemble_proba([a, b], images(1))
    logit_avg = np.array([[-10.0, 0.5, 0.0]])
    assert logit_avg.argmax() == 1
    assert mean.argmax() == 0  # probabilities: ~(0.5, 0.37, 0.13)
    pa = np.exp([10.0, 0, 0]) / np.exp([10.0, 0, 0]).sum()
    pb = np.exp([-30.0, 1, 0]) / np.exp([-30.0, 1, 0]).sum()
    np.testing.assert_allclose(mean[0], (pa + pb) / 2, rtol=1e-12)


def test_ensemble_report_members_vs_ensemble():
    # three members, each wrong on a different image; the average is right on all three
    p = {  # rows: probabilities for images 0, 1, 2 (true classes 0, 1, 2)
        "a": [[0.4, 0.6, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        "b": [[1.0, 0.0, 0.0], [0.0, 0.4, 0.6], [0.0, 0.0, 1.0]],
        "c": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.6, 0.0, 0.4]],
    }
    models = [FixedLogits(np.log(np.clip(p[k], 1e-300, None))) for k in "abc"]
    report = ev.evaluate_ensemble(models, images(3), np.array([0, 1, 2]))
    assert report.member_acc == pytest.approx([2 / 3, 2 / 3, 2 / 3])
    assert report.ensemble_acc == 1.0 and report.best_member_acc == pytest.approx(2 / 3)
    assert report.gain == pytest.approx(1 / 3)
    text = ev.format_ensemble_report(report, ["a", "b", "c"])
    assert "100.00%" in text and "+33.33 points" in text


class LeftRight:
    """Logits [sum of the left column, sum of the right column]: a mirror swaps them."""

    def forward(self, x, train=False):
        return np.stack([x[:, 0, :, 0].sum(1), x[:, 0, :, 1].sum(1)], axis=1)


def test_flip_averaging_by_hand():
    x = np.array([[[[np.log(3.0), 0.0], [0.0, 0.0]]]])  # left column sums to ln 3, right to 0
    plain = ev.predict_proba(LeftRight(), x)
    np.testing.assert_allclose(plain, [[0.75, 0.25]], rtol=1e-12)  # softmax(ln 3, 0) = (3/4, 1/4)
    flipped = ev.predict_proba(LeftRight(), x, flip=True)
    np.testing.assert_allclose(flipped, [[0.5, 0.5]], rtol=1e-12)  # ((3/4 + 1/4)/2, (1/4 + 3/4)/2)
    assert not np.allclose(plain, flipped)  # the flip really changed something


def test_transform_is_applied_per_batch():
    seen = []

    def transform(xb):
        seen.append(len(xb))
        return xb + 1.0  # shifts every index by one

    model = FixedLogits(np.log([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8], [0.3, 0.7]]))
    p = ev.predict_proba(model, images(3), transform=transform, batch_size=2)
    np.testing.assert_allclose(p, [[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]], rtol=1e-12)
    assert seen == [2, 1]


def test_loss_and_accuracy_by_hand():
    model = FixedLogits(np.log([[0.5, 0.5], [0.8, 0.2], [0.25, 0.75]]))
    loss, acc = ev.loss_and_accuracy(model, images(3), np.array([0, 0, 0]), batch_size=2)
    assert loss == pytest.approx(-(np.log(0.5) + np.log(0.8) + np.log(0.25)) / 3, rel=1e-12)
    assert acc == pytest.approx(2 / 3)  # image 0 is a tie: argmax picks class 0


def test_on_a_real_vgg_flip_and_ensemble_agree_with_direct_forwards():
    rng = np.random.default_rng(0)
    models = [VGG("vgg11", num_classes=4, input_size=32, width=0.0625, fc_width=8, dtype=np.float64, seed=s)
              for s in (0, 1)]
    x = rng.standard_normal((3, 3, 32, 32))

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    by_hand = [(softmax(m.forward(x)) + softmax(m.forward(x[..., ::-1].copy()))) / 2 for m in models]
    mean, members = ev.ensemble_proba(models, x, flip=True)
    np.testing.assert_allclose(members[0], by_hand[0], rtol=1e-12)
    np.testing.assert_allclose(mean, (by_hand[0] + by_hand[1]) / 2, rtol=1e-12)


def test_bad_input_is_reported():
    model = FixedLogits(np.log([[0.5, 0.5]]))
    with pytest.raises(ValueError, match="no models"):
        ev.ensemble_proba([], images(1))
    with pytest.raises(ValueError, match="number of classes"):
        ev.ensemble_proba([model, FixedLogits(np.log([[0.2, 0.3, 0.5]]))], images(1))
    with pytest.raises(ValueError, match="out of range"):
        ev.evaluate_ensemble([model], images(1), np.array([5]))
    with pytest.raises(ValueError, match="labels must be 1 integers"):
        ev.loss_and_accuracy(model, images(1), np.array([0.0]))
    with pytest.raises(ValueError, match="batch_size"):
        ev.predict_proba(model, images(1), batch_size=0)
    with pytest.raises(ValueError, match="images"):
        ev.predict_proba(model, np.zeros((2, 2)))
