"""The training loop: epochs of shuffled, augmented mini-batches, validation, checkpoints, a NaN guard.

Simonyan & Zisserman (arXiv 1409.1556) §3.1 trained VGG by mini-batch
gradient descent on the softmax cross-entropy, inputs randomly cropped and
flipped (cs231n lecture 9: "like AlexNet"). :class:`Trainer` is that loop,
small enough to watch on a CPU; :func:`train` is the one call behind
``minivgg train``. The settings live in :mod:`~minivgg.training.config`, the
data in :mod:`~minivgg.training.datasets`, the files in
:mod:`~minivgg.training.checkpoint`.

The library prints nothing: a :class:`TrainCallback` hears of every step and
epoch, and the CLI turns that into a progress bar and epoch lines.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from pathlib import Path

import numpy as np

from ..configs import VGGConfig
from ..io.files import CheckpointError
from ..layers import Dropout
from ..ops import softmax_cross_entropy
from ..vgg import VGG
from . import data as datamod
from .checkpoint import (CHECKPOINT_NAME, HISTORY_NAME, Checkpoint, build_model, check_architecture,
                         read_checkpoint, rng_state, save_checkpoint, set_rng_state, write_json)
from .config import TrainConfig, TrainingDiverged, TrainResult, jsonable, recipe_config
from .datasets import Dataset
from .evaluate import loss_and_accuracy
from .optim import SGD, Adam, Optimizer
from .schedules import ReduceLROnPlateau, StepLR


class TrainCallback:
    """What the trainer reports while it works; override the hooks you need (each does nothing here).

    Order: ``on_fit_start`` once, then per epoch ``on_epoch_start``,
    ``on_batch_end`` after every step, ``on_epoch_end`` after validation and
    the checkpoint. Exceptions raised in a hook stop training (the last
    checkpoint stays intact).
    """

    def on_fit_start(self, epochs_done: int, epochs: int) -> None:
        """Training starts with ``epochs_done`` of ``epochs`` already complete (resume)."""

    def on_epoch_start(self, epoch: int, n_batches: int) -> None:
        """Epoch ``epoch`` (1-based) begins; it has ``n_batches`` steps."""

    def on_batch_end(self, batch: int, images: int, loss: float, acc: float) -> None:
        """Step ``batch`` (1-based) is done; ``images`` seen so far this epoch, running mean loss and accuracy."""

    def on_epoch_end(self, entry: dict) -> None:
        """The epoch's history entry (keys :data:`~minivgg.training.checkpoint.HISTORY_KEYS`, ``lr``, ``images_per_s``)."""


def make_optimizer(config: TrainConfig, params: dict) -> Optimizer:
    """``config.optimizer``'s optimiser over ``params`` with the config's lr, momentum and weight decay."""
    if config.optimizer == "sgd":
        return SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def _make_schedule(config: TrainConfig, optimizer: Optimizer):
    if config.schedule == "step":
        return StepLR(optimizer, step_size=config.lr_step, gamma=config.lr_gamma)
    if config.schedule == "plateau":
        return ReduceLROnPlateau(optimizer, factor=config.lr_gamma, patience=config.patience)
    return None


