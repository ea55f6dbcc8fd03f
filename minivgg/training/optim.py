"""Optimisers and learning-rate schedules: how VGG was trained (paper §3.1).

Simonyan & Zisserman (arXiv 1409.1556, §3.1 "Training") optimised the
multinomial logistic loss with mini-batch gradient descent: batch 256,
momentum 0.9, weight decay (L2 multiplier) 5e-4, dropout 0.5 on fc6/fc7, and a
learning rate of 1e-2 that was "decreased by a factor of 10 when the validation
set accuracy stopped improving" (three times in 74 epochs). This module gives
those pieces (:class:`SGD`, :class:`ReduceLROnPlateau`), plus the usual
alternatives from cs231n lecture 7 (Nesterov momentum, :class:`Adam`,
:class:`StepLR`).

The update-rule contract
------------------------
Every optimiser here follows one contract (cs231n ``optim.py`` style)::

    opt = SGD(model.params, lr=1e-2, momentum=0.9)   # weight_decay=5e-4
    loss, grads = model.loss(x, y)
    opt.step(grads)                                   # model.params updated

* The optimiser holds a *reference* to the model's ``params`` dict
  (name -> ndarray) and ``step(grads)`` updates those same array objects **in
  place**; nothing is replaced, so layers and views see the new values.
* ``grads`` has exactly the keys of ``params``; each gradient has its
  parameter's shape and dtype. A missing or extra key, a wrong shape (ValueError)
  or a wrong dtype (TypeError) is reported by name *before* any array changes.
  ``grads`` is only read.
* Per-parameter state (velocity, Adam moments) is kept in the parameter's dtype:
  float32 parameters stay float32, nothing is upcast.
* Weight decay is the paper's L2 term, added to the gradient:
  :math:`g \\leftarrow g + \\lambda w` (for Adam too: this is Adam with L2, not
  AdamW). By default it applies to weights only, i.e. keys ``"w"`` or ending in
  ``".w"`` (``conv1_1.w``, ``fc6.w``); biases are not decayed, as in common
  practice (the paper does not say). ``decay_biases=True`` decays every key.
* ``state_dict()`` returns a flat ``{str: ndarray | float | int}`` dict that
  ``np.savez`` stores without pickle; ``load_state_dict`` restores it so that a
  resumed run continues **bit for bit** like an uninterrupted one.

Cost: one ``step`` is a handful of element-wise passes over every parameter
(about 5 for SGD with momentum, 10 for Adam): memory-bound, negligible next to
a VGG forward/backward. Updates run over contiguous chunks of at most
``CHUNK`` elements, so temporaries stay small even for fc6 (102.8M weights).
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Mapping

import numpy as np

__all__ = ["Optimizer", "SGD", "Adam", "StepLR", "ReduceLROnPlateau", "CHUNK"]

#: Elements per update chunk: bounds temporaries to ~1 MB (float32) per array.
CHUNK = 1 << 18

StateDict = dict[str, "np.ndarray | float | int"]


# ----------------------------------------------------------------- helpers
def _check_positive(value: Any, cls: str, what: str) -> float:
    """Return ``value`` as float if it is a finite real > 0, else raise ValueError."""
    v = _check_real(value, cls, what)
    if not v > 0:
        raise ValueError(f"{cls}: {what} must be > 0, got {value!r}")
    return v


def _check_real(value: Any, cls: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{cls}: {what} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{cls}: {what} must be finite, got {value!r}")
    return v


def _check_unit_interval(value: Any, cls: str, what: str) -> float:
    """Return ``value`` as float if it lies in [0, 1), else raise ValueError."""
    v = _check_real(value, cls, what)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{cls}: {what} must be in [0, 1), got {value!r}")
    return v


def _check_int(value: Any, cls: str, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{cls}: {what} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _scalar(d: Mapping[str, Any], key: str, kind: type, owner: str) -> Any:
    """Read ``d[key]`` as a Python float/int (accepting the 0-d arrays ``np.load`` returns)."""
    arr = np.asarray(d[key])
    if arr.ndim != 0 or arr.dtype.kind not in ("i", "u", "f", "b"):
        raise ValueError(f"{owner}.load_state_dict: '{key}' must be a scalar number, got {d[key]!r}")
    value = arr.item()
    if kind is int:
        if float(value) != int(value):
            raise ValueError(f"{owner}.load_state_dict: '{key}' must be an integer, got {value!r}")
        return int(value)
    return float(value)


def _check_settings_match(d: Mapping[str, Any], mine: Mapping[str, float], cls: str, owner: str) -> None:
    """Raise ValueError if a saved setting (momentum, betas, gamma...) differs from ``owner``'s own."""
    for key, value in mine.items():
        theirs = _scalar(d, key, float, cls)
        if theirs != value:
            raise ValueError(f"{cls}: saved {key}={theirs!r} but {owner} has {key}={value!r}")


