"""Accuracy, ensembles and test-time flip averaging (VGG §3.2 and §4.3).

Simonyan & Zisserman (arXiv 1409.1556):

* §3.2 "Testing": the test set is augmented by horizontal flipping, and "the
  soft-max class posteriors of the original and flipped images are averaged
  to obtain the final scores for the image".
* §4.3 "Multi-model fusion": the outputs of several models are combined "by
  averaging their soft-max class posteriors"; their best ensemble of 2 models
  beat every single one (cs231n lecture 9: "use ensembles for best results").

For models :math:`f_1..f_M` and an image :math:`x` (with :math:`\\bar x` its
mirror image), the ensemble with flip averaging predicts

.. math::

    p(x) = \\frac{1}{M} \\sum_{m=1}^M \\frac{1}{2}
           \\big(\\mathrm{softmax}(f_m(x)) + \\mathrm{softmax}(f_m(\\bar x))\\big)

and its label is :math:`\\arg\\max_k p_k(x)`. Cost: one inference forward per
model (two with flips) per image. Probabilities are accumulated in float64
so the average does not depend on the order of the models.

Every function takes any model with ``forward(x, train=False) -> logits (N, K)``
(a :class:`~minivgg.vgg.VGG` or the dense network of :mod:`minivgg.training.dense_eval`)
and an optional ``transform`` applied to each raw batch first (the
:class:`~minivgg.training.trainer.Preprocess` a checkpoint was trained with).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np

from ..ops import softmax, softmax_cross_entropy
from .data import batch_slices

__all__ = ["predict_proba", "loss_and_accuracy", "accuracy", "ensemble_proba", "EnsembleReport",
           "evaluate_ensemble", "format_ensemble_report"]

Transform = Callable[[np.ndarray], np.ndarray]


class Classifier(Protocol):
    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray: ...


def _check_images(x: np.ndarray, fn: str) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.ndim != 4 or len(x) == 0:
        raise ValueError(f"{fn}: expected a non-empty batch of images (N, C, H, W), "
                         f"got {getattr(x, 'shape', type(x).__name__)}")
    return x


def _check_labels(y: np.ndarray, n: int, fn: str) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,) or y.dtype.kind not in "iu":
        raise ValueError(f"{fn}: labels must be {n} integers, got {y.dtype} {y.shape}")
    return y


def predict_proba(model: Classifier, x: np.ndarray, *, transform: Transform | None = None, flip: bool = False,
                  batch_size: int = 250) -> np.ndarray:
    """Softmax class posteriors ``(N, K)`` float64, optionally averaged with the mirrored images.

    Parameters
    ----------
    model : VGG or anything with ``forward(x) -> logits``
    x : ndarray, shape (N, C, H, W)
        Raw images (``transform`` is applied per batch) or model inputs.
    transform : callable, optional
        Raw batch -> model input.
    flip : bool
        Also run ``x[..., ::-1]`` (left-right mirror) and average the two
        softmax outputs (paper §3.2).
    batch_size : int
        Images per forward pass (bounds memory).
    """
    _check_images(x, "predict_proba")
    out = []
    for s in batch_slices(len(x), batch_size, "predict_proba"):
        xb = x[s]
        xb = transform(xb) if transform is not None else xb
        p = softmax(model.forward(xb)).astype(np.float64)  # (B, K)
        if flip:
            p += softmax(model.forward(np.ascontiguousarray(xb[..., ::-1])))
            p *= 0.5
        out.append(p)
    return np.concatenate(out)


def accuracy(scores_or_labels: np.ndarray, y: np.ndarray) -> float:
    """Fraction in [0, 1] of correct predictions; accepts labels ``(N,)`` or scores ``(N, K)`` (arg-max)."""
    pred = np.asarray(scores_or_labels)
    if pred.ndim == 2:
        pred = pred.argmax(axis=1)
    y = _check_labels(y, len(pred), "accuracy")
    if pred.shape != y.shape or len(y) == 0:
        raise ValueError(f"accuracy: {pred.shape} predictions for {y.shape} labels")
    return float(np.mean(pred == y))


def loss_and_accuracy(model: Classifier, x: np.ndarray, y: np.ndarray, *, transform: Transform | None = None,
                      batch_size: int = 250) -> tuple[float, float]:
    """Mean softmax cross-entropy and accuracy of ``model`` on ``(x, y)``, inference mode, in batches."""
    _check_images(x, "loss_and_accuracy")
    y = _check_labels(y, len(x), "loss_and_accuracy")
    loss_sum, correct = 0.0, 0
    for s in batch_slices(len(x), batch_size, "loss_and_accuracy"):
        xb, yb = x[s], y[s]
        logits = model.forward(transform(xb) if transform is not None else xb)
        loss, _ = softmax_cross_entropy(logits, yb)
        loss_sum += loss * len(yb)
        correct += int((logits.argmax(axis=1) == yb).sum())
    return loss_sum / len(x), correct / len(x)


def ensemble_proba(models: Sequence[Classifier], x: np.ndarray, *,
                   transforms: Sequence[Transform | None] | Transform | None = None, flip: bool = False,
                   batch_size: int = 250) -> tuple[np.ndarray, list[np.ndarray]]:
    """Average the softmax posteriors of several models (paper §4.3).

    Returns
    -------
    mean : float64 ndarray, shape (N, K)
        ``sum_m p_m / M``.
    members : list of M float64 ndarrays (N, K)
        Each model's own posteriors (flip-averaged if ``flip``).

    ``transforms`` is one transform for all models or one per model (models
    trained on the same data can still have different input transforms).
    """
    models = list(models)
    if not models:
        raise ValueError("ensemble_proba: no models given")
    if transforms is None or callable(transforms):
        transforms = [transforms] * len(models)
    transforms = list(transforms)
    if len(transforms) != len(models):
        raise ValueError(f"ensemble_proba: {len(transforms)} transforms for {len(models)} models")
    members = [predict_proba(m, x, transform=t, flip=flip, batch_size=batch_size) for m, t in zip(models, transforms)]
    shapes = {p.shape for p in members}
    if len(shapes) != 1:
        raise ValueError(f"ensemble_proba: the models disagree on the number of classes: {sorted(shapes)}")
    total = np.zeros_like(members[0])
    for p in members:
        total += p
    return total / len(members), members


@dataclass
class EnsembleReport:
    """Single-model versus ensemble accuracy on one labelled set."""

    member_acc: list  # accuracy of each model, in the order given
    ensemble_acc: float  # accuracy of the averaged posteriors
    n: int  # number of images
    flip: bool  # whether test-time flip averaging was used
    nonfinite: list = field(default_factory=list)  # indices of members whose posteriors hold NaN/inf (overflow)

    @property
    def best_member_acc(self) -> float:
        return max(self.member_acc)

    @property
    def gain(self) -> float:
        """Ensemble accuracy minus the best member's (>= 0: the ensemble beats or ties it)."""
        return self.ensemble_acc - self.best_member_acc


