"""Boxes for localization: IoU by hand, the squared-L2 loss (gradient check, torch parity), the shapes' exact boxes."""

from __future__ import annotations

import numpy as np
import pytest

from minivgg import ops
from minivgg.gradcheck import numerical_gradient, rel_error
from minivgg.training.data import SHAPE_CLASSES, make_shapes
from minivgg.training.data import shapes as shapes_mod

RNG = np.random.default_rng(7)


def _xyxy(*rows):
    return np.array(rows, dtype=np.float64)


# ---------------------------------------------------------------- box_iou

def test_iou_identical_disjoint_nested_touching():
    a = _xyxy([0, 0, 2, 2], [0, 0, 2, 2], [0, 0, 4, 4], [0, 0, 1, 1], [0, 0, 1, 1])
    b = _xyxy([0, 0, 2, 2], [3, 3, 5, 5], [1, 1, 3, 3], [1, 0, 2, 1], [1, 1, 2, 2])
    iou = ops.box_iou(a, b, fmt="xyxy")
    # identical 1; disjoint 0; nested: 4 / 16; touching along an edge 0; touching at a corner 0
    assert iou.tolist() == [1.0, 0.0, 0.25, 0.0, 0.0]


def test_iou_partial_overlap_by_hand():
    # A = [0, 4] x [0, 2] (area 8), B = [3, 5] x [1, 4] (area 6): intersection [3, 4] x [1, 2] = 1
    # IoU = 1 / (8 + 6 - 1) = 1/13
    iou = ops.box_iou(_xyxy([0, 0, 4, 2]), _xyxy([3, 1, 5, 4]), fmt="xyxy")
    assert iou[0] == pytest.approx(1 / 13, rel=1e-12)
    # the same boxes as (cx, cy, w, h): A = (2, 1, 4, 2), B = (4, 2.5, 2, 3)
    iou2 = ops.box_iou(_xyxy([2, 1, 4, 2]), _xyxy([4, 2.5, 2, 3]))
    assert iou2[0] == pytest.approx(1 / 13, rel=1e-12)


def test_iou_is_symmetric_and_in_unit_interval():
    a = np.abs(RNG.standard_normal((50, 4))) + 0.1
    b = np.abs(RNG.standard_normal((50, 4))) + 0.1
    ab, ba = ops.box_iou(a, b), ops.box_iou(b, a)
    assert np.array_equal(ab, ba) and (ab >= 0).all() and (ab <= 1).all()
    assert np.allclose(ops.box_iou(a, a), 1.0)


def test_box_format_round_trip():
    b = np.abs(RNG.standard_normal((5, 4))) + 0.1
    assert np.allclose(ops.xyxy_to_cxcywh(ops.cxcywh_to_xyxy(b)), b)
    assert ops.cxcywh_to_xyxy(_xyxy([0.5, 0.5, 1, 1])).tolist() == [[0, 0, 1, 1]]
    assert ops.cxcywh_to_xyxy(b.astype(np.float32)).dtype == np.float32


def test_iou_degenerate_boxes():
    good, flat = _xyxy([0.5, 0.5, 0.2, 0.2]), _xyxy([0.5, 0.5, 0.0, 0.2])
    with pytest.raises(ValueError, match="row 0 has zero or negative width"):
        ops.box_iou(flat, good)
    with pytest.raises(ValueError, match="b row 0"):
        ops.box_iou(good, _xyxy([0.5, 0.5, 0.2, -0.1]))
    with pytest.raises(ValueError, match="x1 < x0"):
        ops.box_iou(_xyxy([2, 0, 1, 1]), _xyxy([0, 0, 1, 1]), fmt="xyxy")
    # scoring predictions: a box of no area is wrong, not an error
    assert ops.box_iou(flat, good, degenerate="zero").tolist() == [0.0]


@pytest.mark.parametrize("a, b, exc, words", [
    (np.zeros((2, 3)), np.zeros((2, 3)), ValueError, r"shape \(N, 4\)"),
    (np.ones((2, 4)), np.ones((3, 4)), ValueError, "same number of boxes"),
    (np.ones(4), np.ones(4), ValueError, "2-D"),
    (np.ones((1, 4), dtype=np.int64), np.ones((1, 4)), TypeError, "floating"),
    (np.array([[np.nan, 1, 1, 1]]), np.ones((1, 4)), ValueError, "not finite"),
])
def test_iou_bad_shapes_are_named(a, b, exc, words):
    with pytest.raises(exc, match=words):
        ops.box_iou(a, b)
    with pytest.raises(ValueError, match="fmt"):
        ops.box_iou(np.ones((1, 4)), np.ones((1, 4)), fmt="yolo")


# ---------------------------------------------------------------- l2_loss

def test_l2_loss_value_by_hand_and_gradient_float64():
    # one box off by (0.1, 0, 0, -0.2), another exact: loss = (0.01 + 0.04) / 2
    pred = _xyxy([0.6, 0.5, 0.3, 0.1], [0.2, 0.2, 0.2, 0.2])
    target = _xyxy([0.5, 0.5, 0.3, 0.3], [0.2, 0.2, 0.2, 0.2])
    loss, _ = ops.l2_loss(pred, target)
    assert loss == pytest.approx(0.025, rel=1e-12)
    for shape in [(5, 4), (1, 4), (3, 40), (2, 1)]:
        p, t = RNG.standard_normal(shape), RNG.standard_normal(shape)
        loss, dpred = ops.l2_loss(p, t)
        num = numerical_gradient(lambda z: ops.l2_loss(z, t)[0], p)
        assert rel_error(dpred, num) < 1e-7  # the house threshold (gradcheck docs)


