"""A trained localizer: the classification net that names the object plus the regression net that boxes it.

The paper (Appendix A) keeps two networks: the classification ConvNet gives
the class, the localization ConvNet (fc8 replaced by a box regressor, see
:mod:`.head`) gives its box -- the ground-truth class's box for protocol 1, the
predicted class's for ILSVRC's score. A :class:`Localizer` holds both.

The checkpoint is one self-contained minivgg ``.npz``
(:mod:`minivgg.io.npz`): the *regressor* is the file's model (``config`` and
``param.*``, fc8 of width 4 or 4 K), the *classifier*'s parameters are stored
beside it as ``aux.classifier.<name>`` and its architecture in
``meta["classifier"]["config"]``. ``meta["task"] == "localize"`` marks it, with
``regression``, ``class_names``, ``preprocess`` (the classifier's, which both
nets use), ``data``, ``localize`` (the fine-tuning settings), ``history`` and
``epoch``. So ``minivgg localize`` needs this one file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import numpy as np

from ...configs import VGGConfig
from ...io.files import CheckpointError
from ...io.npz import write_minivgg
from ...ops import softmax
from ...vgg import VGG
from ..checkpoint import Checkpoint, read_checkpoint
from ..data import batch_slices
from ..datasets import Preprocess
from .head import REGRESSIONS, box_outputs, select_boxes

__all__ = ["TASK", "AUX_PREFIX", "Localizer", "LocPrediction", "save_localizer", "load_localizer",
           "is_localization_checkpoint"]

#: ``meta["task"]`` of a localization checkpoint.
TASK = "localize"
#: Prefix of the classifier's parameters among the file's auxiliary arrays.
AUX_PREFIX = "classifier."


class LocPrediction(NamedTuple):
    """What :meth:`Localizer.predict` returns for N images."""

    classes: np.ndarray  # (N,) int64, the classifier's arg-max
    probs: np.ndarray  # (N, K) float64 softmax posteriors
    boxes: np.ndarray  # (N, 4) float64 (cx, cy, w, h) normalised: the box of the predicted class
    boxes_given: np.ndarray | None  # (N, 4) the box of the classes passed as ``labels`` (None without)


@dataclass
class Localizer:
    """Classifier + box regressor + the input transform they were trained with.

    Attributes
    ----------
    classifier : VGG
        K outputs (the class scores).
    regressor : VGG
        Same layers, fc8 with 4 (SCR) or 4 K (PCR) outputs.
    regression : {"scr", "pcr"}
    preprocess : Preprocess
        Raw images (N, C, H, W) in [0, 1] -> model input.
    class_names : list of str
    """

    classifier: VGG
    regressor: VGG
    regression: str
    preprocess: Preprocess
    class_names: list

    def __post_init__(self) -> None:
        if self.regression not in REGRESSIONS:
            raise ValueError(f"Localizer: regression must be one of {REGRESSIONS}, got {self.regression!r}")
        k = self.classifier.num_classes
        if len(self.class_names) != k:
            raise ValueError(f"Localizer: {len(self.class_names)} class names for a {k}-class classifier")
        want = box_outputs(self.regression, k)
        if self.regressor.num_classes != want:
            raise ValueError(f"Localizer: a {self.regression.upper()} regressor for {k} classes has {want} "
                             f"outputs, got {self.regressor.num_classes}")

    @property
    def num_classes(self) -> int:
        return self.classifier.num_classes

    def boxes_for(self, out: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
        """The (N, 4) float64 boxes of ``classes`` from regressor outputs ``out`` (SCR ignores ``classes``)."""
        return select_boxes(out, classes, self.regression)[0].astype(np.float64)

    def predict(self, x: np.ndarray, labels: np.ndarray | None = None, *, batch_size: int = 250) -> LocPrediction:
        """Class and box of each raw image ``x`` (N, C, H, W); with ``labels`` also the box of those classes.

        Cost: one forward of each network per image.
        """
        if not isinstance(x, np.ndarray) or x.ndim != 4 or len(x) == 0:
            raise ValueError(f"Localizer.predict: expected a non-empty batch of images (N, C, H, W), "
                             f"got {getattr(x, 'shape', type(x).__name__)}")
        if labels is not None:
            labels = np.asarray(labels)
            if labels.shape != (len(x),) or labels.dtype.kind not in "iu":
                raise ValueError(f"Localizer.predict: labels must be {len(x)} integers, got {labels.dtype} {labels.shape}")
        classes, probs, boxes, given = [], [], [], []
        for s in batch_slices(len(x), batch_size, "Localizer.predict"):
            xb = self.preprocess(x[s])
            p = softmax(self.classifier.forward(xb)).astype(np.float64)  # (B, K)
            out = self.regressor.forward(xb)  # (B, 4) or (B, 4K)
            c = p.argmax(axis=1)
            classes.append(c)
            probs.append(p)
            boxes.append(self.boxes_for(out, c))
            if labels is not None:
                given.append(self.boxes_for(out, labels[s]))
        return LocPrediction(np.concatenate(classes).astype(np.int64), np.concatenate(probs),
                             np.concatenate(boxes), np.concatenate(given) if labels is not None else None)


def save_localizer(path: str | os.PathLike, loc: Localizer, meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``loc`` as one self-contained minivgg ``.npz`` (layout: the module docstring), atomically.

    ``meta`` adds run records (data, settings, history); the task, regression,
    class names, preprocessing and classifier architecture are always written.
    """
    record = dict(meta or {})
    record.update(task=TASK, regression=loc.regression, class_names=list(loc.class_names),
                  preprocess=loc.preprocess.to_json(), classifier={"config": loc.classifier.config.to_dict()})
    aux = {AUX_PREFIX + k: v for k, v in loc.classifier.params.items()}
    return write_minivgg(path, loc.regressor.config, loc.regressor.params, meta=record, aux=aux)