def evaluate_ensemble(models: Sequence[Classifier], x: np.ndarray, y: np.ndarray, *,
                      transforms: Sequence[Transform | None] | Transform | None = None, flip: bool = False,
                      batch_size: int = 250) -> EnsembleReport:
    """Accuracy of every model and of their softmax average on ``(x, y)``."""
    y = _check_labels(y, len(_check_images(x, "evaluate_ensemble")), "evaluate_ensemble")
    mean, members = ensemble_proba(models, x, transforms=transforms, flip=flip, batch_size=batch_size)
    k = mean.shape[1]
    if y.max() >= k:
        raise ValueError(f"evaluate_ensemble: label {int(y.max())} is out of range for {k}-class models")
    nonfinite = [i for i, p in enumerate(members) if not np.isfinite(p).all()]  # their accuracy means nothing
    return EnsembleReport([accuracy(p, y) for p in members], accuracy(mean, y), len(y), flip, nonfinite)


def format_ensemble_report(report: EnsembleReport, names: Sequence[str] | None = None) -> str:
    """A small table: each member's accuracy, then the ensemble's and the gain over the best member."""
    names = list(names) if names is not None else [f"model {i + 1}" for i in range(len(report.member_acc))]
    width = max(len("ensemble (mean softmax)"), *(len(n) for n in names))
    flip = " (with flip averaging)" if report.flip else ""
    lines = [f"accuracy on {report.n} images{flip}:"]
    for name, acc in zip(names, report.member_acc):
        lines.append(f"  {name:<{width}}  {acc:.2%}")
    lines.append(f"  {'ensemble (mean softmax)':<{width}}  {report.ensemble_acc:.2%}  "
                 f"({report.gain * 100:+.2f} points vs the best member, {report.best_member_acc:.2%})")
    return "\n".join(lines)
