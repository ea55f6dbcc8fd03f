"""Training VGG the paper's way at laptop scale: the trainer, checkpoints and history.

Simonyan & Zisserman (arXiv 1409.1556) §3.1: mini-batch gradient descent on
the softmax cross-entropy, momentum 0.9, weight decay 5e-4, dropout 0.5 on
fc6/fc7, the learning rate divided by 10 when validation accuracy stops
improving; inputs are mean-subtracted (§2.1), randomly cropped and flipped.
cs231n lecture 9 says VGG was trained "like AlexNet"; this module is that
recipe, small enough to watch on a CPU.

What lives here
---------------
* :class:`ModelSpec` -- the arguments that rebuild a :class:`~minivgg.vgg.VGG`
  (stored in every checkpoint, so a checkpoint alone gives back its model).
* :class:`Preprocess` / :class:`Dataset` / :func:`load_dataset` -- the embedded
  shapes data, CIFAR-10 or (Fashion-)MNIST, as raw arrays plus the transform
  (scale to [0, 1], subtract the training mean, zero-pad to the input size).
* :class:`TrainConfig` and :class:`Trainer` -- epochs of shuffled mini-batches,
  augmentation, the optimiser and schedule of :mod:`minivgg.training.optim`, a progress
  bar, validation after every epoch, a NaN guard, checkpoints.
* :func:`train` -- the one call the CLI makes; :func:`tour_training_run`.

Checkpoint format (``.npz``, loaded with ``allow_pickle=False``)
-----------------------------------------------------------------
=========================  ===============================================
key                        content
=========================  ===============================================
``meta``                   0-d unicode array: a JSON object with ``format``,
                           ``model`` (:class:`ModelSpec`), ``train``
                           (:class:`TrainConfig`), ``preprocess``, ``data``,
                           ``epoch``, ``history``, ``optimizer``,
                           ``schedule`` and ``rng`` (bit-generator states of
                           the shuffling, augmentation and every dropout
                           layer's generator, as JSON)
``param.<name>``           every model parameter (``param.conv1_1.w`` ...)
``optim.<key>``            :meth:`minivgg.training.optim.Optimizer.state_dict`
``sched.<key>``            the schedule's ``state_dict``
=========================  ===============================================

Restoring all of it at an epoch boundary makes a resumed run continue bit for
bit like an uninterrupted one (same thread count, same machine). Files are
written atomically: a temporary file in the target directory, fsync, then
``os.replace``, so a crash leaves either the old file or the new one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TextIO

import numpy as np

from . import data as datamod
from .evaluate import loss_and_accuracy
from ..layers import Dropout
from ..ops import softmax_cross_entropy
from .optim import SGD, Adam, Optimizer
from .schedules import ReduceLROnPlateau, StepLR
from ..vgg import VGG
from ..io.files import CheckpointError, atomic_write

__all__ = [
    "CHECKPOINT_NAME", "HISTORY_NAME", "HISTORY_KEYS", "CheckpointError", "TrainingDiverged",
    "ModelSpec", "Preprocess", "Dataset", "load_dataset", "TrainConfig", "TrainResult", "Trainer",
    "train", "save_checkpoint", "read_checkpoint", "model_from_checkpoint",
    "load_history", "format_epoch", "tour_training_run", "format_tour_result",
]

CHECKPOINT_NAME = "checkpoint.npz"
HISTORY_NAME = "history.json"
FORMAT_VERSION = 1
#: Keys every ``history.json`` entry has (more may follow: ``lr``, ``images_per_s``).
HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")
DATASETS = ("shapes", "cifar10", "mnist")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; nothing was saved for the failing epoch."""

    def __init__(self, message: str, epoch: int, batch: int, checkpoint: Path | None) -> None:
        super().__init__(message)
        self.epoch, self.batch, self.checkpoint = epoch, batch, checkpoint


