"""Stateful layers (parameters, gradients, cache) and ``Sequential``.

The math lives in :mod:`minivgg.ops`; a layer only owns state:

* ``params`` -- ``{"w": ..., "b": ...}`` (empty for parameter-free layers);
* ``grads``  -- same keys, filled by :meth:`Layer.backward`. Every backward
  overwrites them completely; a Dense layer writes its weight gradient into the
  previous step's array (fc6's is 411 MB, and a fresh one costs more in page
  faults than the product that fills it), so copy a gradient you want to keep;
* a cache, kept only after ``forward(x, train=True)`` and dropped by
  ``backward`` -- inference keeps nothing, so a forward pass holds no more than
  the activations still in flight.

Contract for every layer::

    out = layer.forward(x, train=False)
    dx  = layer.backward(dout)   # only after a train=True forward
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from . import ops
from .kernels.compare import same_bits
from .ops.conv.tune import Tuner

#: The measured algorithm choice shared by every ``Conv2d(algo="tune")`` in the process
#: (:class:`minivgg.ops.conv.tune.Tuner`): a shape is timed once, then looked up.
TUNER = Tuner()


def _bits(a: np.ndarray) -> np.ndarray:
    """``a``'s raw bits as a flat unsigned-integer view (a copy only if ``a`` is not contiguous)."""
    a = np.ascontiguousarray(a)
    return a.reshape(-1).view(np.uint64 if a.itemsize == 8 else np.uint32)

INITS = ("he", "paper", "none")


def init_weight(shape: tuple, fan_in: int, init: str, rng: np.random.Generator, dtype) -> np.ndarray:
    """Draw a weight array.

    ``"paper"``: N(0, 0.01^2), VGG §3.1 (the paper trained config A this way and
    initialised deeper nets from it). ``"he"``: N(0, 2 / fan_in), He et al. 2015,
    which lets the deep configs train from scratch. ``"none"``: zeros, without
    sampling anything -- for a model whose weights are about to be loaded (the
    pages of ``np.zeros`` are only touched when the loaded values are copied in).
    """
    if init == "none":
        return np.zeros(shape, dtype=dtype)
    if init == "paper":
        std = 0.01
    elif init == "he":
        std = float(np.sqrt(2.0 / fan_in))
    else:
        raise ValueError(f"unknown init {init!r}; expected one of {INITS}")
    w = rng.standard_normal(shape, dtype=np.float32 if np.dtype(dtype) == np.float32 else np.float64)
    w *= w.dtype.type(std)
    return w.astype(dtype, copy=False)


