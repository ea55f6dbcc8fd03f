"""Bounding boxes: the two formats and their intersection-over-union (paper Appendix A, ILSVRC localization).

Simonyan & Zisserman's localization net predicts "a bounding box ...
represented by a 4-D vector storing its centre coordinates, width, and
height"; ILSVRC counts a box correct when its intersection over union with the
ground truth exceeds 0.5.

Formats (every function says which one it takes):

* ``"cxcywh"`` -- ``(cx, cy, w, h)``: centre and size. minivgg's boxes are in
  this format *normalised to the image*: ``cx = x_centre / width`` etc., so a
  box of the whole image is ``(0.5, 0.5, 1, 1)`` whatever the image size. This
  is what the localization head regresses.
* ``"xyxy"`` -- ``(x0, y0, x1, y1)``: left, top, right, bottom corners with
  ``x0 <= x1`` and ``y0 <= y1`` (same units as the cxcywh box it came from;
  multiply by the image size for pixels, where pixel ``j`` spans ``[j, j+1)``).

For two boxes :math:`A, B` in corner form,

.. math::

    |A \\cap B| = \\max(0, \\min(x_1^A, x_1^B) - \\max(x_0^A, x_0^B))
                 \\cdot \\max(0, \\min(y_1^A, y_1^B) - \\max(y_0^A, y_0^B)),
    \\qquad \\mathrm{IoU} = \\frac{|A \\cap B|}{|A| + |B| - |A \\cap B|}

Boxes that only touch along an edge have IoU 0. Cost: about 20 flops per pair.
"""

from __future__ import annotations

import numpy as np

from ._validate import check_float_array

__all__ = ["BOX_FORMATS", "cxcywh_to_xyxy", "xyxy_to_cxcywh", "box_iou"]

#: The box formats :func:`box_iou` accepts.
BOX_FORMATS = ("cxcywh", "xyxy")


def _check_boxes(b: np.ndarray, name: str, what: str) -> np.ndarray:
    b = np.asarray(b) if isinstance(b, (list, tuple)) else b
    check_float_array(b, name, what, ndim=2)
    if b.shape[1] != 4:
        raise ValueError(f"{name}: {what} must have shape (N, 4), got {b.shape}")
    if not np.isfinite(b).all():
        row = int(np.flatnonzero(~np.isfinite(b).all(axis=1))[0])
        raise ValueError(f"{name}: {what} row {row} is not finite: {b[row].tolist()}")
    return b


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """``(N, 4)`` ``(cx, cy, w, h)`` -> ``(N, 4)`` ``(x0, y0, x1, y1)``, same dtype; no check that w, h > 0."""
    b = _check_boxes(boxes, "cxcywh_to_xyxy", "boxes")
    half = b[:, 2:] * b.dtype.type(0.5)  # (N, 2)
    return np.concatenate([b[:, :2] - half, b[:, :2] + half], axis=1)


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    """``(N, 4)`` ``(x0, y0, x1, y1)`` -> ``(N, 4)`` ``(cx, cy, w, h)``, same dtype."""
    b = _check_boxes(boxes, "xyxy_to_cxcywh", "boxes")
    return np.concatenate([(b[:, :2] + b[:, 2:]) * b.dtype.type(0.5), b[:, 2:] - b[:, :2]], axis=1)


def box_iou(a: np.ndarray, b: np.ndarray, *, fmt: str = "cxcywh", degenerate: str = "raise") -> np.ndarray:
    """Intersection over union of paired boxes: row ``i`` of ``a`` with row ``i`` of ``b``.

    Parameters
    ----------
    a, b : ndarray, shape (N, 4), float32 or float64
        Boxes in format ``fmt`` (see the module docstring), in the same units.
    fmt : {"cxcywh", "xyxy"}
    degenerate : {"raise", "zero"}
        A box of zero or negative width or height has no area, so its IoU is
        undefined. ``"raise"`` (the default) refuses it with a ValueError
        naming the row; ``"zero"`` gives such pairs IoU 0 -- what scoring a
        regressor's predictions needs (a predicted box of negative width is
        simply wrong).

    Returns
    -------
    iou : float64 ndarray, shape (N,), values in [0, 1]

    Raises
    ------
    TypeError, ValueError
        Not float arrays of shape (N, 4), different N, non-finite values,
        unknown ``fmt``/``degenerate``, an xyxy box with ``x1 < x0`` or a box
        of no area (with ``degenerate="raise"``).
    """
    name = "box_iou"
    if fmt not in BOX_FORMATS:
        raise ValueError(f"{name}: fmt must be one of {BOX_FORMATS}, got {fmt!r}")
    if degenerate not in ("raise", "zero"):
        raise ValueError(f"{name}: degenerate must be 'raise' or 'zero', got {degenerate!r}")
    a, b = _check_boxes(a, name, "a"), _check_boxes(b, name, "b")
    if a.shape != b.shape:
        raise ValueError(f"{name}: a and b must hold the same number of boxes, got {a.shape} and {b.shape}")
    out = []
    for what, box in (("a", a), ("b", b)):
        box = box.astype(np.float64)
        if fmt == "xyxy":
            bad = (box[:, 2] < box[:, 0]) | (box[:, 3] < box[:, 1])
            if bad.any() and degenerate == "raise":
                row = int(np.flatnonzero(bad)[0])
                raise ValueError(f"{name}: {what} row {row} has x1 < x0 or y1 < y0 (xyxy means "
                                 f"(x0, y0, x1, y1)): {box[row].tolist()}")
        else:
            box = cxcywh_to_xyxy(box)
        wh = box[:, 2:] - box[:, :2]  # (N, 2)
        empty = (wh <= 0).any(axis=1)
        if empty.any() and degenerate == "raise":
            row = int(np.flatnonzero(empty)[0])
            raise ValueError(f"{name}: {what} row {row} has zero or negative width/height "
                             f"(w, h = {wh[row].tolist()}); pass degenerate='zero' to score such boxes IoU 0")
        out.append((box, np.where(empty, 0.0, wh[:, 0] * wh[:, 1]), empty))
    (ba, area_a, ea), (bb, area_b, eb) = out
    lo = np.maximum(ba[:, :2], bb[:, :2])  # (N, 2) top-left of the intersection
    hi = np.minimum(ba[:, 2:], bb[:, 2:])  # (N, 2) bottom-right
    inter = np.clip(hi - lo, 0, None).prod(axis=1)  # (N,)
    empty = ea | eb
    union = np.where(empty, 1.0, area_a + area_b - inter)
    iou = np.where(empty, 0.0, inter / union)
    return np.clip(iou, 0.0, 1.0)
