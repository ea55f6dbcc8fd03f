"""Localization as in the paper's Appendix A: a VGG whose last layer regresses a box, scored by IoU > 0.5.

* :mod:`.head` -- SCR / PCR box heads, choosing the box of a class, building the
  regressor from a classifier, which parameters fine-tuning updates;
* :mod:`.metrics` -- IoU > 0.5 correctness and the localization error (both protocols);
* :mod:`.localizer` -- classifier + regressor as one object and one self-contained checkpoint;
* :mod:`.finetune` -- the fine-tuning loop (:func:`finetune_localizer`).

The box math (formats, IoU) and the squared-L2 loss are ops:
:mod:`minivgg.ops.boxes`, :func:`minivgg.ops.l2_loss`.
"""

from .finetune import LocConfig, LocResult, LocTrainer, evaluate_localizer, finetune_localizer
from .head import FINETUNE, REGRESSIONS, box_outputs, regressor_from_classifier, select_boxes, select_boxes_backward
from .localizer import (TASK, Localizer, LocPrediction, is_localization_checkpoint, load_localizer,
                        save_localizer)
from .metrics import IOU_THRESHOLD, localization_correct, localization_error, localization_error_with_classes

__all__ = [
    "FINETUNE", "IOU_THRESHOLD", "REGRESSIONS", "TASK", "LocConfig", "LocPrediction", "LocResult", "LocTrainer",
    "Localizer", "box_outputs", "evaluate_localizer", "finetune_localizer", "is_localization_checkpoint",
    "load_localizer", "localization_correct", "localization_error", "localization_error_with_classes",
    "regressor_from_classifier", "save_localizer", "select_boxes", "select_boxes_backward",
]