# =================================================================== model spec
@dataclass(frozen=True)
class ModelSpec:
    """Everything :class:`~minivgg.vgg.VGG` needs to rebuild a model (its weights come from the checkpoint)."""

    arch: str = "vgg11"  # "vgg11".."vgg19", a letter A-E, or "custom" (then ``config`` is used)
    config: tuple = ()  # the resolved Table-1 list, e.g. (64, "M", 128, "M", ...); filled in by from_model
    num_classes: int = 10  # outputs of fc8
    input_size: int = 32  # side of the square input
    in_channels: int = 3  # 3 for RGB, 1 for MNIST
    width: float = 0.125  # multiplier on conv channels
    fc_width: int = 128  # width of fc6 and fc7
    dropout: float = 0.0  # drop probability after fc6 and fc7 (the paper: 0.5; why 0 here: TrainConfig)
    dtype: str = "float32"  # float32 (speed) or float64 (checks)
    init: str = "he"  # "he" or "paper"
    seed: int = 0  # weight init and dropout streams

    @classmethod
    def from_model(cls, model: VGG) -> "ModelSpec":
        """The spec of an existing model."""
        return cls(arch=model.arch, config=tuple(model.config), num_classes=model.num_classes,
                   input_size=model.input_size, in_channels=model.in_channels, width=float(model.width),
                   fc_width=int(model.fc_width), dropout=float(model.dropout), dtype=model.dtype.name,
                   init=model.init, seed=int(model.seed))

    def build(self) -> VGG:
        """A fresh :class:`VGG` with this architecture (weights seeded by ``seed``)."""
        config = [tuple(i) if isinstance(i, list) else i for i in self.config] if self.arch == "custom" else self.arch
        return VGG(config, num_classes=self.num_classes, input_size=self.input_size, width=self.width,
                   fc_width=self.fc_width, dropout=self.dropout, dtype=np.dtype(self.dtype), seed=self.seed,
                   init=self.init, in_channels=self.in_channels)

    def architecture(self) -> dict:
        """The fields that decide parameter shapes and the forward math (not ``seed``/``init``)."""
        d = self.to_json()
        for k in ("seed", "init"):
            d.pop(k)
        return d

    def describe(self) -> str:
        return (f"{self.arch} (width {self.width:g}, fc_width {self.fc_width}, {self.num_classes} classes, "
                f"{self.in_channels}x{self.input_size}x{self.input_size} input, dropout {self.dropout:g}, "
                f"{self.dtype})")

    def to_json(self) -> dict:
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ModelSpec":
        return cls(**{**d, "config": tuple(tuple(i) if isinstance(i, list) else i for i in d["config"])})


