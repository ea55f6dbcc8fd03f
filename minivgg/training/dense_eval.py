"""Dense evaluation (VGG §3.2): the fully connected layers turned into convolutions.

Simonyan & Zisserman (arXiv 1409.1556) §3.2 "Testing": "the fully-connected
layers are first converted to convolutional layers (the first FC layer to a
7x7 conv. layer, the last two FC layers to 1x1 conv. layers). The resulting
fully-convolutional net is then applied to the whole (uncropped) image. The
result is a class score map with the number of channels equal to the number of
classes, and a variable spatial resolution, dependent on the input image
size. Finally, to obtain a fixed-size vector of class scores for the image,
the class score map is spatially averaged (sum-pooled)." (cs231n lecture 9
makes the same point: an FC layer is a conv whose kernel covers its whole input.)

The conversion
--------------
fc6 sees pool5's map ``(C, h, w)`` (``(512, 7, 7)`` at 224x224) flattened
channel-major, so input feature ``d = c*h*w_ + i*w_ + j`` holds ``pool5[c, i, j]``
and its weight row ``W6[d, :]`` becomes a convolution kernel:

.. math::

    K_6[f, c, i, j] = W_6[c\\,h w + i\\,w + j,\\; f]
    \\quad\\Longleftrightarrow\\quad
    K_6 = W_6^T\\text{.reshape}(D_6, C, h, w)

an ``h x w`` convolution with no padding. fc7 and fc8 become 1x1 convolutions
``W^T.reshape(D_out, D_in, 1, 1)``; the ReLUs stay, dropout (the identity at
test time) goes. On an input of the training size pool5 is exactly ``h x w``,
so the map is 1x1 and equals the original logits. On an ``H x W`` input pool5
is ``(H // 32) x (W // 32)`` and the score map has

.. math::

    H' = \\lfloor H/32 \\rfloor - h + 1, \\qquad W' = \\lfloor W/32 \\rfloor - w + 1

positions, each the network's scores for one ``input_size``-sized window
stepped by 32 pixels -- without recomputing the shared convolutions.

Cost: the conv part costs ``(H W / S^2)`` times its training-size MACs; the
converted classifier ``H' W'`` times fc6+fc7+fc8's MACs (against ``H' W'``
full forward passes for cropping every window separately).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import ops
from ..vgg import VGG

__all__ = ["dense_to_conv_weight", "DenseVGG", "to_dense"]


class Step(NamedTuple):
    """One layer of the fully convolutional network."""

    kind: str  # "conv", "relu", "lrn" or "pool"
    name: str  # the original layer's name (fc6 keeps its name as a conv)
    w: np.ndarray | None = None  # (F, C, KH, KW) for conv
    b: np.ndarray | None = None  # (F,) for conv
    stride: int = 1
    pad: int = 0
    size: int = 0  # pool window; LRN's channel window
    groups: int = 1  # conv channel groups (AlexNet's two-GPU convs)
    lrn: tuple[float, float, float] = (0.0, 0.0, 0.0)  # LRN's (alpha, beta, k)


def dense_to_conv_weight(w: np.ndarray, in_shape: tuple) -> np.ndarray:
    """A dense weight ``(D_in, D_out)`` over a flattened ``(C, h, w)`` input -> a conv kernel ``(D_out, C, h, w)``.

    ``D_in`` must equal ``C*h*w``; the flattening is channel-major (C order),
    as :func:`minivgg.ops.dense_forward` and PyTorch's ``view(N, -1)`` do.
    For a 1-D input shape ``(D,)`` this gives a 1x1 kernel ``(D_out, D, 1, 1)``.
    Returns a new C-contiguous array.
    """
    shape = tuple(in_shape) if len(in_shape) == 3 else (int(in_shape[0]), 1, 1)
    c, h, wd = shape
    if w.ndim != 2 or w.shape[0] != c * h * wd:
        raise ValueError(f"dense_to_conv_weight: weight {w.shape} does not fit an input of shape {tuple(in_shape)} "
                         f"(expected ({c * h * wd}, D_out))")
    return np.ascontiguousarray(w.T.reshape(w.shape[1], c, h, wd))  # (D_out, C*h*w) -> (D_out, C, h, w)


class DenseVGG:
    """A VGG whose fc6/fc7/fc8 are convolutions: runs on images larger than its training size.

    Built by :func:`to_dense` from a trained :class:`~minivgg.vgg.VGG`; it holds
    copies of the weights (a snapshot: convert again after more training).
    Inference only.

    Attributes
    ----------
    steps : list of Step
        conv/relu/pool layers in order; fc6 is an ``h x w`` conv, fc7 and fc8 1x1 convs.
    input_size : int
        The training size ``S``; inputs must be at least ``S x S``.
    pool5_shape : (C, h, w)
        The map fc6 was trained on.
    """

    def __init__(self, model: VGG) -> None:
        if not isinstance(model, VGG):
            raise TypeError(f"DenseVGG: expected a minivgg.vgg.VGG, got {type(model).__name__}")
        params = model.params
        self.arch, self.dtype = model.arch, model.dtype
        self.input_size, self.in_channels, self.num_classes = model.input_size, model.in_channels, model.num_classes
        self.steps: list[Step] = []
        in_shape = None
        for spec in model.specs:
            if spec.kind == "conv":
                self.steps.append(Step("conv", spec.name, params[f"{spec.name}.w"].copy(),
                                       params[f"{spec.name}.b"].copy(), spec.stride, spec.pad, groups=spec.groups))
            elif spec.kind == "relu":
                self.steps.append(Step("relu", spec.name))
            elif spec.kind == "lrn":
                lrn = model.layers[spec.name]  # the model's own layer: its constants, not the defaults
                self.steps.append(Step("lrn", spec.name, size=lrn.size, lrn=(lrn.alpha, lrn.beta, lrn.k)))
            elif spec.kind == "pool":
                self.steps.append(Step("pool", spec.name, stride=spec.stride, size=spec.kernel))
            elif spec.kind == "flatten":
                self.pool5_shape = tuple(spec.in_shape)
                in_shape = spec.in_shape
            elif spec.kind == "dense":
                kernel = dense_to_conv_weight(params[f"{spec.name}.w"], in_shape)
                self.steps.append(Step("conv", spec.name, kernel, params[f"{spec.name}.b"].copy(), 1, 0))
                in_shape = spec.out_shape
            elif spec.kind != "dropout":  # dropout: the identity at test time, dropped
                raise ValueError(f"DenseVGG: layer {spec.name} of kind {spec.kind!r} has no fully convolutional "
                                 "form here; expected conv, relu, lrn, pool, flatten, dense or dropout")

    def __repr__(self) -> str:
        c, h, w = self.pool5_shape
        return (f"DenseVGG({self.arch!r}, trained at {self.input_size}x{self.input_size}, fc6 as a {h}x{w} conv "
                f"over {c} channels, {self.num_classes} classes)")

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Score-map size ``(H', W')`` for an ``height x width`` input."""
        h, w = height, width
        for step in self.steps:
            if step.kind == "pool":
                h, w = ops.pool_output_size(h, step.size, step.stride), ops.pool_output_size(w, step.size, step.stride)
            elif step.kind == "conv":
                kh, kw = step.w.shape[2:]
                h, w = ops.conv_output_size(h, kh, step.stride, step.pad), ops.conv_output_size(w, kw, step.stride, step.pad)
        return h, w

    def _check(self, x: np.ndarray) -> None:
        where = f"DenseVGG({self.arch}, trained at {self.input_size}x{self.input_size})"
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{where}: input must be a numpy.ndarray, got {type(x).__name__}")
        if x.dtype != self.dtype:
            raise TypeError(f"{where}: input dtype must be {self.dtype}, got {x.dtype}")
        if x.ndim != 4 or x.shape[0] < 1 or x.shape[1] != self.in_channels:
            raise ValueError(f"{where}: input must be (N, {self.in_channels}, H, W), got {x.shape}")
        if min(x.shape[2:]) < self.input_size:
            raise ValueError(f"{where}: input must be at least {self.input_size}x{self.input_size}, "
                             f"got {x.shape[2]}x{x.shape[3]}")

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        """Class score map ``(N, num_classes, H', W')`` for images ``(N, C, H, W)``, ``H, W >= input_size``.

        At the training size the map is ``(N, K, 1, 1)`` and equals the VGG's logits.
        """
        if train:
            raise ValueError("DenseVGG is for evaluation only; train the VGG and convert it again")
        self._check(x)
        for step in self.steps:
            if step.kind == "conv":
                x, _ = ops.conv2d_forward(x, step.w, step.b, step.stride, step.pad, name=step.name,
                                          groups=step.groups)
            elif step.kind == "relu":
                x, _ = ops.relu_forward(x, name=step.name)
            elif step.kind == "lrn":
                x, _ = ops.lrn_forward(x, step.size, *step.lrn, name=step.name)
            else:
                x, _ = ops.maxpool_forward(x, step.size, step.stride, name=step.name)
        return x

    score_map = forward

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Spatially averaged class scores ``(N, K)``: the paper's fixed-size vector per image."""
        return self.forward(x).mean(axis=(2, 3))

    def predict_proba(self, x: np.ndarray, flip: bool = False) -> np.ndarray:
        """Softmax of the averaged scores ``(N, K)``; ``flip`` averages it with the mirrored image's (§3.2)."""
        p = ops.softmax(self.scores(x))
        if flip:
            p = (p + ops.softmax(self.scores(np.ascontiguousarray(x[..., ::-1])))) / 2
        return p

    def averaged(self) -> "_Averaged":
        """An adapter whose ``forward(x)`` returns :meth:`scores`, for :mod:`minivgg.training.evaluate`."""
        return _Averaged(self)


class _Averaged:
    def __init__(self, dense: DenseVGG) -> None:
        self.dense = dense

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        if train:
            raise ValueError("DenseVGG is for evaluation only")
        return self.dense.scores(x)


def to_dense(model: VGG) -> DenseVGG:
    """Convert a trained VGG for dense evaluation (see the module docstring)."""
    return DenseVGG(model)