def is_localization_checkpoint(ckpt: Checkpoint) -> bool:
    """Whether a read checkpoint is a localizer (``meta["task"] == "localize"``)."""
    return ckpt.meta.get("task") == TASK


def load_localizer(path: str | os.PathLike | Checkpoint) -> tuple[Localizer, Checkpoint]:
    """Rebuild the :class:`Localizer` a localization checkpoint holds; returns ``(localizer, checkpoint)``.

    Raises
    ------
    FileNotFoundError
        Nothing at ``path``.
    CheckpointError
        Not a minivgg file, a classification checkpoint or plain weights (says
        how to make a localizer), or a damaged localization record.
    """
    ckpt = path if isinstance(path, Checkpoint) else read_checkpoint(path)
    if not is_localization_checkpoint(ckpt):
        what = "a classification checkpoint" if ckpt.meta else "plain weights"
        raise CheckpointError(f"{ckpt.path} is {what}, not a localization checkpoint; make one with "
                              f"minivgg train --task localize --init {ckpt.path} --out DIR")
    meta = ckpt.meta
    try:
        cls_config = VGGConfig.from_dict(meta["classifier"]["config"], f"{ckpt.path} (classifier)")
        classifier = VGG(cls_config, dtype=np.dtype(ckpt.dtype), init="none")
        cls_params = {k[len(AUX_PREFIX):]: v for k, v in ckpt.aux.items() if k.startswith(AUX_PREFIX)}
        classifier.load_params(cls_params)
        regressor = VGG(ckpt.config, dtype=np.dtype(ckpt.dtype), init="none")
        regressor.load_params(ckpt.params)
        loc = Localizer(classifier, regressor, meta["regression"], Preprocess.from_json(meta["preprocess"]),
                        list(meta["class_names"]))
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{ckpt.path}: damaged localization checkpoint: {type(e).__name__}: {e}") from e
    return loc, ckpt