def test_l2_loss_gradient_check_catches_a_wrong_backward():
    # negative control: the "half" convention's gradient (p - t) / N is not this loss's gradient
    p, t = RNG.standard_normal((4, 4)), RNG.standard_normal((4, 4))
    num = numerical_gradient(lambda z: ops.l2_loss(z, t)[0], p)
    assert rel_error((p - t) / 4, num) > 1e-2


def test_l2_loss_dtype_and_bad_input():
    p32 = RNG.standard_normal((3, 4)).astype(np.float32)
    loss, d = ops.l2_loss(p32, p32 * 0)
    assert d.dtype == np.float32 and isinstance(loss, float)
    with pytest.raises(ValueError, match="shape of pred"):
        ops.l2_loss(np.zeros((2, 4)), np.zeros((2, 3)))
    with pytest.raises(TypeError, match="dtype"):
        ops.l2_loss(np.zeros((2, 4)), np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="empty"):
        ops.l2_loss(np.zeros((0, 4)), np.zeros((0, 4)))


@pytest.mark.torch
def test_l2_loss_matches_torch():
    torch = pytest.importorskip("torch")
    p, t = RNG.standard_normal((6, 4)), RNG.standard_normal((6, 4))
    tp = torch.from_numpy(p).requires_grad_(True)
    tl = torch.nn.functional.mse_loss(tp, torch.from_numpy(t), reduction="sum") / p.shape[0]
    tl.backward()
    loss, dpred = ops.l2_loss(p, t)
    assert abs(loss - tl.item()) < 1e-12 * max(1.0, abs(loss))
    assert np.max(np.abs(dpred - tp.grad.numpy())) < 1e-12


# ---------------------------------------------------------------- the shapes' ground-truth boxes

def _drawn_extremes(cover: np.ndarray, threshold: float, strict: bool) -> np.ndarray:
    """(N, 4) left, top, right, bottom pixel-centre coordinates of pixels with coverage > (>=) threshold."""
    centres = np.arange(cover.shape[-1]) + 0.5
    out = np.empty((len(cover), 4))
    for i, c in enumerate(cover):
        rows, cols = np.nonzero(c > threshold if strict else c >= threshold)
        out[i] = centres[cols].min(), centres[rows].min(), centres[cols].max(), centres[rows].max()
    return out


def _check_boxes_fit(boxes_xyxy: np.ndarray, cover: np.ndarray) -> tuple[bool, bool]:
    """(covers, tight): every pixel whose centre is inside the figure is inside the box; each box edge has
    a drawn pixel (coverage > 0) whose centre is within 1 px of it, and no drawn pixel lies > 1 px outside."""
    inside = _drawn_extremes(cover, 0.5, strict=False)  # coverage >= 0.5: the centre is inside the figure
    drawn = _drawn_extremes(cover, 0.0, strict=True)  # any coverage, the anti-aliased fringe included
    eps = 1e-4
    covers = bool(((inside[:, :2] >= boxes_xyxy[:, :2] - eps) & (inside[:, 2:] <= boxes_xyxy[:, 2:] + eps)).all())
    tight = bool((np.abs(drawn - boxes_xyxy) <= 1.0).all())
    return covers, tight


def test_shape_boxes_cover_the_drawn_pixels_and_are_tight():
    n = 600  # 60 of each class, all rotations and scales
    x, y, boxes, cover = shapes_mod._generate(n, (3, 1), 32, SHAPE_CLASSES, coverage=True)
    assert set(y.tolist()) == set(range(10))
    assert _check_boxes_fit(boxes, cover) == (True, True)
    # negative controls: a box shifted by 1.5 px, or shrunk by 1 px on one side, fails
    shifted = boxes + np.array([1.5, 0, 1.5, 0])
    assert _check_boxes_fit(shifted, cover) != (True, True)
    shrunk = boxes + np.array([0, 1.0, 0, 0])
    assert _check_boxes_fit(shrunk, cover)[0] is False


def test_shape_boxes_normalised_match_the_pixel_boxes_and_images_are_unchanged():
    x0, y0 = make_shapes(40, seed=5, size=32)
    x, y, b = make_shapes(40, seed=5, size=32, with_boxes=True)
    assert np.array_equal(x, x0) and np.array_equal(y, y0)  # the same bits with or without boxes
    _, _, px, _ = shapes_mod._generate(40, 5, 32, SHAPE_CLASSES, coverage=True)
    assert np.allclose(ops.cxcywh_to_xyxy(b) * 32, px)
    assert b.dtype == np.float64 and b.shape == (40, 4)
    assert (b[:, 2:] > 0.3).all() and (ops.cxcywh_to_xyxy(b) >= 0).all() and (ops.cxcywh_to_xyxy(b) <= 1).all()


def test_shape_box_of_a_circle_by_hand():
    # a circle's box is the square of side 2 * 0.85 * radius around its centre, whatever the rotation
    x, y, boxes, cover = shapes_mod._generate(30, 11, 32, ("circle",), coverage=True)
    p = shapes_mod._uniforms(np.random.default_rng(np.random.SeedSequence(11).spawn(2)[0]).integers(
        0, 2**32, size=(30, shapes_mod._N_PARAMS + 768), dtype=np.uint32))
    radius = (0.22 + p[:, 2] * 0.14) * 32  # _SCALE_RANGE, in pixels
    side = boxes[:, 2] - boxes[:, 0]
    assert np.allclose(side, 2 * 0.85 * radius, atol=1e-4)
    assert np.allclose(boxes[:, 3] - boxes[:, 1], side)
