"""Optimisers: how VGG was trained (paper §3.1), the update rules written once.

Simonyan & Zisserman (arXiv 1409.1556, §3.1 "Training") optimised the
multinomial logistic loss with mini-batch gradient descent: batch 256,
momentum 0.9, weight decay (L2 multiplier) 5e-4, dropout 0.5 on fc6/fc7, and a
learning rate of 1e-2 that was "decreased by a factor of 10 when the validation
set accuracy stopped improving" (three times in 74 epochs). This module gives
the optimiser (:class:`SGD`), plus the usual alternatives from cs231n lecture 7
(Nesterov momentum, :class:`Adam`); the learning-rate schedules, the paper's
:class:`~minivgg.training.schedules.ReduceLROnPlateau` among them, live in
:mod:`minivgg.training.schedules`.

The update rules
----------------
For a parameter ``w`` with gradient ``grad`` (``wd`` the weight decay, applied
to decayed keys only; every state array starts at 0)::

    g = grad + wd * w                          # the paper's L2 term (for Adam too: not AdamW)

    # SGD, PyTorch's formulation: velocity v, momentum mu
    v = mu * v + g                             # momentum > 0
    d = g + mu * v   if nesterov               # look-ahead (Sutskever et al. 2013)
    d = v            if not nesterov           # heavy ball
    d = g            if mu == 0                # plain SGD
    w -= lr * d

    # Adam (Kingma & Ba 2015): t the step number, 1 on the first step
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    w -= lr * m_hat / (sqrt(v_hat) + eps)

The SGD rule differs from cs231n's ``v = mu*v - lr*g; w += v`` only when ``lr``
changes: here the velocity is lr-free, so a schedule does not rescale the
momentum already accumulated.

The contract
------------
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
* Weight decay applies by default to weights only, i.e. keys ``"w"`` or ending
  in ``".w"`` (``conv1_1.w``, ``fc6.w``); biases are not decayed, as in common
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

from typing import Any, Iterator, Mapping

import numpy as np

from ..ops._validate import check_keys, check_real, check_scalar, check_settings_match

__all__ = ["Optimizer", "SGD", "Adam", "CHUNK", "StateDict"]

#: Elements per update chunk: bounds temporaries to ~1 MB (float32) per array.
CHUNK = 1 << 18

#: A flat resume state: what ``np.savez`` stores without pickle.
StateDict = dict[str, "np.ndarray | float | int"]


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
        self.weight_decay = check_real(weight_decay, cls, "weight_decay", 0)
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
        self._lr = check_real(value, type(self).__name__, "lr", 0, low_open=True)

    def decays(self, name: str) -> bool:
        """True if weight decay applies to parameter ``name`` (weights; biases only if ``decay_biases``)."""
        return self.decay_biases or name == "w" or name.endswith(".w")

    def _check_grads(self, grads: Mapping[str, np.ndarray]) -> None:
        cls = type(self).__name__
        if not isinstance(grads, Mapping):
            raise TypeError(f"{cls}.step: grads must be a dict name -> ndarray, got {type(grads).__name__}")
        names = set(self._names)
        check_keys(grads, names, f"{cls}.step", "grads keys", "the parameters")
        check_keys(self.params, names, f"{cls}.step", "params keys (changed since construction)", "the parameters")
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
        check_keys(d, expected, cls, "state keys (another optimiser or model?)", "the parameters")
        check_settings_match(d, hyper, cls, "this optimiser")
        lr = check_real(check_scalar(d["lr"], cls, "'lr'"), cls, "saved lr", 0, low_open=True)
        step = check_scalar(d["step"], cls, "'step'", integer=True)
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

    Update: the SGD rule at the top of this module (PyTorch's lr-free velocity).

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
        self.momentum = check_real(momentum, "SGD", "momentum", 0, 1, high_open=True)
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

    Update: the Adam rule at the top of this module (L2 on the gradient, not AdamW).

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
        self.beta1 = check_real(betas[0], "Adam", "betas[0]", 0, 1, high_open=True)
        self.beta2 = check_real(betas[1], "Adam", "betas[1]", 0, 1, high_open=True)
        self.eps = check_real(eps, "Adam", "eps", 0, low_open=True)
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