def _key_mismatch(owner: str, what: str, expected: set[str], given: set[str]) -> str:
    missing = sorted(expected - given)
    extra = sorted(given - expected)
    parts = []
    if missing:
        parts.append(f"missing key(s) {missing[:5]}" + (" ..." if len(missing) > 5 else ""))
    if extra:
        parts.append(f"unexpected key(s) {extra[:5]}" + (" ..." if len(extra) > 5 else ""))
    return f"{owner}: {what} do not match the parameters: " + "; ".join(parts)


def _chunks(w: np.ndarray, g: np.ndarray, *state: np.ndarray) -> Iterator[tuple[np.ndarray, ...]]:
    """Yield matching views ``(w_part, g_part, *state_parts)`` covering the arrays.

    Element-wise updates give the same bits whatever the chunking, so chunks
    only bound the size of temporaries. A non-contiguous parameter is updated
    whole (``reshape(-1)`` would copy it and the update would be lost).
    """
    if not w.flags.c_contiguous or w.size <= CHUNK:
        yield (w, g, *state)
        return
    flats = [w.reshape(-1), np.ascontiguousarray(g).reshape(-1)] + [s.reshape(-1) for s in state]
    for start in range(0, w.size, CHUNK):
        yield tuple(f[start : start + CHUNK] for f in flats)