def _jsonable(obj: Any) -> Any:
    """Tuples -> lists, numpy scalars -> Python scalars (what ``json`` round-trips)."""
    if isinstance(obj, (list, tuple)):
        return [_jsonable(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


# ================================================================== datasets
@dataclass(frozen=True)
class Preprocess:
    """Raw images -> model input: scale to [0, 1], subtract the training mean, zero-pad.

    The paper's only preprocessing is subtracting the mean RGB value of the
    training set (§2.1). MNIST's 28x28 digits are zero-padded to 32x32 (as
    LeNet-5 did) so that VGG's five pools fit; padding comes after the mean
    subtraction, so the border is the mean colour.

    Parameters
    ----------
    mean : tuple of float, one per channel
        In [0, 1] units.
    size : int
        Side of the model input after padding.
    dtype : str
        The model's dtype.
    """

    mean: tuple
    size: int
    dtype: str = "float32"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``(N, C, h, w)`` uint8 or float in [0, 1] -> ``(N, C, size, size)`` of ``dtype``.

        Raises
        ------
        ValueError
            Channel count or image size does not fit (names both).
        """
        if not isinstance(x, np.ndarray) or x.ndim != 4:
            raise ValueError(f"Preprocess: expected images (N, C, H, W), got {getattr(x, 'shape', type(x).__name__)}")
        n, c, h, w = x.shape
        if c != len(self.mean):
            raise ValueError(f"Preprocess: the model takes {len(self.mean)}-channel images, got {c} channels")
        if h != w or h > self.size or (self.size - h) % 2:
            raise ValueError(f"Preprocess: the model takes {self.size}x{self.size} images "
                             f"(or smaller ones padded evenly), got {h}x{w}")
        dt = np.dtype(self.dtype)
        xf = datamod.to_float(x, dt) if x.dtype == np.uint8 else x.astype(dt, copy=False)
        xf = datamod.subtract_mean(xf, np.asarray(self.mean))
        if h == self.size:
            return xf
        p = (self.size - h) // 2
        out = np.zeros((n, c, self.size, self.size), dtype=dt)
        out[:, :, p:p + h, p:p + w] = xf
        return out

    def to_json(self) -> dict:
        return {"mean": [float(m) for m in self.mean], "size": self.size, "dtype": self.dtype}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Preprocess":
        return cls(mean=tuple(float(m) for m in d["mean"]), size=int(d["size"]), dtype=str(d["dtype"]))


@dataclass
class Dataset:
    """Raw train/validation/test arrays plus the transform the model sees them through.

    ``x_*`` are uint8 (CIFAR-10, MNIST; kept small) or float32 in [0, 1]
    (shapes), NCHW; ``y_*`` int64. ``preprocess`` turns a raw batch into the
    model's input; :attr:`info` is what a checkpoint records to find the data again.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list
    preprocess: Preprocess
    info: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of ``"train"``, ``"val"`` or ``"test"``."""
        if name not in ("train", "val", "test"):
            raise ValueError(f"Dataset.split: expected 'train', 'val' or 'test', got {name!r}")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")


def _input_size_for(h: int) -> int:
    """Smallest multiple of 32 >= h: five 2x2 pools need it (28 -> 32)."""
    return max(32, -(-h // 32) * 32)


def load_dataset(name: str = "shapes", data_dir: str | os.PathLike | None = None, *, n_train: int | None = None,
                 n_val: int | None = None, data_seed: int = 0, classes: Sequence[str] | None = None,
                 dtype: str = "float32") -> Dataset:
    """Load a dataset and compute its preprocessing from the training split.

    Parameters
    ----------
    name : {"shapes", "cifar10", "mnist"}
        ``shapes``: the embedded generated dataset (:func:`minivgg.training.data.load_shapes`;
        train from seed ``(data_seed, 0)``, val ``(data_seed, 1)``, test
        ``(data_seed, 2)``). ``cifar10``: the cs231n python batches in
        ``data_dir``. ``mnist``: MNIST or Fashion-MNIST idx files in ``data_dir``.
    data_dir : path
        Required for cifar10 and mnist.
    n_train, n_val : int, optional
        shapes: number of generated train/val(/test) images (defaults 10,000 /
        2,000). cifar10/mnist: ``n_val`` images are held out from the end of the
        training files for validation (default 5,000); ``n_train`` caps the rest.
    data_seed : int
        Seed of the generated data (shapes only); independent of the training seed
        so that ensemble members trained with different seeds see the same data.
    classes : sequence of str, optional
        shapes only: a subset of :data:`minivgg.training.data.SHAPE_CLASSES` (labels index it).
    dtype : str
        dtype of the model input.

    Raises
    ------
    ValueError, FileNotFoundError
        Unknown name, missing ``data_dir``, missing or corrupt files (from the loaders).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    info: dict = {"name": name, "data_seed": int(data_seed)}
    if name == "shapes":
        if data_dir is not None:
            raise ValueError("the shapes dataset is generated; it takes no data directory")
        n_train = 10_000 if n_train is None else n_train
        n_val = 2_000 if n_val is None else n_val
        cls = tuple(classes) if classes is not None else datamod.SHAPE_CLASSES
        split = datamod.load_shapes(n_train, n_val, data_seed, classes=cls)
        x_test, y_test = datamod.make_shapes(n_val, seed=(int(data_seed), 2), classes=cls)
        xtr, ytr, xva, yva, names = split
        info.update(n_train=int(n_train), n_val=int(n_val), classes=list(cls))
    else:
        if data_dir is None:
            raise ValueError(f"the {name} dataset needs a data directory (--data-dir DIR)")
        if classes is not None:
            raise ValueError("classes= selects shape classes; it only applies to the shapes dataset")
        if name == "cifar10":
            x_all, y_all, x_test, y_test = datamod.load_cifar10(data_dir)
            names = list(datamod.CIFAR10_CLASSES)
        else:
            x_all, y_all = datamod.load_mnist(data_dir, "train")
            x_test, y_test = datamod.load_mnist(data_dir, "t10k")
            names = [str(i) for i in range(10)]
        n_val = 5_000 if n_val is None else n_val
        if not 1 <= n_val < len(x_all):
            raise ValueError(f"{name}: n_val must be in 1..{len(x_all) - 1} for {len(x_all)} training images, got {n_val}")
        xtr, ytr = x_all[:-n_val], y_all[:-n_val]
        xva, yva = x_all[-n_val:], y_all[-n_val:]
        if n_train is not None:
            xtr, ytr = xtr[:n_train], ytr[:n_train]
        info.update(n_train=None if n_train is None else int(n_train), n_val=int(n_val),
                    data_dir=str(Path(data_dir).resolve()))
    if len(xtr) == 0:
        raise ValueError(f"{name}: the training split is empty")
    mean = datamod.channel_mean(xtr)
    if xtr.dtype == np.uint8:
        mean = mean / 255.0
    pre = Preprocess(mean=tuple(float(m) for m in mean), size=_input_size_for(xtr.shape[2]), dtype=str(dtype))
    return Dataset(name, xtr, ytr, xva, yva, x_test, y_test, list(names), pre, info)


def dataset_for_checkpoint(meta: Mapping[str, Any], data_dir: str | os.PathLike | None = None) -> Dataset:
    """Reload the dataset a checkpoint was trained on (``data_dir`` overrides the recorded one)."""
    info = meta["data"]
    name = info["name"]
    if name == "shapes":
        return load_dataset("shapes", n_train=info["n_train"], n_val=info["n_val"], data_seed=info["data_seed"],
                            classes=info.get("classes"), dtype=meta["model"]["dtype"])
    return load_dataset(name, data_dir if data_dir is not None else info.get("data_dir"), n_train=info["n_train"],
                        n_val=info["n_val"], dtype=meta["model"]["dtype"])


# ============================================================ configuration
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("step", "plateau", "none")


@dataclass(frozen=True)
class TrainConfig:
    """How to train (the defaults are the ones ``minivgg train --data shapes`` uses).

    The defaults are chosen to reach >= 95% validation accuracy on the embedded
    shapes within about three minutes on two cores (measured: 96-98.5% after 6
    epochs of 10,000 images, 110-270 s depending on the machine's load), and
    depart from the paper's §3.1 where a 3-minute budget demands it:

    * Adam (lr 1e-3) instead of SGD with momentum: plain SGD (momentum 0.9,
      lr 0.02-0.05) left this 11-layer net without batch normalisation on the
      chance-level plateau for several epochs; Adam leaves it within one.
    * Batch 32 instead of 256: more steps per image matter more than GEMM
      efficiency at this size.
    * A step schedule (x0.2 after epoch 4) instead of "divide by 10 when
      validation accuracy stops improving": with 6 epochs there is no time to
      wait for a plateau (``schedule="plateau"`` gives the paper's rule).
    * No dropout by default (:class:`ModelSpec`): with 10,000 freshly generated
      images the 128-wide fc layers do not overfit, and dropout 0.5 cost about
      an epoch of progress. Weight decay 5e-4 and flips are the paper's.
    """

    epochs: int = 6  # total epochs (a resumed run continues up to this many)
    batch_size: int = 32  # images per step
    optimizer: str = "adam"  # "sgd" (momentum, the paper) or "adam"
    lr: float = 1e-3  # initial learning rate, > 0
    momentum: float = 0.9  # SGD momentum (the paper's 0.9)
    weight_decay: float = 5e-4  # L2 multiplier on weights (the paper's 5e-4)
    schedule: str = "step"  # "step" (x lr_gamma every lr_step epochs), "plateau" (the paper's rule), "none"
    lr_step: int = 4  # epochs between decays ("step")
    lr_gamma: float = 0.2  # decay factor ("step", and "plateau"'s factor)
    patience: int = 1  # "plateau": epochs without val-acc improvement before a decay
    flip: bool = True  # random horizontal flips (paper §3.1)
    crop_pad: int = 0  # random crops after zero padding by this many pixels (0: off)
    seed: int = 0  # weights, dropout, shuffling and augmentation
    eval_batch_size: int = 250  # images per inference batch for validation

    def __post_init__(self) -> None:
        def bad(what: str, value: Any, expected: str) -> ValueError:
            return ValueError(f"TrainConfig: {what} must be {expected}, got {value!r}")

        for name in ("epochs", "batch_size", "lr_step", "eval_batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise bad(name, v, "an int >= 1")
        for name in ("patience", "crop_pad", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise bad(name, v, "an int >= 0")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise bad("lr", self.lr, "a finite number > 0")
        if not 0 <= self.momentum < 1:
            raise bad("momentum", self.momentum, "in [0, 1)")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise bad("weight_decay", self.weight_decay, ">= 0")
        if not 0 < self.lr_gamma < 1:
            raise bad("lr_gamma", self.lr_gamma, "in (0, 1)")
        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", self.optimizer, f"one of {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            raise bad("schedule", self.schedule, f"one of {SCHEDULES}")

    #: Fields that may differ when resuming (they do not change the trajectory).
    RESUMABLE_CHANGES = ("epochs", "eval_batch_size")

    def to_json(self) -> dict:
        return _jsonable(dataclasses.asdict(self))


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    model: VGG
    history: list  # one dict per epoch (see HISTORY_KEYS)
    checkpoint: Path | None  # the last checkpoint written (None without ``out``)
    epochs_run: int  # epochs run by this call (not counting resumed ones)
    seconds: float  # wall time of this call
    stopped_early: str = ""  # why training stopped before ``epochs`` ("" if it did not)

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}


# ============================================================ files
def _write_json(path: Path, obj: Any) -> None:
    atomic_write(path, lambda f: f.write((json.dumps(obj, indent=1) + "\n").encode()))


def _rng_state(rng: np.random.Generator) -> str:
    return json.dumps(rng.bit_generator.state)


def _set_rng_state(rng: np.random.Generator, state: str, what: str) -> None:
    st = json.loads(state)
    if st.get("bit_generator") != type(rng.bit_generator).__name__:
        raise CheckpointError(f"checkpoint: {what} generator is {st.get('bit_generator')!r}, "
                              f"expected {type(rng.bit_generator).__name__}")
    rng.bit_generator.state = st


def save_checkpoint(path: str | os.PathLike, model: VGG, meta: Mapping[str, Any],
                    optimizer: Optimizer | None = None, schedule: Any = None) -> Path:
    """Write ``model`` (+ optimiser/schedule state) and the JSON ``meta`` to ``path`` atomically.

    ``meta`` gets ``format`` and ``model`` (the :class:`ModelSpec`) filled in;
    any other JSON-able entries are kept (the trainer adds its run state).
    """
    meta = {**meta, "format": FORMAT_VERSION, "model": ModelSpec.from_model(model).to_json()}
    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(meta))}
    for k, v in model.params.items():
        if not np.isfinite(v).all():
            raise ValueError(f"save_checkpoint: parameter {k} is not finite; refusing to save {path}")
        arrays[f"param.{k}"] = v
    for prefix, obj in (("optim", optimizer), ("sched", schedule)):
        if obj is not None:
            for k, v in obj.state_dict().items():
                arrays[f"{prefix}.{k}"] = np.asarray(v)
    return atomic_write(path, lambda f: np.savez(f, **arrays))


@dataclass
class Checkpoint:
    """A checkpoint read back: the JSON ``meta`` and the arrays grouped by prefix."""

    path: Path
    meta: dict
    params: dict
    optim: dict
    sched: dict

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec.from_json(self.meta["model"])

    @property
    def preprocess(self) -> Preprocess | None:
        p = self.meta.get("preprocess")
        return Preprocess.from_json(p) if p else None


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (no pickle is ever loaded).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    CheckpointError
        Not an npz file, no ``meta``, an unknown format version or keys.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # zipfile.BadZipFile, ValueError (pickled/corrupt member), OSError ...
        raise CheckpointError(f"{path}: not a readable minivgg checkpoint ({type(e).__name__}: {e})") from e
    if "meta" not in arrays or arrays["meta"].dtype.kind != "U" or arrays["meta"].ndim != 0:
        raise CheckpointError(f"{path}: no 'meta' entry; not a minivgg checkpoint (keys: {sorted(arrays)[:5]})")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: 'meta' is not valid JSON ({e})") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION or "model" not in meta:
        raise CheckpointError(f"{path}: unsupported checkpoint format {meta.get('format') if isinstance(meta, dict) else meta!r}"
                              f" (this minivgg writes format {FORMAT_VERSION})")
    groups: dict[str, dict] = {"param": {}, "optim": {}, "sched": {}}
    for k, v in arrays.items():
        prefix, _, rest = k.partition(".")
        if prefix not in groups or not rest:
            raise CheckpointError(f"{path}: unexpected entry {k!r}")
        groups[prefix][rest] = v
    return Checkpoint(path, meta, groups["param"], groups["optim"], groups["sched"])


def check_architecture(ckpt: Checkpoint, model: VGG) -> None:
    """Raise :class:`CheckpointError` naming every difference if ``ckpt`` is not from ``model``'s architecture."""
    theirs, mine = ckpt.spec.architecture(), ModelSpec.from_model(model).architecture()
    diffs = [f"{k}: checkpoint {theirs.get(k)!r} vs model {mine[k]!r}" for k in mine if theirs.get(k) != mine[k]]
    if diffs:
        raise CheckpointError(f"{ckpt.path} was saved from a different architecture "
                              f"({ckpt.spec.describe()}); " + "; ".join(diffs))


def model_from_checkpoint(path: str | os.PathLike) -> tuple[VGG, Checkpoint]:
    """Rebuild the model a checkpoint was saved from and load its weights.

    Returns ``(model, checkpoint)``; ``checkpoint.preprocess`` is the input
    transform the model was trained with.
    """
    ckpt = path if isinstance(path, Checkpoint) else read_checkpoint(path)
    try:
        model = ckpt.spec.build()
        model.load_params(ckpt.params)
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{ckpt.path}: cannot rebuild its model: {e}") from e
    return model, ckpt


def load_history(path: str | os.PathLike) -> list[dict]:
    """Read ``history.json`` (a list of per-epoch dicts)."""
    with open(path, encoding="utf-8") as f:
        history = json.load(f)
    if not isinstance(history, list):
        raise ValueError(f"{path}: expected a JSON list of epochs, got {type(history).__name__}")
    return history


# ============================================================ progress bar
class Progress:
    """A one-line progress bar on ``stream`` (stderr): ``[#####.....] 120/157 loss 0.51 acc 0.84 812 img/s``.

    Redrawn at most 10 times a second with a carriage return. When the stream
    is not a terminal nothing is drawn mid-epoch (logs stay readable).
    """

    def __init__(self, total: int, desc: str, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.total, self.desc = total, desc
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.enabled = isatty() if enabled is None else enabled
        self.start = time.perf_counter()
        self._last = 0.0
        self._width = 0

    def update(self, done: int, images: int, loss: float, acc: float, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        rate = images / max(now - self.start, 1e-9)
        filled = int(20 * done / max(self.total, 1))
        line = (f"{self.desc} [{'#' * filled}{'.' * (20 - filled)}] {done}/{self.total} "
                f"loss {loss:.4f} acc {acc:.3f} {rate:,.0f} img/s")
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def close(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()


def format_epoch(entry: Mapping[str, Any], epochs: int) -> str:
    """One summary line per epoch (what ``minivgg train`` prints)."""
    return (f"epoch {entry['epoch']:>{len(str(epochs))}}/{epochs}  "
            f"train loss {entry['train_loss']:.4f} acc {entry['train_acc']:.3f}  |  "
            f"val loss {entry['val_loss']:.4f} acc {entry['val_acc']:.3f}  |  "
            f"lr {entry['lr']:.2g}  {entry['images_per_s']:,.0f} img/s  {entry['seconds']:.1f} s")


# ============================================================ the trainer
def _make_optimizer(config: TrainConfig, params: dict) -> Optimizer:
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
        self.optimizer = _make_optimizer(config, model.params)
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
            "data": _jsonable(self.data.info),
            "class_names": list(self.data.class_names),
            "epoch": self.epoch,
            "elapsed": self.elapsed,
            "history": self.history,
            "optimizer": type(self.optimizer).__name__,
            "schedule": type(self.schedule).__name__ if self.schedule is not None else None,
            "rng": {"shuffle": _rng_state(self.shuffle_rng), "augment": _rng_state(self.augment_rng),
                    "dropout": {d.name: _rng_state(d.rng) for d in self._dropouts()}},
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
        if meta["preprocess"] != self.data.preprocess.to_json() or meta["data"] != _jsonable(self.data.info):
            raise CheckpointError(f"{ckpt.path} was trained on other data ({meta['data']}); now {self.data.info}")
        dropouts = {d.name: d for d in self._dropouts()}
        if set(meta["rng"]["dropout"]) != set(dropouts):
            raise CheckpointError(f"{ckpt.path}: dropout generators {sorted(meta['rng']['dropout'])} "
                                  f"do not match the model's {sorted(dropouts)}")
        # Stage the optimiser, schedule and generators as new objects; the weights
        # go in last through VGG.load_params, which validates everything before it
        # writes. Any failure before the commit below leaves the trainer as it was.
        try:
            optimizer = _make_optimizer(self.config, self.model.params)  # reads params, never writes them
            optimizer.load_state_dict(ckpt.optim)
            schedule = _make_schedule(self.config, optimizer)
            if schedule is not None:
                schedule.load_state_dict(ckpt.sched)
            elif ckpt.sched:
                raise CheckpointError(f"{ckpt.path}: has schedule state but the config has no schedule")
            rngs = {"shuffle": np.random.default_rng(0), "augment": np.random.default_rng(0)}
            for k, r in rngs.items():
                _set_rng_state(r, meta["rng"][k], k)
            drop_states = {}
            for name in dropouts:
                r = np.random.default_rng(0)
                _set_rng_state(r, meta["rng"]["dropout"][name], name)
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
    def _diverged(self, batch: int, loss: float) -> TrainingDiverged:
        ck = self.checkpoint_path
        where = (f"the last good checkpoint {ck} (epoch {self.epoch}) is intact"
                 if ck is not None and ck.exists() else "nothing was saved")
        return TrainingDiverged(
            f"loss became {loss} at epoch {self.epoch + 1}, batch {batch} (lr {self.optimizer.lr:.3g}); "
            f"training stopped and {where}. Try a smaller --lr.", self.epoch + 1, batch, ck)

    def train_epoch(self, progress: bool | None = None, stream: TextIO | None = None) -> dict:
        """Run one epoch of shuffled, augmented mini-batches; return ``{train_loss, train_acc, images_per_s}``.

        Raises
        ------
        TrainingDiverged
            A batch loss is NaN or infinite (checked before the update is applied).
        """
        cfg = self.config
        x, y = self.data.x_train, self.data.y_train
        n_batches = -(-len(x) // cfg.batch_size)
        bar = Progress(n_batches, f"epoch {self.epoch + 1}/{cfg.epochs}", stream, progress)
        start = time.perf_counter()
        batches = datamod.iterate_minibatches(x, y, cfg.batch_size, shuffle=True, rng=self.shuffle_rng)
        with warnings.catch_warnings():
            # A diverging run overflows in matmul/exp before its loss turns NaN; the
            # guard below says so in one clear message instead of numpy's warnings.
            warnings.filterwarnings("ignore", r"(overflow|invalid value) encountered", RuntimeWarning)
            loss_sum, correct, seen = self._run_batches(batches, bar, n_batches)
        bar.close()
        seconds = time.perf_counter() - start
        return {"train_loss": loss_sum / seen, "train_acc": correct / seen, "images_per_s": seen / max(seconds, 1e-9)}

    def _run_batches(self, batches, bar: Progress, n_batches: int) -> tuple[float, int, int]:
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
                bar.close()
                raise self._diverged(b, loss)
            model.backward(dlogits)
            self.optimizer.step(model.grads)
            loss_sum += loss * len(yb)
            correct += int((logits.argmax(axis=1) == yb).sum())
            seen += len(yb)
            bar.update(b, seen, loss_sum / seen, correct / seen, force=b == n_batches)
        return loss_sum, correct, seen

    def fit(self, epochs: int | None = None, *, progress: bool | None = None, stream: TextIO | None = None,
            log: Callable[[str], None] | None = None, max_seconds: float | None = None) -> TrainResult:
        """Train until ``epochs`` (default ``config.epochs``) epochs are complete.

        After each epoch: validate, step the schedule, append to the history,
        write the checkpoint and ``history.json`` (if ``out``), call ``log``
        with the summary line. ``max_seconds`` stops at an epoch boundary once
        another epoch would probably overrun it (``stopped_early`` says so).

        Raises
        ------
        TrainingDiverged
            Non-finite loss or parameters; the last checkpoint is left intact.
        """
        epochs = self.config.epochs if epochs is None else epochs
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
        t_call = time.perf_counter()
        run, stopped = 0, ""
        while self.epoch < epochs:
            if max_seconds is not None and run:
                per_epoch = (time.perf_counter() - t_call) / run
                if time.perf_counter() - t_call + per_epoch > max_seconds:
                    stopped = f"time budget of {max_seconds:.1f} s reached after {self.epoch} epochs"
                    break
            t0 = time.perf_counter()
            lr = self.optimizer.lr
            stats = self.train_epoch(progress, stream)
            bad = [k for k, v in self.model.params.items() if not np.isfinite(v).all()]
            if bad:
                raise self._diverged(-1, float("nan")) from ValueError(f"non-finite parameters {bad[:3]}")
            val_loss, val_acc = loss_and_accuracy(self.model, self.data.x_val, self.data.y_val,
                                                  transform=self.data.preprocess,
                                                  batch_size=self.config.eval_batch_size)
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
                _write_json(self.out / HISTORY_NAME, self.history)
            if log is not None:
                log(format_epoch(entry, epochs))
        return TrainResult(self.model, list(self.history), self.checkpoint_path if self.out else None, run,
                           time.perf_counter() - t_call, stopped)


def train(data: Dataset, config: TrainConfig = TrainConfig(), *, model: VGG | None = None,
          spec: ModelSpec | None = None, out: str | os.PathLike | None = None, resume: bool = False,
          progress: bool | None = None, log: Callable[[str], None] | None = None,
          max_seconds: float | None = None) -> TrainResult:
    """Train a VGG on ``data``: the library call behind ``minivgg train``.

    Parameters
    ----------
    data : Dataset
        From :func:`load_dataset`.
    config : TrainConfig
    model : VGG, optional
        Train this model; otherwise one is built from ``spec`` (default: a
        :class:`ModelSpec` fitted to the data with ``config.seed``).
    out : path, optional
        Output directory. Refuses to start over an existing checkpoint unless
        ``resume`` (so no finished run is overwritten by accident).
    resume : bool
        Continue ``out/checkpoint.npz``: the architecture comes from the
        checkpoint (``spec``/``model``, if given, must match it) and training
        continues to ``config.epochs`` exactly as if never interrupted.

    Raises
    ------
    CheckpointError, FileNotFoundError
        Resuming from a missing, foreign or incompatible checkpoint.
    FileExistsError
        ``out`` already holds a checkpoint and ``resume`` is False.
    TrainingDiverged
        The loss became NaN/inf.
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
            if spec is not None:
                check_architecture(ckpt, spec.build())
            model = ckpt.spec.build()
        else:
            spec = spec or ModelSpec(num_classes=data.num_classes, input_size=data.preprocess.size,
                                     in_channels=data.in_channels, dtype=data.preprocess.dtype, seed=config.seed)
            model = spec.build()
    trainer = Trainer(model, data, config, out)
    if ckpt is not None:
        trainer.restore(ckpt)
    return trainer.fit(progress=progress, log=log, max_seconds=max_seconds)


# ============================================================ tour
def tour_training_run(seed: int = 0, seconds_budget: float = 20.0, *, log: Callable[[str], None] | None = None,
                      progress: bool | None = None) -> TrainResult:
    """A short run for ``minivgg tour``: a tiny VGG-11 on the embedded shapes, loss falling in ~20 s.

    3,000 training and 1,000 validation images; VGG-11's layer pattern at 1/16
    of the paper's width (4 to 32 channels) with 64-wide fc6/fc7 (43k
    parameters); Adam at 2e-3, batch 32, no dropout. Runs up to 6 epochs and
    stops early at an epoch boundary if the next epoch would overrun
    ``seconds_budget`` (data generation counts too). Typical result (seed 0,
    2 shared cores): loss 2.31 -> ~1.0, validation accuracy ~60% in ~17 s --
    the start of the curve that ``minivgg train`` follows to >= 95%.
    """
    start = time.perf_counter()
    data = load_dataset("shapes", n_train=3_000, n_val=1_000, data_seed=seed)
    spec = ModelSpec(num_classes=data.num_classes, width=0.0625, fc_width=64, dropout=0.0, seed=seed)
    config = TrainConfig(epochs=6, batch_size=32, lr=2e-3, optimizer="adam", schedule="none",
                         weight_decay=0.0, seed=seed)
    budget = seconds_budget - (time.perf_counter() - start)
    return train(data, config, spec=spec, progress=progress, log=log, max_seconds=max(budget, 1.0))


def format_tour_result(result: TrainResult) -> str:
    """The tour's report: one line per epoch, then what the run showed."""
    h = result.history
    lines = [f"{'epoch':>5} {'train loss':>10} {'train acc':>9} {'val loss':>9} {'val acc':>8} {'seconds':>8}"]
    for e in h:
        lines.append(f"{e['epoch']:>5} {e['train_loss']:>10.4f} {e['train_acc']:>9.3f} "
                     f"{e['val_loss']:>9.4f} {e['val_acc']:>8.3f} {e['seconds']:>8.1f}")
    if h:
        lines.append(f"loss {h[0]['train_loss']:.3f} -> {h[-1]['train_loss']:.3f} (chance: ln 10 = {math.log(10):.3f}); "
                     f"validation accuracy {h[-1]['val_acc']:.1%} (chance 10%) after {len(h)} epochs, "
                     f"{h[-1]['images_per_s']:,.0f} img/s")
    if result.stopped_early:
        lines.append(f"stopped early: {result.stopped_early}")
    lines.append("the full recipe: `minivgg train --data shapes --out DIR` (a few minutes, >= 95% val accuracy)")
    return "\n".join(lines)
