"""Learning-rate schedules: the paper's divide-by-10 on a plateau, and fixed steps (§3.1).

Simonyan & Zisserman (arXiv 1409.1556, §3.1) started at a learning rate of
1e-2 and "decreased [it] by a factor of 10 when the validation set accuracy
stopped improving" -- three times in 74 epochs: :class:`ReduceLROnPlateau`.
:class:`StepLR` is the fixed alternative of cs231n lecture 7 (divide every
``step_size`` epochs).

A schedule wraps an :class:`~minivgg.training.optim.Optimizer` and, called
once at the end of every epoch, assigns to ``optimizer.lr`` (which refuses
values <= 0). Like the optimisers, each schedule has a flat, pickle-free
``state_dict()`` of ints and floats, so a resumed run decays at exactly the
epochs an uninterrupted one would. The lr itself lives in the optimiser's
state, not here.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from ..ops._validate import check_keys, check_positive_int, check_real, check_scalar, check_settings_match
from .optim import Optimizer, StateDict

__all__ = ["StepLR", "ReduceLROnPlateau"]


class _Schedule:
    """Shared state (de)serialisation for the schedules: ints/floats only."""

    _counters: tuple[str, ...] = ()  # restored by load_state_dict
    _fixed: tuple[str, ...] = ()  # must match on load_state_dict

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{type(self).__name__}: optimizer must be a minivgg.training.optim.Optimizer, "
                f"got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self.last_epoch = 0

    def _fixed_values(self) -> dict[str, float]:
        return {k: float(getattr(self, k)) for k in self._fixed}

    def state_dict(self) -> StateDict:
        """Counters (ints, ``best`` a float) and settings (floats). The lr itself lives in the optimiser's state."""
        d: StateDict = {"last_epoch": self.last_epoch}
        for k in self._counters:
            d[k] = getattr(self, k)
        d.update(self._fixed_values())
        return d

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Restore the counters; settings must match (ValueError otherwise, nothing changed)."""
        cls = f"{type(self).__name__}.load_state_dict"
        fixed = self._fixed_values()
        expected = {"last_epoch", *self._counters, *fixed}
        check_keys(d, expected, cls, "state keys", "this schedule's counters and settings")
        check_settings_match(d, fixed, cls, "this schedule")
        values = {"last_epoch": check_scalar(d["last_epoch"], cls, "'last_epoch'", integer=True)}
        for k in self._counters:
            values[k] = check_scalar(d[k], cls, f"'{k}'", integer=type(getattr(self, k)) is int)
        for k, v in values.items():
            setattr(self, k, v)


class StepLR(_Schedule):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    Call :meth:`step` once at the end of every epoch. After ``k`` calls,
    ``lr = lr_0 * gamma ** (k // step_size)`` (applied multiplicatively at the
    boundaries, so it composes with manual changes to ``optimizer.lr``).

    Parameters
    ----------
    optimizer : Optimizer
    step_size : int
        Epochs between decays, >= 1.
    gamma : float
        Multiplicative factor in (0, 1] (0.1 = "divide by 10").
    """

    _fixed = ("step_size", "gamma")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(optimizer)
        self.step_size = check_positive_int(step_size, "StepLR", "step_size")
        self.gamma = check_real(gamma, "StepLR", "gamma", 0, 1, low_open=True)

    def step(self) -> float:
        """End of an epoch: decay if a boundary was reached; return the new lr."""
        self.last_epoch += 1
        if self.last_epoch % self.step_size == 0:
            self.optimizer.lr = self.optimizer.lr * self.gamma
        return self.optimizer.lr


class ReduceLROnPlateau(_Schedule):
    """The paper's rule: divide the lr by 10 when validation accuracy stops improving.

    Call :meth:`step` with the epoch's validation metric. A value is an
    improvement if it beats the best so far by more than ``threshold``:
    ``metric > best + threshold`` in ``mode="max"`` (accuracy), ``metric <
    best - threshold`` in ``mode="min"`` (loss); with ``threshold_mode="rel"``
    the margin is ``threshold * |best|``. After ``patience`` + 1 consecutive
    epochs without improvement the lr becomes ``max(lr * factor, min_lr)``,
    the bad-epoch count restarts, and the next ``cooldown`` epochs are not
    counted. With the defaults (patience 2) the lr drops on the third epoch in
    a row that fails to raise the best accuracy by 0.1 percentage point.

    Parameters
    ----------
    optimizer : Optimizer
    factor : float
        In (0, 1); the paper's 0.1.
    patience : int
        Non-improving epochs tolerated before a reduction, >= 0.
    mode : {"max", "min"}
    threshold : float
        Minimum improvement, >= 0.
    threshold_mode : {"abs", "rel"}
    cooldown : int
        Epochs after a reduction during which bad epochs are not counted, >= 0.
    min_lr : float
        Floor for the lr, >= 0.

    Attributes
    ----------
    best : float
        Best metric so far (-inf/+inf before the first step).
    num_bad_epochs, cooldown_counter, num_reductions, last_epoch : int
    """

    _counters = ("best", "num_bad_epochs", "cooldown_counter", "num_reductions")
    _fixed = ("factor", "patience", "mode_max", "threshold", "threshold_rel", "cooldown", "min_lr")

    def __init__(
        self,
        optimizer: Optimizer,
        factor: float = 0.1,
        patience: int = 2,
        mode: str = "max",
        threshold: float = 1e-3,
        *,
        threshold_mode: str = "abs",
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        super().__init__(optimizer)
        name = "ReduceLROnPlateau"
        self.factor = check_real(factor, name, "factor", 0, 1, low_open=True, high_open=True)
        self.patience = check_positive_int(patience, name, "patience", minimum=0)
        if mode not in ("max", "min"):
            raise ValueError(f"{name}: mode must be 'max' or 'min', got {mode!r}")
        if threshold_mode not in ("abs", "rel"):
            raise ValueError(f"{name}: threshold_mode must be 'abs' or 'rel', got {threshold_mode!r}")
        self.mode, self.threshold_mode = mode, threshold_mode
        self.threshold = check_real(threshold, name, "threshold", 0)
        self.cooldown = check_positive_int(cooldown, name, "cooldown", minimum=0)
        self.min_lr = check_real(min_lr, name, "min_lr", 0)
        self.best = -math.inf if mode == "max" else math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.num_reductions = 0

    # Strings cannot go in the flat numeric state, so the two modes are stored as flags.
    @property
    def mode_max(self) -> bool:
        return self.mode == "max"

    @property
    def threshold_rel(self) -> bool:
        return self.threshold_mode == "rel"

    def is_better(self, metric: float, best: float) -> bool:
        """True if ``metric`` improves on ``best`` by more than the threshold."""
        margin = self.threshold * abs(best) if self.threshold_rel and math.isfinite(best) else self.threshold
        return metric > best + margin if self.mode_max else metric < best - margin

    def step(self, metric: float) -> float:
        """End of an epoch with validation ``metric``; return the (possibly reduced) lr."""
        value = check_real(metric, "ReduceLROnPlateau.step", "metric")
        self.last_epoch += 1
        if self.is_better(value, self.best):
            self.best = value
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old = self.optimizer.lr
            new = max(old * self.factor, self.min_lr)
            if 0 < new < old:
                self.optimizer.lr = new
                self.num_reductions += 1
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        return self.optimizer.lr