class Trainer:
    """Mini-batch training of a :class:`VGG` with validation, checkpoints and a NaN guard.

    Parameters
    ----------
    model : VGG
        Trained in place. Its input size, channels and classes must fit ``data``.
    data : Dataset
    config : TrainConfig
    out : path, optional
        Directory for ``checkpoint.npz`` and ``history.json`` (created if needed),
        rewritten atomically after every epoch.

    Randomness: the weights and dropout masks come from ``model``'s seed; the
    shuffling from ``default_rng([seed, 1])`` and the augmentation from
    ``default_rng([seed, 2])``. All generator states go into the checkpoint.

    Cost per epoch: 3x the forward MACs per training image (forward + backward)
    plus one forward per validation image.

    The NaN guard: an epoch is saved only if every number it produced is
    finite -- each step's loss (checked before its update), the mean training
    loss, every parameter and optimiser buffer, the validation loss and
    accuracy. Otherwise :class:`TrainingDiverged` is raised before the save and
    the checkpoint on disk stays the previous epoch's. Weights that have grown
    huge (say 1e25) but are still finite, with a finite loss, are saved: the
    guard is about non-finite numbers, not a judgement of the run (a huge
    weight overflows the next forward pass in float32 soon enough, and that
    epoch is then refused).
    """

    def __init__(self, model: VGG, data: Dataset, config: TrainConfig = TrainConfig(),
                 out: str | os.PathLike | None = None) -> None:
        if not isinstance(model, VGG):
            raise TypeError(f"Trainer: model must be a minivgg.vgg.VGG, got {type(model).__name__}")
        pre = data.preprocess
        if (model.input_size, model.in_channels, model.num_classes) != (pre.size, data.in_channels, data.num_classes):
            raise ValueError(f"Trainer: the model takes {model.in_channels}x{model.input_size}x{model.input_size} "
                             f"images and predicts {model.num_classes} classes, but the {data.name} data give "
                             f"{data.in_channels}x{pre.size}x{pre.size} inputs and {data.num_classes} classes")
        if pre.dtype != model.dtype.name:
            raise ValueError(f"Trainer: the data are prepared as {pre.dtype} but the model is {model.dtype.name}")
        self.model, self.data, self.config = model, data, config
        self.out = Path(out) if out is not None else None
        self.optimizer = make_optimizer(config, model.params)
        self.schedule = _make_schedule(config, self.optimizer)
        self.shuffle_rng = np.random.default_rng([config.seed, 1])
        self.augment_rng = np.random.default_rng([config.seed, 2])
        self.epoch = 0  # epochs completed
        self.history: list[dict] = []
        self.elapsed = 0.0  # cumulative wall time of completed epochs (survives resume)

    # -- state -----------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return self.out / CHECKPOINT_NAME if self.out is not None else None

    def _dropouts(self) -> list[Dropout]:
        return [layer for layer in self.model.layers if isinstance(layer, Dropout)]

    def _meta(self) -> dict:
        return {
            "train": self.config.to_json(),
            "preprocess": self.data.preprocess.to_json(),
            "data": jsonable(self.data.info),
            "class_names": list(self.data.class_names),
            "epoch": self.epoch,
            "elapsed": self.elapsed,
            "history": self.history,
            "optimizer": type(self.optimizer).__name__,
            "schedule": type(self.schedule).__name__ if self.schedule is not None else None,
            "rng": {"shuffle": rng_state(self.shuffle_rng), "augment": rng_state(self.augment_rng),
                    "dropout": {d.name: rng_state(d.rng) for d in self._dropouts()}},
        }

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Checkpoint the complete training state (atomically)."""
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            raise ValueError("Trainer.save: no path given and the trainer has no output directory")
        return save_checkpoint(path, self.model, self._meta(), self.optimizer, self.schedule)

    def restore(self, ckpt: Checkpoint | str | os.PathLike) -> None:
        """Load a checkpoint of this run: weights, optimiser, schedule, generators, epoch, history.

        Everything is validated before anything changes: a checkpoint of another
        architecture, other training settings or other data raises
        :class:`CheckpointError` and leaves the trainer as it was.
        """
        ckpt = ckpt if isinstance(ckpt, Checkpoint) else read_checkpoint(ckpt)
        check_architecture(ckpt, self.model)
        meta = ckpt.meta
        for key in ("train", "rng", "epoch", "history", "preprocess", "data"):
            if key not in meta:
                raise CheckpointError(f"{ckpt.path}: holds weights only (no '{key}'); it cannot resume training")
        saved, mine = meta["train"], self.config.to_json()
        diffs = [f"{k}: checkpoint {saved.get(k)!r} vs now {v!r}" for k, v in mine.items()
                 if k not in TrainConfig.RESUMABLE_CHANGES and saved.get(k) != v]
        if diffs:
            raise CheckpointError(f"{ckpt.path} was trained with other settings; resume with the same ones: "
                                  + "; ".join(diffs))
        if meta["preprocess"] != self.data.preprocess.to_json() or meta["data"] != jsonable(self.data.info):
            raise CheckpointError(f"{ckpt.path} was trained on other data ({meta['data']}); now {self.data.info}")
        dropouts = {d.name: d for d in self._dropouts()}
        if set(meta["rng"]["dropout"]) != set(dropouts):
            raise CheckpointError(f"{ckpt.path}: dropout generators {sorted(meta['rng']['dropout'])} "
                                  f"do not match the model's {sorted(dropouts)}")
        # Stage the optimiser, schedule and generators as new objects; the weights
        # go in last through VGG.load_params, which validates everything before it
        # writes. Any failure before the commit below leaves the trainer as it was.
        try:
            optimizer = make_optimizer(self.config, self.model.params)  # reads params, never writes them
            optimizer.load_state_dict(ckpt.optim)
            schedule = _make_schedule(self.config, optimizer)
            if schedule is not None:
                schedule.load_state_dict(ckpt.sched)
            elif ckpt.sched:
                raise CheckpointError(f"{ckpt.path}: has schedule state but the config has no schedule")
            rngs = {"shuffle": np.random.default_rng(0), "augment": np.random.default_rng(0)}
            for k, r in rngs.items():
                set_rng_state(r, meta["rng"][k], k)
            drop_states = {}
            for name in dropouts:
                r = np.random.default_rng(0)
                set_rng_state(r, meta["rng"]["dropout"][name], name)
                drop_states[name] = r.bit_generator.state
            self.model.load_params(ckpt.params)  # all or nothing
        except CheckpointError:
            raise
        except (TypeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{ckpt.path}: cannot restore the training state: {e}") from e
        # commit
        self.optimizer, self.schedule = optimizer, schedule
        self.shuffle_rng, self.augment_rng = rngs["shuffle"], rngs["augment"]
        for name, state in drop_states.items():
            dropouts[name].rng.bit_generator.state = state
        self.epoch = int(meta["epoch"])
        self.history = list(meta["history"])
        self.elapsed = float(meta.get("elapsed", 0.0))

    # -- one epoch ---------------------------------------------------------
    def _diverged(self, what: str, batch: int | None = None) -> TrainingDiverged:
        """The error for a non-finite ``what`` found in epoch ``self.epoch + 1`` (nothing of it is saved)."""
        epoch, lr = self.epoch + 1, self.optimizer.lr
        ck = self.checkpoint_path
        kept = ck if ck is not None and self.epoch > 0 and ck.exists() else None
        where = f"epoch {epoch}" + (f", batch {batch}" if batch is not None else "")
        keeping = (f"epoch {epoch} was not saved and the last good checkpoint {kept} (epoch {self.epoch}) is intact"
                   if kept is not None else "nothing was saved")
        return TrainingDiverged(
            f"training diverged at {where}: {what} (lr {lr:.3g}); {keeping}. "
            f"Try a lower learning rate, e.g. --lr {lr / 10:.3g}", epoch, batch, kept)

    def _check_finite_state(self, stats: dict) -> None:
        """Raise :class:`TrainingDiverged` if the epoch's mean loss, a parameter or an optimiser buffer is not finite.

        A gradient can overflow while the loss it came from is finite, and an
        Adam/momentum buffer can overflow while the weights are still finite;
        either would poison the next epoch, so neither is saved.
        """
        if not math.isfinite(stats["train_loss"]):
            raise self._diverged(f"the mean training loss is {stats['train_loss']}")
        for k, v in self.model.params.items():
            if not np.isfinite(v).all():
                raise self._diverged(f"parameter {k} holds NaN/inf after the updates")
        for k, v in self.optimizer.state_dict().items():
            if np.asarray(v).dtype.kind == "f" and not np.isfinite(v).all():
                raise self._diverged(f"optimiser state {k} holds NaN/inf")

    def train_epoch(self, callback: TrainCallback | None = None) -> dict:
        """Run one epoch of shuffled, augmented mini-batches; return ``{train_loss, train_acc, images_per_s}``.

        ``callback.on_batch_end`` is called after every step (see :class:`TrainCallback`).

        Raises
        ------
        TrainingDiverged
            A batch loss is NaN or infinite (checked before the update is applied).
        """
        cfg = self.config
        x, y = self.data.x_train, self.data.y_train
        n_batches = -(-len(x) // cfg.batch_size)
        callback = callback or TrainCallback()
        callback.on_epoch_start(self.epoch + 1, n_batches)
        start = time.perf_counter()
        batches = datamod.iterate_minibatches(x, y, cfg.batch_size, shuffle=True, rng=self.shuffle_rng)
        with warnings.catch_warnings():
            # A diverging run overflows in matmul/exp before its loss turns NaN; the
            # guard below says so in one clear message instead of numpy's warnings.
            warnings.filterwarnings("ignore", r"(overflow|invalid value) encountered", RuntimeWarning)
            loss_sum, correct, seen = self._run_batches(batches, callback)
        seconds = time.perf_counter() - start
        return {"train_loss": loss_sum / seen, "train_acc": correct / seen, "images_per_s": seen / max(seconds, 1e-9)}

    def _run_batches(self, batches, callback: TrainCallback) -> tuple[float, int, int]:
        cfg, model, pre = self.config, self.model, self.data.preprocess
        loss_sum, correct, seen = 0.0, 0, 0
        for b, (xb, yb) in enumerate(batches, 1):
            if cfg.flip:
                xb = datamod.random_flip(xb, self.augment_rng)
            if cfg.crop_pad:
                xb = datamod.random_crop(xb, xb.shape[-1], cfg.crop_pad, self.augment_rng)
            logits = model.forward(pre(xb), train=True)  # (B, K)
            loss, dlogits = softmax_cross_entropy(logits, yb)
            if not math.isfinite(loss):
                model.layers.clear_caches()
                raise self._diverged(f"the training loss is {loss}", b)
            model.backward(dlogits)
            self.optimizer.step(model.grads)
            loss_sum += loss * len(yb)
            correct += int((logits.argmax(axis=1) == yb).sum())
            seen += len(yb)
            callback.on_batch_end(b, seen, loss_sum / seen, correct / seen)
        return loss_sum, correct, seen

    def fit(self, epochs: int | None = None, *, callback: TrainCallback | None = None,
            max_seconds: float | None = None, min_epochs: int = 1) -> TrainResult:
        """Train until ``epochs`` (default ``config.epochs``) epochs are complete.

        After each epoch: validate, step the schedule, append to the history,
        write the checkpoint and ``history.json`` (if ``out``), then call
        ``callback.on_epoch_end`` with the history entry. ``max_seconds`` stops at an epoch boundary once
        another epoch would probably overrun it (``stopped_early`` says so), but
        never before ``min_epochs`` epochs of this call are done -- so a run
        on a slow or busy machine still shows a trend instead of one point.

        Raises
        ------
        TrainingDiverged
            A non-finite number anywhere in an epoch (a step's loss, the mean
            training loss, a parameter, an optimiser buffer, the validation loss
            or accuracy): raised before that epoch is saved, so the checkpoint on
            disk stays the previous epoch's (or there is none).
        """
        epochs = self.config.epochs if epochs is None else epochs
        callback = callback or TrainCallback()
        callback.on_fit_start(self.epoch, epochs)
        made: list[Path] = []  # directories this call creates, removed again if it ends before saving anything
        if self.out is not None:
            made = [d for d in (self.out, *self.out.parents) if not d.exists()]
            self.out.mkdir(parents=True, exist_ok=True)  # early, so an unwritable --out fails before any work
        try:
            return self._fit(epochs, callback, max_seconds, min_epochs)
        except BaseException:  # divergence, Ctrl-C, errors: leave no empty directory behind
            for d in made:  # innermost first
                if d.exists() and not any(d.iterdir()):
                    d.rmdir()
            raise

    def _fit(self, epochs: int, callback: TrainCallback, max_seconds: float | None,
             min_epochs: int = 1) -> TrainResult:
        t_call = time.perf_counter()
        run, stopped = 0, ""
        while self.epoch < epochs:
            if max_seconds is not None and run >= max(1, min_epochs):
                per_epoch = (time.perf_counter() - t_call) / run
                if time.perf_counter() - t_call + per_epoch > max_seconds:
                    stopped = (f"time budget of {max_seconds:.1f} s reached after {self.epoch} "
                               f"epoch{'' if self.epoch == 1 else 's'}")
                    break
            t0 = time.perf_counter()
            lr = self.optimizer.lr
            stats = self.train_epoch(callback)
            self._check_finite_state(stats)
            with warnings.catch_warnings():  # huge (finite) weights overflow here first: the check below says so
                warnings.filterwarnings("ignore", r"(overflow|invalid value) encountered", RuntimeWarning)
                val_loss, val_acc = loss_and_accuracy(self.model, self.data.x_val, self.data.y_val,
                                                      transform=self.data.preprocess,
                                                      batch_size=self.config.eval_batch_size)
            for what, value in (("validation loss", val_loss), ("validation accuracy", val_acc)):
                if not math.isfinite(value):
                    raise self._diverged(f"the {what} is {value}")
            if self.schedule is not None:
                self.schedule.step(val_acc) if isinstance(self.schedule, ReduceLROnPlateau) else self.schedule.step()
            self.epoch += 1
            run += 1
            self.elapsed += time.perf_counter() - t0
            entry = {"epoch": self.epoch, "train_loss": stats["train_loss"], "train_acc": stats["train_acc"],
                     "val_loss": val_loss, "val_acc": val_acc, "seconds": self.elapsed, "lr": lr,
                     "images_per_s": stats["images_per_s"]}
            self.history.append(entry)
            if self.out is not None:
                self.save()
                write_json(self.out / HISTORY_NAME, self.history)
            callback.on_epoch_end(entry)
        return TrainResult(self.model, list(self.history), self.checkpoint_path if self.out else None, run,
                           time.perf_counter() - t_call, stopped)


def train(data: Dataset, config: TrainConfig = TrainConfig(), *, model: VGG | None = None,
          arch: VGGConfig | None = None, out: str | os.PathLike | None = None, resume: bool = False,
          callback: TrainCallback | None = None, max_seconds: float | None = None,
          min_epochs: int = 1) -> TrainResult:
    """Train a VGG on ``data``: the library call behind ``minivgg train``.

    Parameters
    ----------
    data : Dataset
        From :func:`load_dataset`.
    config : TrainConfig
    model : VGG, optional
        Train this model; otherwise one is built from ``arch`` (default:
        :func:`~minivgg.training.config.recipe_config` of the data), in the
        data's dtype, seeded with ``config.seed``.
    out : path, optional
        Output directory. Refuses to start over an existing checkpoint unless
        ``resume`` (so no finished run is overwritten by accident).
    resume : bool
        Continue ``out/checkpoint.npz``: the architecture comes from the
        checkpoint (``arch``/``model``, if given, must match it) and training
        continues to ``config.epochs`` exactly as if never interrupted.

    Raises
    ------
    CheckpointError, FileNotFoundError
        Resuming from a missing, foreign or incompatible checkpoint.
    FileExistsError
        ``out`` already holds a checkpoint and ``resume`` is False.
    TrainingDiverged
        The loss became NaN/inf.

    ``callback`` (a :class:`TrainCallback`) hears of every step and epoch; the
    library itself prints nothing.
    """
    ckpt = None
    if out is not None:
        path = Path(out) / CHECKPOINT_NAME
        if resume:
            ckpt = read_checkpoint(path)
        elif path.exists():
            raise FileExistsError(f"{path} already exists; resume it or choose another output directory")
    elif resume:
        raise ValueError("resume=True needs the output directory that holds the checkpoint")
    if model is None:
        if ckpt is not None:
            model = build_model(ckpt, seed=config.seed)
            if arch is not None:
                check_architecture(ckpt, VGGConfig.from_arch(arch))  # the record is enough: no model is built
        else:
            model = VGG(arch or recipe_config(data), dtype=data.preprocess.dtype, seed=config.seed)
    trainer = Trainer(model, data, config, out)
    if ckpt is not None:
        trainer.restore(ckpt)
    return trainer.fit(callback=callback, max_seconds=max_seconds, min_epochs=min_epochs)
