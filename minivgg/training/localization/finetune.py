"""Fine-tuning a classification VGG into a box regressor, the paper's way (Appendix A.1).

"Training of localisation ConvNets is similar to that of the classification
ConvNets (Sect. 3.1). The main difference is that we replace the logistic
regression objective with a Euclidean loss ... The localisation models were
initialised with the corresponding classification models, [the] initial
learning rate was set to 1e-3. We explored both fine-tuning all layers and
fine-tuning only the first two fully-connected layers, as done in OverFeat.
The last fully-connected layer was initialised randomly and trained from
scratch."

:class:`LocConfig` is that at laptop scale; :class:`LocTrainer` the loop:
shuffled mini-batches, random horizontal flips (a mirrored image's box has
``cx -> 1 - cx``), the squared-L2 loss (:func:`minivgg.ops.l2_loss`) on the
box of the ground-truth class, validation with both protocols after every
epoch, ``checkpoint.npz`` (a self-contained localizer, see
:mod:`.localizer`) and ``history.json`` written after each.

``finetune="fc"`` freezes everything below fc6: the frozen part's outputs
(pool5, and the same for the mirrored images) are computed once up front,
so an epoch then costs only the fc layers' forward and backward.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...io.files import CheckpointError
from ...ops import l2_loss
from ...vgg import VGG
from ..checkpoint import CHECKPOINT_NAME, HISTORY_NAME, Checkpoint, model_from_checkpoint, write_json
from ..config import TrainingDiverged, check_optimization_fields, jsonable
from ..data import batch_slices, iterate_minibatches
from ..datasets import Dataset
from ..schedules import StepLR
from ..trainer import TrainCallback, make_optimizer
from .head import FINETUNE, REGRESSIONS, regressor_from_classifier, select_boxes, select_boxes_backward, trainable_params
from .localizer import Localizer, is_localization_checkpoint, save_localizer
from .metrics import localization_correct, localization_error, localization_error_with_classes

__all__ = ["LocConfig", "LocResult", "LocTrainer", "evaluate_localizer", "finetune_localizer"]

#: Layer the frozen part ends with under ``finetune="fc"`` (fc6 reads its output).
FROZEN_UNTIL = "flatten"


@dataclass(frozen=True)
class LocConfig:
    """How to fine-tune a localizer (the defaults are ``minivgg train --task localize``'s).

    Where it departs from the paper and why:

    * Adam (lr 1e-3, the paper's initial rate) rather than SGD with momentum:
      the classification recipe this starts from is trained with Adam for the
      reasons :class:`~minivgg.training.config.TrainConfig` gives, and a new
      randomly initialised fc8 regressing four numbers in [0, 1] has gradients
      of a very different scale from the pretrained layers below; Adam's
      per-parameter step sizes absorb that without tuning. ``optimizer="sgd"``
      gives the paper's rule (momentum 0.9).
    * A step schedule (x0.2 after ``lr_step`` epochs) for the same 3-minute
      budget reason as the classification recipe.
    """

    regression: str = "pcr"  # "scr" (4 outputs) or "pcr" (4 per class), paper A.1
    finetune: str = "all"  # "all" layers or only "fc" (fc6-fc8), paper Table 8
    epochs: int = 3  # epochs of fine-tuning (PCR/all reached ~2% error after 2 of them on shapes)
    batch_size: int = 32  # images per step
    optimizer: str = "adam"  # "adam" or "sgd" (momentum, the paper)
    lr: float = 1e-3  # initial learning rate (the paper's 1e-3)
    momentum: float = 0.9  # SGD only
    weight_decay: float = 5e-4  # L2 on weights (the paper's 5e-4)
    lr_step: int = 2  # epochs between x lr_gamma decays
    lr_gamma: float = 0.2  # decay factor
    flip: bool = True  # random horizontal flips (with cx -> 1 - cx)
    seed: int = 0  # fc8's initial weights, shuffling and flips
    eval_batch_size: int = 250  # images per inference batch

    def __post_init__(self) -> None:
        def bad(what: str, value: Any, expected: str) -> ValueError:
            return ValueError(f"LocConfig: {what} must be {expected}, got {value!r}")

        if self.regression not in REGRESSIONS:
            raise bad("regression", self.regression, f"one of {REGRESSIONS}")
        if self.finetune not in FINETUNE:
            raise bad("finetune", self.finetune, f"one of {FINETUNE}")
        if self.optimizer not in ("adam", "sgd"):
            raise bad("optimizer", self.optimizer, "'adam' or 'sgd'")
        check_optimization_fields(self, bad)
        if not 0 < self.lr_gamma <= 1:
            raise bad("lr_gamma", self.lr_gamma, "in (0, 1]")

    def to_json(self) -> dict:
        return jsonable(dataclasses.asdict(self))


@dataclass
class LocResult:
    """What :func:`finetune_localizer` returns."""

    localizer: Localizer
    history: list  # one dict per epoch
    checkpoint: Path | None
    seconds: float  # wall time of the whole call (feature caching included)

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}


def evaluate_localizer(loc: Localizer, x: np.ndarray, y: np.ndarray, boxes: np.ndarray, *,
                       batch_size: int = 250) -> dict:
    """Both protocols on ``(x, y, boxes)``: the metrics every history entry records.

    Returns ``{"loss", "loc_error", "loc_error_pred", "mean_iou", "acc"}``:
    the squared-L2 loss of the ground-truth class's box; the localization
    error with the ground-truth class (protocol 1); with the predicted class
    (ILSVRC's top-1 rule: wrong if the class is wrong or IoU <= 0.5); the
    mean IoU (ground-truth class); the classifier's accuracy.
    """
    from ...ops import box_iou

    pred = loc.predict(x, y, batch_size=batch_size)
    loss, _ = l2_loss(pred.boxes_given, boxes.astype(np.float64))
    return {"loss": loss, "loc_error": localization_error(pred.boxes_given, boxes),
            "loc_error_pred": localization_error_with_classes(pred.boxes, boxes, pred.classes, y),
            "mean_iou": float(box_iou(pred.boxes_given, boxes, degenerate="zero").mean()),
            "acc": float(np.mean(pred.classes == y))}


def _mirror(boxes: np.ndarray, flip: np.ndarray) -> np.ndarray:
    """Boxes of left-right mirrored images where ``flip`` (N,) is set: cx -> 1 - cx."""
    out = boxes.copy()
    out[flip, 0] = 1.0 - out[flip, 0]
    return out


class LocTrainer:
    """Fine-tune ``regressor`` (built by :func:`~.head.regressor_from_classifier`) on ``data``'s boxes.

    Parameters
    ----------
    classifier : VGG
        The trained classification net (never changed; it names the class for
        the predicted-class protocol and is saved inside the checkpoint).
    data : Dataset
        With ground-truth boxes (the embedded shapes), the classifier's classes.
    preprocess : Preprocess
        The classifier's (its training mean): both nets see images through it.
    config : LocConfig
    out : path, optional
        Directory for ``checkpoint.npz`` and ``history.json``.
    meta : mapping, optional
        Extra records for the checkpoint (e.g. the ``init`` path).

    Randomness: fc8 from ``seed``; shuffling ``default_rng([seed, 1])``, flips ``default_rng([seed, 2])``.
    Cost per epoch: ``all`` -- 3x the forward MACs per training image; ``fc`` -- the
    fc layers only, after one forward of the frozen part per training image and its mirror.
    """

    def __init__(self, classifier: VGG, data: Dataset, preprocess, config: LocConfig = LocConfig(),
                 out: str | os.PathLike | None = None, meta: dict | None = None) -> None:
        if not data.has_boxes:
            raise ValueError(f"LocTrainer: the {data.name} data have no bounding boxes; localization trains on "
                             "the embedded shapes (--data shapes)")
        if data.num_classes != classifier.num_classes:
            raise ValueError(f"LocTrainer: the classifier predicts {classifier.num_classes} classes but the "
                             f"{data.name} data have {data.num_classes}")
        if preprocess.size != classifier.input_size or data.in_channels != classifier.in_channels:
            raise ValueError(f"LocTrainer: the classifier takes {classifier.in_channels}x{classifier.input_size}"
                             f"x{classifier.input_size} inputs, the data give {data.in_channels}x{preprocess.size}"
                             f"x{preprocess.size}")
        self.classifier, self.data, self.preprocess, self.config = classifier, data, preprocess, config
        self.out = Path(out) if out is not None else None
        self.meta = dict(meta or {})
        self.regressor = regressor_from_classifier(classifier, config.regression, seed=config.seed)
        self.localizer = Localizer(classifier, self.regressor, config.regression, preprocess, list(data.class_names))
        self.params = trainable_params(self.regressor, config.finetune)
        self.optimizer = make_optimizer(config, self.params)  # LocConfig has TrainConfig's optimiser fields
        self.schedule = StepLR(self.optimizer, step_size=config.lr_step, gamma=config.lr_gamma)
        self.shuffle_rng = np.random.default_rng([config.seed, 1])
        self.flip_rng = np.random.default_rng([config.seed, 2])
        names = self.regressor.layers.names()
        self._head = list(self.regressor.layers)[names.index(FROZEN_UNTIL) + 1:]  # fc6 ... fc8
        self._frozen: tuple[np.ndarray, np.ndarray] | None = None  # pool5 of the training images, plain and mirrored
        self.history: list[dict] = []
        self.epoch = 0
        self.elapsed = 0.0

    # -- the two ways of computing a step ------------------------------------
    def _frozen_features(self) -> tuple[np.ndarray, np.ndarray]:
        """pool5 (flattened) of every training image and of its mirror, computed once (``finetune="fc"``)."""
        if self._frozen is None:
            x = self.data.x_train
            plain, mirrored = [], []
            for s in batch_slices(len(x), self.config.eval_batch_size, "LocTrainer"):
                xb = self.preprocess(x[s])
                plain.append(self.regressor.layers.forward(xb, until=FROZEN_UNTIL))
                mirrored.append(self.regressor.layers.forward(np.ascontiguousarray(xb[..., ::-1]), until=FROZEN_UNTIL))
            self._frozen = (np.concatenate(plain), np.concatenate(mirrored))
        return self._frozen

    def _step_outputs(self, idx: np.ndarray, flip: np.ndarray) -> np.ndarray:
        """Regressor outputs (B, D) of training images ``idx`` (mirrored where ``flip``), in train mode."""
        if self.config.finetune == "fc":
            plain, mirrored = self._frozen_features()
            h = np.where(flip[:, None], mirrored[idx], plain[idx])  # (B, D_pool5)
            for layer in self._head:
                h = layer.forward(h, train=True)
            return h
        xb = self.data.x_train[idx]
        if flip.any():
            xb = xb.copy()
            xb[flip] = xb[flip, :, :, ::-1]
        return self.regressor.forward(self.preprocess(xb), train=True)

    def _step_backward(self, dout: np.ndarray) -> None:
        if self.config.finetune == "fc":
            for layer in reversed(self._head):
                dout = layer.backward(dout)
        else:
            self.regressor.layers.backward(dout, input_grad=False)

    def _grads(self) -> dict:
        """The last backward's gradients of the trainable parameters (frozen layers have none under "fc")."""
        layers = {layer.name: layer for layer in self.regressor.layers}
        out = {}
        for key in self.params:
            layer, _, p = key.rpartition(".")
            out[key] = layers[layer].grads[p]
        return out

    # -- epochs ---------------------------------------------------------------
    def train_epoch(self, callback: TrainCallback) -> dict:
        cfg, data = self.config, self.data
        n = len(data.x_train)
        boxes, labels = data.boxes_train, data.y_train
        index = np.arange(n)
        n_batches = -(-n // cfg.batch_size)
        callback.on_epoch_start(self.epoch + 1, n_batches)
        start = time.perf_counter()
        loss_sum, correct, seen = 0.0, 0, 0
        dtype = self.regressor.dtype
        for b, (idx, _) in enumerate(iterate_minibatches(index, index, cfg.batch_size, shuffle=True,
                                                         rng=self.shuffle_rng), 1):
            flip = (self.flip_rng.random(len(idx)) < 0.5) if cfg.flip else np.zeros(len(idx), bool)
            target = _mirror(boxes[idx], flip)  # (B, 4) float64
            out = self._step_outputs(idx, flip)
            chosen, cache = select_boxes(out, labels[idx], cfg.regression)  # the ground-truth class's box
            loss, dboxes = l2_loss(chosen, target.astype(dtype))
            if not math.isfinite(loss):
                self.regressor.layers.clear_caches()
                raise TrainingDiverged(f"localization fine-tuning diverged at epoch {self.epoch + 1}, batch {b}: "
                                       f"the loss is {loss}; try a lower learning rate", self.epoch + 1, b, None)
            self._step_backward(select_boxes_backward(dboxes, cache))
            self.optimizer.step(self._grads())
            loss_sum += loss * len(idx)
            correct += int(localization_correct(chosen.astype(np.float64), target).sum())
            seen += len(idx)
            callback.on_batch_end(b, seen, loss_sum / seen, correct / seen)
        seconds = time.perf_counter() - start
        return {"train_loss": loss_sum / seen, "train_loc_error": 1 - correct / seen,
                "images_per_s": seen / max(seconds, 1e-9)}

    def _meta(self) -> dict:
        return {**self.meta, "localize": self.config.to_json(), "data": jsonable(self.data.info),
                "epoch": self.epoch, "elapsed": self.elapsed, "history": self.history}

    def fit(self, callback: TrainCallback | None = None) -> LocResult:
        """Fine-tune for ``config.epochs`` epochs, validating (both protocols) and saving after each."""
        callback = callback or TrainCallback()
        t_call = time.perf_counter()
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
        callback.on_fit_start(self.epoch, self.config.epochs)
        cfg, data = self.config, self.data
        while self.epoch < cfg.epochs:
            t0 = time.perf_counter()
            lr = self.optimizer.lr
            stats = self.train_epoch(callback)
            for k, v in self.params.items():
                if not np.isfinite(v).all():
                    raise TrainingDiverged(f"localization fine-tuning diverged at epoch {self.epoch + 1}: "
                                           f"parameter {k} holds NaN/inf", self.epoch + 1, None, None)
            val = evaluate_localizer(self.localizer, data.x_val, data.y_val, data.boxes_val,
                                     batch_size=cfg.eval_batch_size)
            self.schedule.step()
            self.epoch += 1
            self.elapsed += time.perf_counter() - t0
            entry = {"epoch": self.epoch, "train_loss": stats["train_loss"],
                     "train_loc_error": stats["train_loc_error"], "val_loss": val["loss"],
                     "val_loc_error": val["loc_error"], "val_loc_error_pred": val["loc_error_pred"],
                     "val_mean_iou": val["mean_iou"], "val_acc": val["acc"],
                     "seconds": time.perf_counter() - t_call, "lr": lr, "images_per_s": stats["images_per_s"]}
            self.history.append(entry)
            if self.out is not None:
                save_localizer(self.out / CHECKPOINT_NAME, self.localizer, self._meta())
                write_json(self.out / HISTORY_NAME, self.history)
            callback.on_epoch_end(entry)
        return LocResult(self.localizer, list(self.history),
                         self.out / CHECKPOINT_NAME if self.out is not None else None,
                         time.perf_counter() - t_call)


def finetune_localizer(init: str | os.PathLike | Checkpoint, data: Dataset, config: LocConfig = LocConfig(), *,
                       out: str | os.PathLike | None = None, callback: TrainCallback | None = None) -> LocResult:
    """Fine-tune a localizer from a classification checkpoint: the library call behind
    ``minivgg train --task localize --init CHECKPOINT``.

    Parameters
    ----------
    init : path or Checkpoint
        A classification checkpoint written by ``minivgg train`` (it must record
        its preprocessing; a localization checkpoint is refused).
    data : Dataset
        Shapes with boxes, the classifier's classes.
    out : path, optional
        Output directory; refuses to overwrite an existing ``checkpoint.npz``.

    Raises
    ------
    CheckpointError, FileNotFoundError
        ``init`` unreadable, plain weights, or already a localizer.
    ValueError
        Data without boxes or not fitting the classifier.
    FileExistsError
        ``out`` already holds a checkpoint.
    """
    classifier, ckpt = model_from_checkpoint(init)
    if is_localization_checkpoint(ckpt):
        raise CheckpointError(f"{ckpt.path} is already a localization checkpoint; --init takes the "
                              "classification checkpoint it should start from")
    if ckpt.preprocess is None:
        raise CheckpointError(f"{ckpt.path} holds plain weights without the preprocessing it was trained with; "
                              "--init takes a checkpoint.npz written by minivgg train")
    if out is not None and (Path(out) / CHECKPOINT_NAME).exists():
        raise FileExistsError(f"{Path(out) / CHECKPOINT_NAME} already exists; choose another output directory")
    meta = {"init": str(ckpt.path), "init_history": ckpt.meta.get("history", [])[-1:]}
    trainer = LocTrainer(classifier, data, ckpt.preprocess, config, out, meta)
    return trainer.fit(callback)
