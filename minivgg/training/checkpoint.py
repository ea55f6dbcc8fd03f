"""Training checkpoints: minivgg's one ``.npz`` layout (:mod:`minivgg.io.npz`) with a run's state in ``meta``.

A checkpoint is a weights file plus what resuming needs, so every command
that takes weights takes a checkpoint too. Its ``meta`` holds ``train``
(:class:`~minivgg.training.config.TrainConfig`), ``preprocess``, ``data``,
``class_names``, ``epoch``, ``elapsed``, ``history``, ``optimizer``,
``schedule`` and ``rng`` (bit-generator states of the shuffling, augmentation
and every dropout layer, as JSON); the optimiser and schedule state go into
``optim.*`` / ``sched.*`` arrays. Restoring all of it at an epoch boundary
makes a resumed run continue bit for bit like an uninterrupted one (same
thread count, same machine).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..configs import FIELDS, VGGConfig
from ..io.files import CheckpointError, atomic_write
from ..io.npz import MinivggFile, read_minivgg, write_minivgg
from ..io.weights import check_finite_params
from ..vgg import VGG
from .config import jsonable
from .datasets import Preprocess

CHECKPOINT_NAME = "checkpoint.npz"
HISTORY_NAME = "history.json"
#: Keys every ``history.json`` entry has (more may follow: ``lr``, ``images_per_s``).
HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")


class Checkpoint(MinivggFile):
    """A minivgg file read back for training: :class:`~minivgg.io.npz.MinivggFile` plus the recorded transform."""

    @property
    def preprocess(self) -> Preprocess | None:
        """The input transform the model was trained with (``None`` for plain weights)."""
        p = self.meta.get("preprocess")
        return Preprocess.from_json(p) if p else None


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented, strict JSON, atomically: NaN/inf become ``null`` (never bare ``NaN``).

    The one JSON writer of the training tools (:func:`~minivgg.training.config.jsonable`
    says why ``null``); ``allow_nan=False`` makes any non-finite number that
    slipped through an error instead of invalid JSON.
    """
    text = json.dumps(jsonable(obj), indent=1, allow_nan=False) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode()))


def rng_state(rng: np.random.Generator) -> str:
    """A generator's complete state as JSON text (what :func:`set_rng_state` restores)."""
    return json.dumps(rng.bit_generator.state)


def set_rng_state(rng: np.random.Generator, state: str, what: str) -> None:
    """Restore :func:`rng_state`'s output into ``rng``; CheckpointError naming ``what`` on a mismatch."""
    st = json.loads(state)
    if st.get("bit_generator") != type(rng.bit_generator).__name__:
        raise CheckpointError(f"checkpoint: {what} generator is {st.get('bit_generator')!r}, "
                              f"expected {type(rng.bit_generator).__name__}")
    rng.bit_generator.state = st


def save_checkpoint(path: str | os.PathLike, model: VGG, meta: Mapping[str, Any],
                    optimizer: Any = None, schedule: Any = None) -> Path:
    """Write ``model`` (its config and parameters), the JSON ``meta`` and optimiser/schedule state, atomically.

    Raises
    ------
    ValueError
        A parameter is not finite (a diverged model is never saved).
    """
    return write_minivgg(path, model.config, model.params, meta=meta,
                         optim=optimizer.state_dict() if optimizer is not None else None,
                         sched=schedule.state_dict() if schedule is not None else None)


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint, plain minivgg weights, or a file of either older layout (no pickle is ever loaded).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    CheckpointError
        Not a minivgg file, or its parameters do not fit its architecture.
    NonFiniteParameters
        A parameter holds NaN/inf (:func:`minivgg.io.weights.check_finite_params`).
    """
    f = read_minivgg(path)
    check_finite_params(f.params, str(f.path))
    return Checkpoint(f.path, f.config, f.params, f.meta, f.optim, f.sched, f.aux)


def check_architecture(ckpt: MinivggFile, model: VGG | VGGConfig) -> None:
    """Raise :class:`CheckpointError` naming every difference if ``ckpt`` is not of ``model``'s architecture.

    ``model`` may be the model or just its :class:`~minivgg.configs.VGGConfig`.
    """
    config = model if isinstance(model, VGGConfig) else model.config
    theirs, mine = ckpt.config.to_dict(), config.to_dict()
    diffs = [f"{k}: checkpoint {theirs[k]!r} vs model {mine[k]!r}" for k in FIELDS if theirs[k] != mine[k]]
    if diffs:
        raise CheckpointError(f"{ckpt.path} was saved from a different architecture "
                              f"({ckpt.config.describe()}); " + "; ".join(diffs))


def build_model(ckpt: MinivggFile, seed: int = 0) -> VGG:
    """A fresh model of the checkpoint's architecture and dtype (weights not loaded)."""
    return VGG(ckpt.config, dtype=np.dtype(ckpt.dtype), seed=seed, init="none")


def model_from_checkpoint(path: str | os.PathLike | Checkpoint) -> tuple[VGG, Checkpoint]:
    """Rebuild the model a checkpoint (or weights file) was saved from and load its weights.

    Returns ``(model, checkpoint)``; ``checkpoint.preprocess`` is the input
    transform the model was trained with (``None`` for plain weights).
    """
    ckpt = path if isinstance(path, Checkpoint) else read_checkpoint(path)
    try:
        model = build_model(ckpt)
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
