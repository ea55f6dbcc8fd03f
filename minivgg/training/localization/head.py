"""The localization head: VGG's last FC layer turned into a box regressor (paper Appendix A).

Simonyan & Zisserman, Appendix A.1: "the last fully connected layer predicts
the bounding box location instead of the class scores. A bounding box is
represented by a 4-D vector storing its center coordinates, width, and
height. There is a choice of whether the bounding box prediction is shared
across all classes (single-class regression, SCR) or is class-specific
(per-class regression, PCR). In the former case, the last layer is 4-D, while
in the latter it is 4000-D (since there are 1000 classes in the dataset)."

So a localization network is a VGG whose fc8 has ``4`` (SCR) or ``4 K`` (PCR)
outputs instead of ``K``; everything below fc8 is copied from the trained
classifier, fc8 is freshly (randomly) initialised.

PCR layout: output ``4 k + j`` is coordinate ``j`` of class ``k``'s box, i.e.
``out.reshape(N, K, 4)[n, k]`` is class ``k``'s ``(cx, cy, w, h)``. Which box
counts is chosen per image (:func:`select_boxes`): the ground-truth class in
training and in the paper's protocol 1, the classifier's predicted class in
the "predicted class" evaluation. Gradients flow only into the chosen box
(:func:`select_boxes_backward`), as in the paper ("the box of the
ground-truth class is used in training").
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ...configs import VGGConfig
from ...vgg import VGG

__all__ = ["REGRESSIONS", "FINETUNE", "box_outputs", "SelectCache", "select_boxes", "select_boxes_backward",
           "regressor_from_classifier", "trainable_params"]

#: ``scr``: one box shared by all classes (4 outputs); ``pcr``: one box per class (4 K outputs).
REGRESSIONS = ("scr", "pcr")
#: Standard deviation of the new fc8's weights (the paper's §3.1: variance 1e-2).
FC8_INIT_STD = 0.1
#: What fine-tuning updates: ``fc`` -- fc6, fc7 and the new fc8 (OverFeat's way, paper Table 8's
#: "1st and 2nd FC layers"); ``all`` -- every layer.
FINETUNE = ("fc", "all")


def _check_regression(regression: str, where: str) -> str:
    if regression not in REGRESSIONS:
        raise ValueError(f"{where}: regression must be one of {REGRESSIONS}, got {regression!r}")
    return regression


def box_outputs(regression: str, num_classes: int) -> int:
    """Width of the regressor's fc8: ``4`` for SCR, ``4 * num_classes`` for PCR."""
    _check_regression(regression, "box_outputs")
    return 4 if regression == "scr" else 4 * int(num_classes)


class SelectCache(NamedTuple):
    """What :func:`select_boxes_backward` needs."""

    shape: tuple  # (N, D) of the regressor output
    rows: np.ndarray  # (N,) 0..N-1
    cols: np.ndarray  # (N,) first output column of the chosen box


def select_boxes(out: np.ndarray, labels: np.ndarray | None, regression: str) -> tuple[np.ndarray, SelectCache]:
    """The one box per image the regressor output ``out`` (N, D) gives for class ``labels`` (N,).

    SCR: ``out`` itself (D = 4; ``labels`` ignored, may be None). PCR: row
    ``n``'s columns ``4 labels[n] .. 4 labels[n] + 3`` (D = 4 K).

    Returns ``(boxes (N, 4) of out's dtype, cache)``.
    """
    name = "select_boxes"
    _check_regression(regression, name)
    if not isinstance(out, np.ndarray) or out.ndim != 2:
        raise ValueError(f"{name}: expected the regressor output (N, D), got {getattr(out, 'shape', type(out).__name__)}")
    n, d = out.shape
    rows = np.arange(n)
    if regression == "scr":
        if d != 4:
            raise ValueError(f"{name}: SCR predicts 4 numbers per image, got {d}")
        return out, SelectCache(out.shape, rows, np.zeros(n, dtype=np.int64))
    if d % 4:
        raise ValueError(f"{name}: PCR predicts 4 numbers per class, got {d} outputs (not a multiple of 4)")
    k = d // 4
    labels = np.asarray(labels) if labels is not None else None
    if labels is None or labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise ValueError(f"{name}: PCR needs one integer class per image ({n},), got "
                         f"{None if labels is None else (labels.dtype, labels.shape)}")
    if n and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"{name}: class {int(labels.max() if labels.max() >= k else labels.min())} is out of "
                         f"range for {k} per-class boxes")
    cols = 4 * labels.astype(np.int64)
    boxes = out.reshape(n, k, 4)[rows, labels]  # (N, 4)
    return boxes, SelectCache(out.shape, rows, cols)


def select_boxes_backward(dboxes: np.ndarray, cache: SelectCache) -> np.ndarray:
    """Scatter ``dboxes`` (N, 4) back into a zero gradient of the regressor output (N, D)."""
    dout = np.zeros(cache.shape, dtype=dboxes.dtype)
    for j in range(4):
        dout[cache.rows, cache.cols + j] = dboxes[:, j]
    return dout


def regressor_from_classifier(classifier: VGG, regression: str, *, seed: int = 0) -> VGG:
    """A localization net: ``classifier``'s layers up to fc7 copied, fc8 new with 4 or 4 K outputs.

    The new fc8 is initialised randomly, as the paper's "the last
    fully-connected layer was initialised randomly and trained from scratch",
    with the paper's own random initialisation (§3.1): weights from a normal
    distribution of mean 0 and variance 1e-2 (``FC8_INIT_STD = 0.1``, drawn
    from ``seed``), biases 0. (minivgg's default He init gives fc8 outputs of
    size ~1 against boxes in [0, 1]; on small runs PCR then started much
    further from the targets and learned visibly slower.) ``classifier``
    itself is not changed.
    """
    if not isinstance(classifier, VGG):
        raise TypeError(f"regressor_from_classifier: expected a minivgg VGG, got {type(classifier).__name__}")
    config = VGGConfig.from_arch(classifier.config, num_classes=box_outputs(regression, classifier.num_classes))
    model = VGG(config, dtype=classifier.dtype, seed=seed, init="none")
    shape = model.params["fc8.w"].shape
    w8 = np.random.default_rng([seed, 8]).normal(0.0, FC8_INIT_STD, shape).astype(classifier.dtype)
    copied = {k: v.copy() for k, v in classifier.params.items() if not k.startswith("fc8.")}
    model.load_params({**copied, "fc8.w": w8, "fc8.b": np.zeros(shape[1], classifier.dtype)})
    return model


def trainable_params(model: VGG, finetune: str) -> dict[str, np.ndarray]:
    """The parameters fine-tuning updates: fc6-fc8 (``"fc"``) or all (``"all"``); the model's own arrays."""
    if finetune not in FINETUNE:
        raise ValueError(f"trainable_params: finetune must be one of {FINETUNE}, got {finetune!r}")
    params = model.params
    if finetune == "all":
        return params
    return {k: v for k, v in params.items() if k.startswith("fc")}