class Layer:
    """Base class: a name, ``params``/``grads`` dicts and a training cache."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self._cache = None

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _keep(self, cache, train: bool) -> None:
        self._cache = cache if train else None

    def _take_cache(self):
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward() needs a forward(x, train=True) first")
        cache, self._cache = self._cache, None
        return cache

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={v.shape}" for k, v in self.params.items())
        return f"{type(self).__name__}({self.name!r}{', ' + shapes if shapes else ''})"


class Conv2d(Layer):
    """Convolution layer; weights ``(F, C, KH, KW)``, bias ``(F,)``. See :func:`minivgg.ops.conv2d_forward`.

    Inference filter cache: Winograd transforms the filters before use
    (``U = G w G^T``, 16/9 the size of ``w``). In inference mode
    (``train=False``) the layer keeps the last ``U`` together with a copy of
    the ``w`` it came from, and reuses ``U`` while ``params["w"]`` is still
    bit-for-bit that copy -- checked on every forward by one streaming
    comparison (:func:`minivgg.kernels.compare.same_bits`), so changing a
    weight in place, assigning a new array or loading weights all take
    effect at once. Cost: ``U`` plus the copy, 25/9 of the layer's weights,
    held while the layer lives; ``cache_filters = False`` turns it off (and
    frees it). Training forwards never use it (the weights change every step).
    """

    def __init__(self, name: str, in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1,
                 pad: int | None = None, *, dtype=np.float32, init: str = "he",
                 rng: np.random.Generator | None = None, algo: str = "auto", groups: int = 1) -> None:
        super().__init__(name)
        rng = rng if rng is not None else np.random.default_rng(0)
        self.stride, self.pad = stride, kernel // 2 if pad is None else pad
        self.algo = algo
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: groups={groups} must divide in_channels={in_channels} "
                             f"and out_channels={out_channels}")
        self.groups = groups  # AlexNet's two-GPU convs: weights (F, C/groups, K, K)
        shape = (out_channels, in_channels // groups, kernel, kernel)
        self.params["w"] = init_weight(shape, in_channels // groups * kernel * kernel, init, rng, dtype)
        self.params["b"] = np.zeros(out_channels, dtype=dtype)
        self._filters: tuple | None = None  # (algo, copy of w, transformed w): the inference filter cache
        self._cache_filters = True

    @property
    def cache_filters(self) -> bool:
        """Whether inference forwards reuse the transformed filters (see the class docstring)."""
        return self._cache_filters

    @cache_filters.setter
    def cache_filters(self, value: bool) -> None:
        self._cache_filters = bool(value)
        if not value:
            self._filters = None

    def _transformed_filters(self, x, algo: str) -> np.ndarray | None:
        """The cached transform of ``params["w"]`` for the algorithm this input gets, or ``None``."""
        w = self.params["w"]
        if self.groups != 1:
            return None  # grouped convs transform per group inside conv2d_forward (AlexNet only)
        if not (isinstance(x, np.ndarray) and x.ndim == 4 and isinstance(w, np.ndarray) and w.ndim == 4
                and x.dtype == w.dtype and w.dtype in (np.float32, np.float64) and x.shape[1] == w.shape[1]):
            return None  # conv2d_forward will explain what is wrong
        algo = ops.conv.choose_algorithm(x.shape, w.shape, self.stride, self.pad, algo)
        transform = ops.conv.FILTER_TRANSFORMS.get(algo)
        if transform is None:
            return None
        entry = self._filters
        if (entry is not None and entry[0] == algo and entry[1].shape == w.shape and entry[1].dtype == w.dtype
                and same_bits(_bits(entry[1]), _bits(w))):
            return entry[2]
        self._filters = None  # drop the stale one before allocating its replacement
        w = np.ascontiguousarray(w)
        self._filters = (algo, w.copy(), transform(w))
        return self._filters[2]

    def _algo_for(self, x, train: bool) -> str:
        """``self.algo``, with ``"tune"`` resolved by the shared :data:`TUNER` for this input."""
        if self.algo != "tune":
            return self.algo
        if self.groups != 1:
            return "auto"  # the tuner times ungrouped shapes only
        w = self.params["w"]
        if not (isinstance(x, np.ndarray) and x.ndim == 4 and isinstance(w, np.ndarray) and w.ndim == 4):
            return "auto"  # conv2d_forward will explain what is wrong
        return TUNER.choose(x.shape, w.shape, self.stride, self.pad, w.dtype, train)

    def forward(self, x, train=False):
        algo = self._algo_for(x, train)
        filters = self._transformed_filters(x, algo) if self._cache_filters and not train else None
        out, cache = ops.conv2d_forward(x, self.params["w"], self.params["b"], self.stride, self.pad,
                                        algo=algo, name=self.name, filters=filters, groups=self.groups)
        self._keep(cache, train)
        return out

    def backward(self, dout, need_dx: bool = True):
        """Fill ``grads``; return ``dx`` (``None`` with ``need_dx=False``: the first layer's is never used)."""
        dx, self.grads["w"], self.grads["b"] = ops.conv2d_backward(dout, self._take_cache(), need_dx=need_dx)
        return dx


class ReLU(Layer):
    """``max(x, 0)``; derivative 0 at exactly 0. Keeps its output as the mask."""

    def forward(self, x, train=False):
        out, cache = ops.relu_forward(x, name=self.name)
        self._keep(cache, train)
        return out

    def backward(self, dout):
        return ops.relu_backward(dout, self._take_cache())


class LRN(Layer):
    """Local response normalisation across channels (AlexNet); no parameters. See :func:`minivgg.ops.lrn_forward`."""

    def __init__(self, name: str, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0) -> None:
        super().__init__(name)
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x, train=False):
        out, cache = ops.lrn_forward(x, self.size, self.alpha, self.beta, self.k, name=self.name)
        self._keep(cache, train)
        return out

    def backward(self, dout):
        return ops.lrn_backward(dout, self._take_cache())


class MaxPool2d(Layer):
    """Max-pool over ``size x size`` windows; keeps a uint8 arg-max per output."""

    def __init__(self, name: str, size: int = 2, stride: int = 2) -> None:
        super().__init__(name)
        self.size, self.stride = size, stride

    def forward(self, x, train=False):
        out, cache = ops.maxpool_forward(x, self.size, self.stride, name=self.name)
        self._keep(cache, train)
        return out

    def backward(self, dout):
        return ops.maxpool_backward(dout, self._take_cache())


