"""The data a VGG trains on: the embedded shapes, CIFAR-10 or (Fashion-)MNIST, with their preprocessing.

The paper's only preprocessing is subtracting the training set's mean RGB
value (Simonyan & Zisserman §2.1). :class:`Preprocess` does that (after
scaling to [0, 1]) and zero-pads small images so that five 2x2 pools fit;
:class:`Dataset` holds the raw train/validation/test arrays with that
transform; :func:`load_dataset` builds both. The raw loaders live in
:mod:`minivgg.training.data`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from . import data as datamod

#: Names :func:`load_dataset` accepts.
DATASETS = ("shapes", "cifar10", "mnist")


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
    #: Ground-truth boxes ``(N, 4)`` float64, ``(cx, cy, w, h)`` normalised to the image
    #: (:mod:`minivgg.ops.boxes`), one per image of each split; shapes only (None otherwise).
    boxes_train: np.ndarray | None = None
    boxes_val: np.ndarray | None = None
    boxes_test: np.ndarray | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def has_boxes(self) -> bool:
        """Whether every split carries ground-truth boxes (the localization task needs them)."""
        return all(b is not None for b in (self.boxes_train, self.boxes_val, self.boxes_test))

    def boxes(self, name: str) -> np.ndarray:
        """Ground-truth boxes of ``"train"``, ``"val"`` or ``"test"``; ValueError if the dataset has none."""
        self.split(name)  # checks the name
        b = getattr(self, f"boxes_{name}")
        if b is None:
            raise ValueError(f"the {self.name} dataset has no bounding boxes (only the embedded shapes do)")
        return b

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
    boxes: dict = {}
    if name == "shapes":
        if data_dir is not None:
            raise ValueError("the shapes dataset is generated; it takes no data directory")
        n_train = 10_000 if n_train is None else n_train
        n_val = 2_000 if n_val is None else n_val
        cls = tuple(classes) if classes is not None else datamod.SHAPE_CLASSES
        # the splits of datamod.load_shapes (seeds (s, 0), (s, 1)), plus a test split (s, 2), with their boxes
        check = datamod.load_shapes(0, 0, data_seed, classes=cls)  # validates the seed and the classes
        names = check.class_names
        (xtr, ytr, btr), (xva, yva, bva), (x_test, y_test, bte) = (
            datamod.make_shapes(n, seed=(int(data_seed), k), classes=cls, with_boxes=True)
            for k, n in enumerate((n_train, n_val, n_val)))
        info.update(n_train=int(n_train), n_val=int(n_val), classes=list(cls))
        boxes = {"boxes_train": btr, "boxes_val": bva, "boxes_test": bte}
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
    return Dataset(name, xtr, ytr, xva, yva, x_test, y_test, list(names), pre, info, **boxes)


def dataset_for_checkpoint(meta: Mapping[str, Any], data_dir: str | os.PathLike | None = None) -> Dataset:
    """Reload the dataset a checkpoint was trained on (``data_dir`` overrides the recorded one).

    ``meta`` is a training checkpoint's run state (its ``data`` and ``preprocess`` records).
    """
    info = meta["data"]
    name = info["name"]
    dtype = meta["preprocess"]["dtype"]
    if name == "shapes":
        return load_dataset("shapes", n_train=info["n_train"], n_val=info["n_val"], data_seed=info["data_seed"],
                            classes=info.get("classes"), dtype=dtype)
    return load_dataset(name, data_dir if data_dir is not None else info.get("data_dir"), n_train=info["n_train"],
                        n_val=info["n_val"], dtype=dtype)
