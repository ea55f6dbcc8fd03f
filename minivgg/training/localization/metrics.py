"""The localization metric of ILSVRC and the paper (Appendix A.2): IoU > 0.5 counts as correct.

"The bounding box prediction is deemed correct if its intersection over union
ratio with the ground-truth bounding box is above 0.5." The localization
error is the fraction of images whose box is not correct. The paper's
"protocol 1" takes the box of the ground-truth class (so it measures
localization alone); ILSVRC's own score takes the box of the predicted class,
so a misclassified image also counts as a localization error whatever its box.
With one object per image, :func:`localization_error` applies to either: pass
the boxes chosen with the class you mean (and, for the predicted-class
variant, count wrong classes with :func:`localization_error_with_classes`).
"""

from __future__ import annotations

import numpy as np

from ...ops import box_iou

__all__ = ["IOU_THRESHOLD", "localization_correct", "localization_error", "localization_error_with_classes"]

#: A box is correct when its IoU with the ground truth is strictly above this.
IOU_THRESHOLD = 0.5


def localization_correct(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: IoU of each predicted box with its ground truth > 0.5 (boxes (N, 4), cxcywh).

    A predicted box of zero or negative width/height is simply wrong (IoU 0);
    a degenerate ground-truth box is an error in the data (ValueError).
    """
    box_iou(gt, gt)  # ground truth must be proper boxes: raises naming the row
    return box_iou(pred.astype(np.float64, copy=False), gt.astype(np.float64, copy=False),
                   degenerate="zero") > IOU_THRESHOLD


def localization_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """Fraction in [0, 1] of boxes whose IoU with the ground truth is not above 0.5."""
    if len(gt) == 0:
        raise ValueError("localization_error: no boxes")
    return float(1.0 - localization_correct(pred, gt).mean())


def localization_error_with_classes(pred: np.ndarray, gt: np.ndarray, pred_class: np.ndarray,
                                    true_class: np.ndarray) -> float:
    """ILSVRC's error with one object per image: wrong if the class is wrong or the box's IoU <= 0.5."""
    pred_class, true_class = np.asarray(pred_class), np.asarray(true_class)
    if pred_class.shape != (len(gt),) or true_class.shape != (len(gt),):
        raise ValueError(f"localization_error_with_classes: expected {len(gt)} classes each, got "
                         f"{pred_class.shape} and {true_class.shape}")
    ok = localization_correct(pred, gt) & (pred_class == true_class)
    return float(1.0 - ok.mean())