class Flatten(Layer):
    """``(N, C, H, W) -> (N, C*H*W)`` as a view (C-order, channel-major, like PyTorch)."""

    def forward(self, x, train=False):
        self._keep(x.shape, train)
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self._take_cache())


class Dense(Layer):
    """Fully connected layer; weights ``(D_in, D_out)``, bias ``(D_out,)``."""

    def __init__(self, name: str, d_in: int, d_out: int, *, dtype=np.float32, init: str = "he",
                 rng: np.random.Generator | None = None) -> None:
        super().__init__(name)
        rng = rng if rng is not None else np.random.default_rng(0)
        self.params["w"] = init_weight((d_in, d_out), d_in, init, rng, dtype)
        self.params["b"] = np.zeros(d_out, dtype=dtype)

    def forward(self, x, train=False):
        out, cache = ops.dense_forward(x, self.params["w"], self.params["b"], name=self.name)
        self._keep(cache, train)
        return out

    def backward(self, dout):
        # reuse last step's weight-gradient buffer: see ops.dense_backward (fc6's is 411 MB)
        dx, self.grads["w"], self.grads["b"] = ops.dense_backward(dout, self._take_cache(),
                                                                  dw_out=self.grads.get("w"))
        return dx


class Dropout(Layer):
    """Inverted dropout with its own seeded generator; identity when ``train=False``."""

    def __init__(self, name: str, p: float = 0.5, seed: int | np.random.Generator | None = 0) -> None:
        super().__init__(name)
        if not (0.0 <= float(p) < 1.0):
            raise ValueError(f"{name}: drop probability p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def forward(self, x, train=False):
        out, cache = ops.dropout_forward(x, self.p, train=train, rng=self.rng, name=self.name)
        self._keep(cache, train)
        return out

    def backward(self, dout):
        return ops.dropout_backward(dout, self._take_cache())


class Sequential:
    """Layers applied in order, addressable by name; ``params``/``grads`` keyed ``"<layer>.<param>"``."""

    def __init__(self, layers: Sequence[Layer]) -> None:
        names = [layer.name for layer in layers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"Sequential: layer names must be unique, repeated: {dupes}")
        self.layers = list(layers)
        self._index = {layer.name: i for i, layer in enumerate(self.layers)}

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, key: str | int) -> Layer:
        if isinstance(key, str):
            if key not in self._index:
                raise KeyError(f"no layer named {key!r}; layers are {list(self._index)}")
            return self.layers[self._index[key]]
        return self.layers[key]

    def names(self) -> list[str]:
        """Layer names in order."""
        return list(self._index)

    def forward(self, x: np.ndarray, train: bool = False, *, until: str | None = None) -> np.ndarray:
        """Run the layers in order; stop after layer ``until`` if given.

        In inference mode (``train=False``) no layer keeps a cache and each
        intermediate activation is released as soon as the next one exists.
        """
        if until is not None and until not in self._index:
            raise KeyError(f"no layer named {until!r}; layers are {list(self._index)}")
        for layer in self.layers:
            x = layer.forward(x, train=train)
            if layer.name == until:
                break
        return x

    def backward(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """Backpropagate ``dout`` through every layer in reverse; return ``dx``.

        ``input_grad=False`` (training, where nothing uses the gradient of the
        images) lets a first conv layer skip its ``dx`` and returns ``None``.
        """
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            if i == 0 and not input_grad and isinstance(layer, Conv2d):
                return layer.backward(dout, need_dx=False)
            dout = layer.backward(dout)
        return dout

    def clear_caches(self) -> None:
        """Drop every training cache (frees the activations a train-mode forward kept)."""
        for layer in self.layers:
            layer._cache = None

    @property
    def params(self) -> dict[str, np.ndarray]:
        """``{"conv1_1.w": array, ...}`` -- the layers' own arrays (updating them updates the model)."""
        return {f"{layer.name}.{k}": v for layer in self.layers for k, v in layer.params.items()}

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """Gradients from the last backward, same keys as :attr:`params`."""
        out = {}
        for layer in self.layers:
            for k in layer.params:
                if k not in layer.grads:
                    raise RuntimeError(f"{layer.name}: no gradient for {k!r} yet; run a backward pass first")
                out[f"{layer.name}.{k}"] = layer.grads[k]
        return out
