"""The VGG model: configs A-E built into layers, with the lecture's parameter names.

Simonyan & Zisserman (arXiv 1409.1556); cs231n lecture 9. ``vgg16()`` is config
D: 13 3x3 convs in five blocks, each block ending in a 2x2 max-pool, then
fc6 (25088 -> 4096), fc7 (4096 -> 4096), fc8 (4096 -> 1000): 138,357,544
parameters.

Parameter names follow the lecture: ``conv1_1.w``, ``conv1_1.b``, ...,
``conv5_3.b``, ``fc6.w``, ``fc7.w``, ``fc8.w``. :meth:`VGG.torchvision_keys`
maps them to torchvision's ``features.N.weight`` / ``classifier.N.weight``
(dense weights are stored ``(D_in, D_out)`` here and ``(D_out, D_in)`` there).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .configs import ConfigItem, LayerSpec, VGGConfig, param_count
from .layers import INITS, LRN, Conv2d, Dense, Dropout, Flatten, Layer, MaxPool2d, ReLU, Sequential
from .ops import softmax, softmax_cross_entropy

#: The layer whose activations are "FC7 features": fc7 after its ReLU, as the
#: in-place ReLU of Caffe's VGG (and DeCAF-style transfer learning) gives them.
FEATURE_LAYER = "relu7"


def _check_dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"VGG dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise TypeError(f"VGG dtype must be float32 (speed) or float64 (gradient checks), got {dt}")
    return dt


class VGG:
    """A VGG network with cs231n-style ``loss`` and lecture-named parameters.

    Parameters
    ----------
    config : str, list or VGGConfig
        ``"vgg11" | "vgg13" | "vgg16c" | "vgg16" | "vgg19"``, a letter ``"A"``-``"E"``,
        a custom Table-1 list (see :mod:`minivgg.configs`), or a whole
        :class:`~minivgg.configs.VGGConfig` (then the architecture keywords
        below, if given, override its fields).
    num_classes : int
        Outputs of fc8 (default 1000, ImageNet).
    input_size : int
        Side of the square input (default 224); fc6's input is
        ``C5 * (input_size // 32)^2``. At least 32 for the paper's five pools.
    width : float
        Multiplier on conv channels (default 1.0, the paper): ``width=0.125``
        gives a VGG that trains on a laptop.
    fc_width : int
        Width of fc6 and fc7 (default 4096, the paper).
    dropout : float
        Drop probability after fc6 and fc7 (default 0.5, the paper).
    dtype : float32 or float64
        float32 is the speed path, float64 the gradient-checking path.
    seed : int
        Seeds the weights and the dropout masks (reproducible runs).
    init : {"he", "paper", "none"}
        Conv/dense initialisation: He N(0, 2/fan_in), the paper's N(0, 0.01^2), or
        ``"none"`` (zeros, instant) for a model whose weights will be loaded.
    in_channels : int
        Image channels (default 3; 1 for MNIST-like data).
    algo : str
        Convolution algorithm for every conv (see :data:`minivgg.ops.CONV_ALGORITHMS`), ``"auto"``
        (a fixed shape rule, the default) or ``"tune"`` (measured per shape on first use,
        :class:`minivgg.ops.conv.tune.Tuner`).

    Attributes
    ----------
    config : VGGConfig
        The architecture record the model was built from (files store it).
    specs : list of LayerSpec
        Every layer's name and shapes, from ``config``.

    Examples
    --------
    >>> tiny = VGG("vgg11", num_classes=10, input_size=32, width=0.125, fc_width=64, dtype=np.float64)
    >>> loss, grads = tiny.loss(x, y)          # doctest: +SKIP
    """

    def __init__(self, config: str | Sequence[ConfigItem] | VGGConfig = "vgg16", num_classes: int | None = None,
                 input_size: int | None = None, width: float | None = None, fc_width: int | None = None,
                 dropout: float | None = None, dtype=np.float32, seed: int = 0, init: str = "he",
                 in_channels: int | None = None, algo: str = "auto") -> None:
        if init not in INITS:
            raise ValueError(f"VGG init must be one of {INITS}, got {init!r}")
        given = dict(num_classes=num_classes, input_size=input_size, width=width, fc_width=fc_width,
                     dropout=dropout, in_channels=in_channels)
        self.config: VGGConfig = VGGConfig.from_arch(config, **{k: v for k, v in given.items() if v is not None})
        self.dtype = _check_dtype(dtype)
        self.seed, self.init = seed, init
        self.specs: list[LayerSpec] = self.config.specs()
        rng = np.random.default_rng(seed)
        self.layers = Sequential([self._build(spec, rng, algo) for spec in self.specs])

    # The architecture's fields, read through the one record.
    arch = property(lambda self: self.config.arch, doc="Label: ``vgg16``, a letter, or ``custom``.")
    num_classes = property(lambda self: self.config.num_classes, doc="Outputs of fc8.")
    input_size = property(lambda self: self.config.input_size, doc="Side of the square input.")
    in_channels = property(lambda self: self.config.in_channels, doc="Image channels.")
    width = property(lambda self: self.config.width, doc="Multiplier on conv channels.")
    fc_width = property(lambda self: self.config.fc_width, doc="Width of fc6 and fc7.")
    dropout = property(lambda self: self.config.dropout, doc="Drop probability after fc6 and fc7.")

    def _build(self, spec: LayerSpec, rng: np.random.Generator, algo: str) -> Layer:
        if spec.kind == "conv":
            return Conv2d(spec.name, spec.in_channels, spec.out_channels, spec.kernel, spec.stride, spec.pad,
                          dtype=self.dtype, init=self.init, rng=rng, algo=algo, groups=spec.groups)
        if spec.kind == "dense":
            return Dense(spec.name, spec.in_channels, spec.out_channels, dtype=self.dtype, init=self.init, rng=rng)
        if spec.kind == "relu":
            return ReLU(spec.name)
        if spec.kind == "lrn":
            return LRN(spec.name, spec.kernel)
        if spec.kind == "pool":
            return MaxPool2d(spec.name, spec.kernel, spec.stride)
        if spec.kind == "flatten":
            return Flatten(spec.name)
        if spec.kind == "dropout":
            # each dropout layer gets its own stream spawned from the model seed
            return Dropout(spec.name, spec.p, seed=rng.spawn(1)[0])
        raise AssertionError(f"unknown layer kind {spec.kind!r}")  # configs.layer_specs only emits the above

    # -- description -------------------------------------------------------
    def __repr__(self) -> str:
        return (f"VGG({self.arch!r}, num_classes={self.num_classes}, input_size={self.input_size}, "
                f"width={self.width}, dtype={self.dtype.name}, params={self.num_params:,})")

    @property
    def num_params(self) -> int:
        """Total number of weights and biases (computed from the config; equals the arrays' sizes)."""
        return param_count(self.specs)

    @property
    def params(self) -> dict[str, np.ndarray]:
        """``{"conv1_1.w": (64, 3, 3, 3) array, ..., "fc8.b": (num_classes,)}`` -- the live arrays."""
        return self.layers.params

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """Gradients from the last backward, same keys as :attr:`params`."""
        return self.layers.grads

    # -- computation -------------------------------------------------------
    def check_input(self, x: np.ndarray) -> np.ndarray:
        """Raise TypeError/ValueError unless ``x`` is ``(N, in_channels, S, S)`` of the model's dtype."""
        where = f"VGG({self.arch}, input_size={self.input_size})"
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{where}: input must be a numpy.ndarray, got {type(x).__name__}")
        if x.dtype != self.dtype:
            hint = " (convert images with minivgg.training.data or x.astype(...))" if x.dtype.kind in "uib" else ""
            raise TypeError(f"{where}: input dtype must be {self.dtype}, got {x.dtype}{hint}")
        expected = (self.in_channels, self.input_size, self.input_size)
        if x.ndim != 4 or x.shape[1:] != expected:
            raise ValueError(f"{where}: input must have shape (N, {', '.join(map(str, expected))}), got {x.shape}")
        if x.shape[0] < 1:
            raise ValueError(f"{where}: the batch is empty (input shape {x.shape}); N must be >= 1 image")
        return x

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        """Logits ``(N, num_classes)`` for images ``(N, C, S, S)``.

        ``train=True`` applies dropout and keeps what :meth:`backward` needs;
        ``train=False`` keeps nothing.
        """
        return self.layers.forward(self.check_input(x), train=train)

    def backward(self, dlogits: np.ndarray) -> np.ndarray:
        """Backpropagate ``dlogits`` (N, num_classes); fills :attr:`grads`, returns ``dx``."""
        return self.layers.backward(dlogits)

    def loss(self, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """Training-mode forward, softmax cross-entropy (mean over the batch) and backward.

        Returns ``(loss, grads)`` with ``grads`` keyed like :attr:`params`.
        Weight decay is the optimiser's job, not the loss's.
        """
        logits = self.forward(x, train=True)
        loss, dlogits = softmax_cross_entropy(logits, y)
        self.layers.backward(dlogits, input_grad=False)  # nothing needs d(loss)/d(images): conv1_1 skips it
        return loss, self.grads

    def _batched(self, x: np.ndarray, fn, batch_size: int) -> np.ndarray:
        self.check_input(x)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return np.concatenate([fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])

    def predict_proba(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Class probabilities ``(N, num_classes)`` in inference mode, ``batch_size`` images at a time."""
        return self._batched(x, lambda xb: softmax(self.layers.forward(xb)), batch_size)

    def predict(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Predicted labels ``(N,)`` (arg-max of the logits)."""
        return self._batched(x, lambda xb: self.layers.forward(xb).argmax(axis=1), batch_size)

    def features(self, x: np.ndarray, layer: str = FEATURE_LAYER, batch_size: int = 64) -> np.ndarray:
        """Activations of the named layer (default ``relu7``: FC7 features) in inference mode.

        Returns ``(N, *spec.out_shape)`` for that layer, e.g. ``(N, 4096)`` for
        ``relu7`` or ``(N, 512, 14, 14)`` for ``conv5_3``.
        """
        self.layers[layer]  # KeyError naming the valid layers, before any work
        return self._batched(x, lambda xb: self.layers.forward(xb, until=layer), batch_size)

    def input_gradient(self, x: np.ndarray, dout: np.ndarray, layer: str | None = None) -> np.ndarray:
        """``dx = d(sum(dout * y))/dx`` for ``y`` the output of ``layer`` (default: the logits), in inference mode.

        Runs the layers up to ``layer`` keeping caches (dropout as the identity, as at
        test time), backpropagates ``dout`` (N, *out_shape of ``layer``) through each
        layer's own backward and returns ``dx`` (N, C, S, S). Cost: one forward and one
        backward (~3x the forward MACs, since conv backward also forms dw). Overwrites
        :attr:`grads` as a side effect and drops the caches afterwards.
        """
        self.check_input(x)
        stop = self.layers.names().index(layer) if layer is not None else len(self.layers) - 1
        if layer is not None:
            self.layers[layer]  # KeyError naming the valid layers
        chain = list(self.layers)[:stop + 1]
        try:
            y = x
            for lay in chain:  # dropout in inference mode is the identity: no cache, skipped below
                y = lay.forward(y, train=not isinstance(lay, Dropout))
            if dout.shape != y.shape or dout.dtype != y.dtype:
                raise ValueError(f"{self!r}: input_gradient dout must be {y.dtype} of shape {y.shape} "
                                 f"(the output of {chain[-1].name}), got {dout.dtype} {dout.shape}")
            for lay in reversed(chain):
                if not isinstance(lay, Dropout):
                    dout = lay.backward(dout)
            return dout
        finally:
            self.layers.clear_caches()

    # -- parameters in and out --------------------------------------------
    def load_params(self, mapping: Mapping[str, np.ndarray], strict: bool = True) -> None:
        """Copy arrays into the model's parameters, all or nothing.

        Every name, shape and value is validated before anything is written, so
        a failed load leaves the model exactly as it was. Arrays are converted
        to the model's dtype (an explicit load is the place to choose precision).

        Raises
        ------
        ValueError
            Unknown or (with ``strict``) missing names, shape mismatches, non-finite values.
        """
        own = self.params
        unknown = sorted(set(mapping) - set(own))
        missing = sorted(set(own) - set(mapping))
        if unknown:
            raise ValueError(f"{self!r}: unknown parameter names {unknown[:5]}{'...' if len(unknown) > 5 else ''}")
        if strict and missing:
            raise ValueError(f"{self!r}: missing parameters {missing[:5]}{'...' if len(missing) > 5 else ''}")
        staged = {}
        for key, value in mapping.items():
            arr = np.asarray(value)
            if arr.dtype.kind not in "fiu":
                raise TypeError(f"{self!r}: parameter {key} has non-numeric dtype {arr.dtype}")
            if arr.shape != own[key].shape:
                raise ValueError(f"{self!r}: parameter {key} must have shape {own[key].shape}, got {arr.shape}")
            arr = arr.astype(self.dtype, copy=False)
            if not np.isfinite(arr).all():
                raise ValueError(f"{self!r}: parameter {key} contains NaN or infinite values")
            staged[key] = arr
        for key, arr in staged.items():
            own[key][...] = arr  # in place: optimisers holding these arrays stay valid

    def torchvision_keys(self) -> dict[str, str]:
        """``{"conv1_1.w": "features.0.weight", ..., "fc8.b": "classifier.6.bias"}`` (:func:`torchvision_keys`)."""
        return torchvision_keys(self.config)


#: torchvision's ``classifier``: Linear 0, ReLU 1, Dropout 2, Linear 3, ReLU 4, Dropout 5, Linear 6.
_TORCHVISION_CLASSIFIER = (("fc6", 0), ("fc7", 3), ("fc8", 6))


def torchvision_keys(config: str | Sequence[ConfigItem] | VGGConfig = "vgg16") -> dict[str, str]:
    """The one map from minivgg names to torchvision's VGG state-dict keys.

    ``{"conv1_1.w": "features.0.weight", "conv1_1.b": "features.0.bias", ...,
    "fc8.b": "classifier.6.bias"}``. torchvision's ``make_layers`` builds
    ``features`` as a Conv2d and a ReLU per conv (two indices each) and one
    MaxPool2d per ``"M"`` (one index); ``classifier`` as Linear, ReLU, Dropout,
    Linear, ReLU, Dropout, Linear. torchvision ships no config C, but its
    layout gives a 1x1 conv the same two indices, so C maps the same way
    (files of that layout load, and are written back, consistently).

    torchvision's Linear weights are ``(D_out, D_in)``, the transpose of
    minivgg's dense ``(D_in, D_out)``: the io layer transposes them.
    """
    cfg = VGGConfig.from_arch(config)
    convs = iter(s.name for s in cfg.specs() if s.kind == "conv")
    keys: dict[str, str] = {}
    index = 0
    for item in cfg.layers:
        if item == "M":
            index += 1
            continue
        name = next(convs)
        keys[f"{name}.w"], keys[f"{name}.b"] = f"features.{index}.weight", f"features.{index}.bias"
        index += 2
    for name, idx in _TORCHVISION_CLASSIFIER:
        keys[f"{name}.w"], keys[f"{name}.b"] = f"classifier.{idx}.weight", f"classifier.{idx}.bias"
    return keys


def vgg11(**kwargs) -> VGG:
    """VGG-11: config A of the paper's Table 1 -- 8 convs + 3 fc, 132,863,336 parameters at 224/1000.

    Simonyan & Zisserman (arXiv 1409.1556), the shallowest net they trained
    (the deeper ones were initialised from it). ``kwargs`` as :class:`VGG`.
    """
    return VGG("vgg11", **kwargs)


def vgg13(**kwargs) -> VGG:
    """VGG-13: config B -- 10 convs + 3 fc, 133,047,848 parameters at 224/1000.

    A plus one more 3x3 conv in blocks 1 and 2 (Simonyan & Zisserman, Table 1).
    ``kwargs`` as :class:`VGG`.
    """
    return VGG("vgg13", **kwargs)


def vgg16(**kwargs) -> VGG:
    """VGG-16: config D -- 13 convs + 3 fc, 138,357,544 parameters at 224/1000 (the lecture's "138M").

    Simonyan & Zisserman, Table 1, D (not C, whose third conv in blocks 3-5 is
    1x1: ``VGG("vgg16c")``). ~15.5 GMACs per 224x224 image. ``kwargs`` as :class:`VGG`.
    """
    return VGG("vgg16", **kwargs)


def vgg19(**kwargs) -> VGG:
    """VGG-19: config E -- 16 convs + 3 fc, 143,667,240 parameters at 224/1000.

    Simonyan & Zisserman, Table 1, E: a fourth 3x3 conv in blocks 3-5; ~19.6
    GMACs per image, slightly better than D in the paper's Table 4. ``kwargs`` as :class:`VGG`.
    """
    return VGG("vgg19", **kwargs)