# --------------------------------------------------------------- optimisers
class Optimizer:
    """Base class: holds ``params``, validates ``grads``, owns per-parameter state.

    Subclasses set ``_buffers`` (names of per-parameter state arrays, e.g.
    ``("velocity",)``), ``_hyper`` (names of float hyperparameters that must
    match on ``load_state_dict``) and implement ``_update``.

    Attributes
    ----------
    params : dict[str, ndarray]
        The model's dict (the same object, not a copy).
    lr : float
        Current learning rate (> 0); schedules assign to it.
    step_count : int
        Number of ``step`` calls so far (Adam's ``t``).
    state : dict[str, dict[str, ndarray]]
        ``state[buffer][param_name]``, each array shaped and typed like its parameter.
    """

    _buffers: tuple[str, ...] = ()
    _hyper: tuple[str, ...] = ()

    def __init__(self, params: Mapping[str, np.ndarray], lr: float, weight_decay: float, decay_biases: bool) -> None:
        cls = type(self).__name__
        if not isinstance(params, Mapping):
            raise TypeError(f"{cls}: params must be a dict name -> ndarray (model.params), got {type(params).__name__}")
        if not params:
            raise ValueError(f"{cls}: params is empty; nothing to optimise")
        for k, w in params.items():
            if not isinstance(k, str):
                raise TypeError(f"{cls}: parameter names must be str, got {k!r}")
            if not isinstance(w, np.ndarray) or w.dtype.kind != "f":
                got = w.dtype if isinstance(w, np.ndarray) else type(w).__name__
                raise TypeError(f"{cls}: parameter '{k}' must be a floating ndarray, got {got}")
            if not w.flags.writeable:
                raise ValueError(f"{cls}: parameter '{k}' is read-only; the optimiser updates it in place")
        self.params = params
        self._names = tuple(params)
        self.lr = lr
        self.weight_decay = _check_real(weight_decay, cls, "weight_decay")
        if self.weight_decay < 0:
            raise ValueError(f"{cls}: weight_decay must be >= 0, got {weight_decay!r}")
        self.decay_biases = bool(decay_biases)
        self.step_count = 0
        # C-ordered zeros whatever the parameter's layout: _chunks relies on it.
        self.state = {
            b: {k: np.zeros(w.shape, dtype=w.dtype) for k, w in params.items()} for b in self._buffers
        }

    # lr is validated on every assignment, so a schedule can never set lr <= 0.
    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = _check_positive(value, type(self).__name__, "lr")

    def decays(self, name: str) -> bool:
        """True if weight decay applies to parameter ``name`` (weights; biases only if ``decay_biases``)."""
        return self.decay_biases or name == "w" or name.endswith(".w")

    def _check_grads(self, grads: Mapping[str, np.ndarray]) -> None:
        cls = type(self).__name__
        if not isinstance(grads, Mapping):
            raise TypeError(f"{cls}.step: grads must be a dict name -> ndarray, got {type(grads).__name__}")
        names = set(self._names)
        if set(grads) != names:
            raise ValueError(_key_mismatch(f"{cls}.step", "grads keys", names, set(grads)))
        if set(self.params) != names:
            raise ValueError(
                _key_mismatch(f"{cls}.step", "params keys (changed since construction)", names, set(self.params))
            )
        for k in self._names:
            w, g = self.params[k], grads[k]
            if not isinstance(g, np.ndarray):
                raise TypeError(f"{cls}.step: grad '{k}' must be an ndarray, got {type(g).__name__}")
            if g.shape != w.shape:
                raise ValueError(f"{cls}.step: grad '{k}' has shape {g.shape}, parameter has {w.shape}")
            if g.dtype != w.dtype:
                raise TypeError(f"{cls}.step: grad '{k}' is {g.dtype}, parameter is {w.dtype} (no silent casts)")
            for b in self._buffers:
                if self.state[b][k].shape != w.shape or self.state[b][k].dtype != w.dtype:
                    raise ValueError(f"{cls}.step: parameter '{k}' changed shape/dtype since construction")

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """Apply one update to every parameter in place (see the module contract)."""
        self._check_grads(grads)
        self.step_count += 1
        for k in self._names:
            wd = self.weight_decay if self.decays(k) else 0.0
            state = [self.state[b][k] for b in self._buffers]
            for parts in _chunks(self.params[k], grads[k], *state):
                self._update(*parts, wd=wd)

    def _update(self, w: np.ndarray, g: np.ndarray, *state: np.ndarray, wd: float) -> None:  # pragma: no cover
        raise NotImplementedError

    def _hyper_values(self) -> dict[str, float]:
        return {h: float(getattr(self, h)) for h in self._hyper} | {
            "weight_decay": self.weight_decay,
            "decay_biases": float(self.decay_biases),
        }

    def state_dict(self) -> StateDict:
        """Everything needed to resume exactly, as a flat dict ``np.savez`` can store.

        Keys: ``"lr"`` (float), ``"step"`` (int), the hyperparameters (floats;
        booleans as 0.0/1.0) and one array per buffer and parameter named
        ``"<buffer>.<param>"``, e.g. ``"velocity.conv1_1.w"``. The arrays are
        copies (a snapshot): this costs one extra parameter-sized array per
        buffer while the dict lives.
        """
        d: StateDict = {"lr": self.lr, "step": self.step_count}
        d.update(self._hyper_values())
        for b in self._buffers:
            for k in self._names:
                d[f"{b}.{k}"] = self.state[b][k].copy()
        return d

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (e.g. ``dict(np.load(path))``).

        ``lr`` and ``step`` are taken from ``d``; every other hyperparameter
        must equal this optimiser's (build it with the same arguments), and
        every buffer must have its parameter's shape and dtype. Everything is
        checked before anything is assigned: a failed load changes nothing.

        Raises
        ------
        ValueError
            Missing/unexpected keys (e.g. a state of another optimiser class or
            model), a hyperparameter mismatch, or a wrong shape/dtype.
        """
        cls = f"{type(self).__name__}.load_state_dict"
        if not isinstance(d, Mapping):
            raise TypeError(f"{cls}: expected a dict, got {type(d).__name__}")
        hyper = self._hyper_values()
        expected = {"lr", "step", *hyper, *(f"{b}.{k}" for b in self._buffers for k in self._names)}
        if set(d) != expected:
            raise ValueError(_key_mismatch(cls, "state keys (another optimiser or model?)", expected, set(d)))
        _check_settings_match(d, hyper, cls, "this optimiser")
        lr = _check_positive(_scalar(d, "lr", float, cls), cls, "saved lr")
        step = _scalar(d, "step", int, cls)
        if step < 0:
            raise ValueError(f"{cls}: saved step must be >= 0, got {step}")
        arrays = {}
        for b in self._buffers:
            for k in self._names:
                key, ref = f"{b}.{k}", self.state[b][k]
                arr = d[key]
                if not isinstance(arr, np.ndarray) or arr.shape != ref.shape or arr.dtype != ref.dtype:
                    got = (arr.shape, arr.dtype) if isinstance(arr, np.ndarray) else type(arr).__name__
                    raise ValueError(f"{cls}: '{key}' must be an ndarray {ref.shape} {ref.dtype}, got {got}")
                arrays[(b, k)] = arr
        # All checks passed: assign (copy into our own C-ordered buffers).
        self.lr = lr
        self.step_count = step
        for (b, k), arr in arrays.items():
            np.copyto(self.state[b][k], arr)


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 decay.

    The update, PyTorch's formulation (velocity ``v`` starts at 0)::

        g = grad + wd * w                 # only for decayed keys (weights)
        v = mu * v + g                    # momentum > 0
        d = g + mu * v   if nesterov      # look-ahead (Sutskever et al. 2013)
        d = v            if not nesterov  # heavy ball
        d = g            if mu == 0       # plain SGD
        w -= lr * d

    This differs from cs231n's ``v = mu*v - lr*g; w += v`` only when ``lr``
    changes: here the velocity is lr-free, so a schedule does not rescale the
    momentum already accumulated.

    Parameters
    ----------
    params : dict[str, ndarray]
        The model's parameters, updated in place.
    lr : float
        Learning rate, > 0 (the paper started at 1e-2).
    momentum : float
        ``mu`` in [0, 1); the paper used 0.9.
    nesterov : bool
        Nesterov momentum; requires ``momentum > 0``.
    weight_decay : float
        L2 multiplier ``wd`` >= 0; the paper's 5e-4 by default.
    decay_biases : bool
        Also decay biases (default: weights only).

    State: ``velocity`` (one parameter-sized array each, only when momentum > 0).
    """

    _hyper = ("momentum", "nesterov")

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 5e-4,
        *,
        decay_biases: bool = False,
    ) -> None:
        self.momentum = _check_unit_interval(momentum, "SGD", "momentum")
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"SGD: nesterov must be a bool, got {nesterov!r}")
        if nesterov and self.momentum == 0.0:
            raise ValueError("SGD: nesterov=True needs momentum > 0 (got momentum=0)")
        self.nesterov = bool(nesterov)
        self._buffers = ("velocity",) if self.momentum > 0 else ()
        super().__init__(params, lr, weight_decay, decay_biases)

    def _update(self, w: np.ndarray, g: np.ndarray, *state: np.ndarray, wd: float) -> None:
        d = g + wd * w if wd else g  # never write into the caller's grad
        if self.momentum:
            (v,) = state
            v *= self.momentum
            v += d
            d = d + self.momentum * v if self.nesterov else v
        w -= self.lr * d


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction and optional L2 decay.

    With ``t`` the step number (1 on the first step), ``m`` and ``v`` starting at 0::

        g = grad + wd * w                          # decayed keys only; L2, not AdamW
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        w -= lr * m_hat / (sqrt(v_hat) + eps)

    Parameters
    ----------
    params : dict[str, ndarray]
    lr : float
        > 0 (1e-3 is the usual default).
    betas : (float, float)
        Decay rates of the first and second moments, each in [0, 1).
    eps : float
        > 0, added to the root of the second moment.
    weight_decay : float
        L2 multiplier >= 0 (0 by default).
    decay_biases : bool

    State: ``exp_avg`` (m) and ``exp_avg_sq`` (v), two parameter-sized arrays each.
    """

    _buffers = ("exp_avg", "exp_avg_sq")
    _hyper = ("beta1", "beta2", "eps")

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        decay_biases: bool = False,
    ) -> None:
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        self.beta1 = _check_unit_interval(betas[0], "Adam", "betas[0]")
        self.beta2 = _check_unit_interval(betas[1], "Adam", "betas[1]")
        self.eps = _check_positive(eps, "Adam", "eps")
        super().__init__(params, lr, weight_decay, decay_biases)

    def _update(self, w: np.ndarray, g: np.ndarray, *state: np.ndarray, wd: float) -> None:
        m, v = state
        t = self.step_count  # already incremented by step()
        d = g + wd * w if wd else g
        m *= self.beta1
        m += (1.0 - self.beta1) * d
        v *= self.beta2
        v += (1.0 - self.beta2) * (d * d)
        denom = np.sqrt(v / (1.0 - self.beta2**t))
        denom += self.eps
        upd = m / (1.0 - self.beta1**t)
        upd /= denom
        upd *= self.lr
        w -= upd


# ---------------------------------------------------------------- schedules
class _Schedule:
    """Shared state (de)serialisation for the schedules: ints/floats only."""

    _counters: tuple[str, ...] = ()  # restored by load_state_dict
    _fixed: tuple[str, ...] = ()  # must match on load_state_dict

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{type(self).__name__}: optimizer must be a minivgg.training.optim.Optimizer, got {type(optimizer).__name__}"
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
        if set(d) != expected:
            raise ValueError(_key_mismatch(cls, "state keys", expected, set(d)))
        _check_settings_match(d, fixed, cls, "this schedule")
        values = {"last_epoch": _scalar(d, "last_epoch", int, cls)}
        for k in self._counters:
            values[k] = _scalar(d, k, type(getattr(self, k)), cls)
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
        self.step_size = _check_int(step_size, "StepLR", "step_size", 1)
        self.gamma = _check_positive(gamma, "StepLR", "gamma")
        if self.gamma > 1:
            raise ValueError(f"StepLR: gamma must be in (0, 1], got {gamma!r}")

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
        self.factor = _check_positive(factor, name, "factor")
        if self.factor >= 1:
            raise ValueError(f"{name}: factor must be in (0, 1), got {factor!r}")
        self.patience = _check_int(patience, name, "patience", 0)
        if mode not in ("max", "min"):
            raise ValueError(f"{name}: mode must be 'max' or 'min', got {mode!r}")
        if threshold_mode not in ("abs", "rel"):
            raise ValueError(f"{name}: threshold_mode must be 'abs' or 'rel', got {threshold_mode!r}")
        self.mode, self.threshold_mode = mode, threshold_mode
        self.threshold = _check_real(threshold, name, "threshold")
        if self.threshold < 0:
            raise ValueError(f"{name}: threshold must be >= 0, got {threshold!r}")
        self.cooldown = _check_int(cooldown, name, "cooldown", 0)
        self.min_lr = _check_real(min_lr, name, "min_lr")
        if self.min_lr < 0:
            raise ValueError(f"{name}: min_lr must be >= 0, got {min_lr!r}")
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
        value = _check_real(metric, "ReduceLROnPlateau.step", "metric")
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
