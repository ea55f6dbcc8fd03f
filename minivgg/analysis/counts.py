"""VGG on paper: parameters, MACs, memory and receptive fields from a config alone.

cs231n lecture 9 ("CNN architectures") argues with numbers: 138M parameters,
~15.5 GMACs, ~93 MB of activations per image, three 3x3 convs see 7x7, fc6
holds most of the weights while the early convs hold most of the memory. This
module computes every one of them from :func:`minivgg.configs.layer_specs` --
no model is built and no activation is allocated (only integers are
multiplied). :mod:`minivgg.analysis.verify` proves the figures on a real model.

Counting rules (per layer, ``N`` = batch)
-----------------------------------------
* ``weights``/``biases``/``params``: sizes of ``w`` and ``b``.
* ``activations``: values of the layer's output for the whole batch;
  ``activation_bytes`` = that times the dtype's itemsize.
* ``macs`` (multiply-accumulates): conv ``N*H_out*W_out*C_out*k^2*C_in``,
  dense ``N*D_in*D_out``, zero elsewhere. ``flops = 2*macs``. The cheap ops are
  labelled separately and are *not* in ``flops``: ``bias_adds`` (one per conv/dense
  output), ``relu_compares`` (one per ReLU element) and ``pool_compares``
  (``k^2 - 1`` per max-pool output).
* Receptive field ``r``, effective stride (jump) ``j`` and effective padding
  ``P`` (Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional
  Neural Networks", Distill 2019), run forward from the input
  (``r = j = 1``, ``P = 0``) through every conv/pool with kernel ``k``, stride
  ``s``, padding ``p``:

  .. math::

      r_l = r_{l-1} + (k_l - 1)\\, j_{l-1}, \\quad j_l = j_{l-1} s_l, \\quad
      P_l = P_{l-1} + p_l\\, j_{l-1}

  ReLU, dropout and flatten leave them unchanged. Output unit ``u`` (per axis)
  sees input pixels ``u*j - P`` ... ``u*j - P + r - 1`` (before clipping to the
  image). **Dense layers** are reported as the paper's fully-convolutional
  view (Simonyan & Zisserman, Sec. 3.2): fc6 is a ``H5 x W5`` conv over pool5's
  map (``7x7`` at 224), fc7/fc8 are ``1x1`` convs. So fc6 gets
  ``r = r_pool5 + (H5 - 1) j_pool5`` (404 at 224: larger than the image, i.e.
  every fc unit sees the whole image) and ``j`` stays 32.

Memory rules of THIS implementation (:mod:`minivgg.ops`, :mod:`minivgg.layers`)
-------------------------------------------------------------------------------
``forward_bytes``: every layer output as its own array -- conv, ReLU, pool,
dense and (training) dropout outputs; ``flatten`` is a view and counts nothing;
the input batch is not included (``input_bytes``). It is the framework-free
"sum of all activations" figure.

``backward_bytes`` -- what a training-mode forward (``forward(x, train=True)``)
leaves alive for backward, each distinct array counted once, the input batch
excluded (the caller owns it; conv1_1 only references it):

1. conv keeps its INPUT (``Conv2dCache.x``) -- the previous ReLU's or pool's
   output, the same array object; its own output is transient (ReLU copies it).
2. ReLU keeps its OUTPUT (``ReluCache.out``), which is the next layer's input.
3. max-pool keeps a ``uint8`` arg-max of its output's shape (1 byte/element);
   its output array is kept because the next conv (or fc6, through flatten's
   view) keeps it as input.
4. flatten is a reshape view: no memory.
5. dense keeps its input (``DenseCache.x``); fc6's is the flatten view of
   pool5's output (already counted); dense outputs are transient.
6. dropout (training, ``p > 0``) keeps a ``bool`` mask (1 byte/element) and
   returns a new array, kept by the next dense; with ``p == 0`` it returns its
   input itself and keeps nothing.
7. fc8's output (the logits) is returned, not kept.

Each kept array is attributed to the layer that allocated it
(``LayerStats.kept_bytes``); their sum is ``backward_bytes``.

``inference_peak_bytes`` (``train=False`` keeps no caches; each activation is
freed once the next exists) = ``param_bytes + input_bytes + max_l working_l``
with ``working_l`` (``LayerStats.working_bytes``) = the layer's input (unless
it is the network input, already counted) + its new output + its workspace:

* conv: the scratch of the algorithm ``algo="auto"`` picks for that layer, as
  :func:`minivgg.ops.conv.workspace_bytes` states it (the ops' own arithmetic,
  so im2col vs Winograd is modelled by the code that chooses): im2col's column
  buffer ``chunk * C_in*k^2*H_out*W_out`` values with
  ``chunk = min(N, max(1, WORKSPACE_BYTES // one image))``, none for a
  1x1/s1/p0 conv; Winograd's ``U`` and one block of ``V``/``M``;
* max-pool: its ``uint8`` arg-max (allocated in inference too);
* dropout at inference and flatten: no new array.

Units: ``*_bytes`` fields are bytes; text output writes MiB (2**20 bytes) and
MB (10**6 bytes) side by side and never mixes them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from ..configs import ConfigItem, LayerSpec, layer_specs, resolve_config

MIB = 2**20  #: bytes in a mebibyte (MiB)
MB = 10**6  #: bytes in a megabyte (MB)

_FLOAT_DTYPES = ("float32", "float64")


# ---------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------

def resolve_dtype(dtype) -> np.dtype:
    """``"float32"``, ``"float64"``, ``np.float32``... -> ``np.dtype``; anything else: ValueError."""
    if dtype is None:
        raise ValueError("analysis: dtype must be float32 or float64, got None")
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        raise ValueError(f"analysis: unknown dtype {dtype!r}; expected one of {_FLOAT_DTYPES}") from None
    if dt.name not in _FLOAT_DTYPES:
        raise ValueError(f"analysis: dtype must be one of {_FLOAT_DTYPES}, got {dt.name}")
    return dt


def _check_batch(batch) -> int:
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"analysis: batch must be an int >= 1, got {batch!r}")
    return int(batch)


def _prod(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


# ---------------------------------------------------------------------------
# the data
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerStats:
    """Analytic figures of one layer. Counts are for the whole batch unless noted.

    The first thirteen fields are the ``minivgg summary --format json`` schema; the rest are extras.
    """

    name: str                    # conv1_1 ... fc8, as configs.layer_specs names it
    type: str                    # conv | relu | pool | flatten | dense | dropout
    output_shape: tuple          # per image: (C, H, W) or (D,)
    weights: int                 # size of w
    biases: int                  # size of b
    params: int                  # weights + biases
    activations: int             # output values, whole batch
    activation_bytes: int        # activations * itemsize
    macs: int                    # multiply-accumulates (conv/dense only), whole batch
    flops: int                   # 2 * macs
    receptive_field: int         # r, input pixels per axis seen by one output unit
    effective_stride: int        # j, input pixels between neighbouring output units
    effective_padding: int       # P, where unit 0's field starts: at pixel -P
    input_shape: tuple = ()      # per image
    kernel: int = 0
    stride: int = 0
    pad: int = 0
    bias_adds: int = 0           # one add per conv/dense output value
    relu_compares: int = 0       # one max(x, 0) per element
    pool_compares: int = 0       # k^2 - 1 per pool output value
    view: bool = False           # output is the input array or a view (flatten, p=0 dropout)
    kept_bytes: int = 0          # bytes this layer allocates that a training forward keeps
    workspace_bytes: int = 0     # scratch during an inference forward (conv algorithm, pool arg-max)
    algo: str = ""               # conv algorithm "auto" resolves to (im2col, winograd)
    working_bytes: int = 0       # input (unless the image) + output + workspace, inference

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        d = asdict(self)
        d["output_shape"] = list(self.output_shape)
        d["input_shape"] = list(self.input_shape)
        return d


@dataclass(frozen=True)
class Totals:
    """Whole-network figures; every ``*_bytes`` is in bytes."""

    params: int
    macs: int
    flops: int
    activations: int             # values of every non-view layer output, whole batch
    param_bytes: int
    forward_bytes: int           # activations * itemsize (see module docstring)
    backward_bytes: int          # kept by a training forward for backward, input excluded
    weights: int = 0
    biases: int = 0
    bias_adds: int = 0
    relu_compares: int = 0
    pool_compares: int = 0
    input_bytes: int = 0         # the input batch itself
    kept_float_bytes: int = 0    # part of backward_bytes held in float activations
    kept_index_bytes: int = 0    # part held in uint8 arg-max / bool dropout masks
    inference_peak_bytes: int = 0   # params + input + the largest layer working set
    inference_peak_layer: str = ""

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Summary:
    """Per-layer and total figures for one architecture, input size, batch and dtype."""

    arch: str
    config: list
    input_size: int
    batch: int
    dtype: str
    layers: list
    totals: Totals
    width: float = 1.0
    in_channels: int = 3
    num_classes: int = 1000
    algo: str = "auto"

    def __getitem__(self, name: str) -> LayerStats:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r}; layers are {[s.name for s in self.layers]}")

    @property
    def itemsize(self) -> int:
        """Bytes per activation value."""
        return np.dtype(self.dtype).itemsize

    def to_dict(self) -> dict:
        """The ``minivgg summary --format json`` object: ``arch, input_size, batch, dtype, layers, totals``."""
        return {
            "arch": self.arch,
            "input_size": self.input_size,
            "batch": self.batch,
            "dtype": self.dtype,
            "layers": [s.to_dict() for s in self.layers],
            "totals": self.totals.to_dict(),
            "config": [list(i) if isinstance(i, tuple) else i for i in self.config],
            "width": self.width,
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "algo": self.algo,
        }


# ---------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------

def summarize(arch: str | Sequence[ConfigItem] = "vgg16", input_size: int | None = None, batch: int = 1,
              dtype="float32", width: float = 1.0, *, in_channels: int = 3, num_classes: int = 1000,
              fc_width: int = 4096, dropout: float = 0.5,
              algo: str = "auto") -> Summary:
    """Analytic figures of a VGG: per layer and in total, no activations allocated.

    Parameters
    ----------
    arch : str or list
        ``"vgg11" | "vgg13" | "vgg16c" | "vgg16" | "vgg19"``, ``"A"``-``"E"`` or a custom
        config list (see :mod:`minivgg.configs`).
    input_size : int
        Side of the square input; at least ``2**pools`` (32 for the paper's configs);
        ``None``: the architecture's (224; the original AlexNet's 227).
    batch : int >= 1
    dtype : {"float32", "float64"} or a NumPy float dtype
    width : float
        Conv channel multiplier.
    in_channels, num_classes, fc_width, dropout
        As :func:`minivgg.configs.layer_specs`.
    algo : str
        Convolution algorithm, as ``VGG(algo=...)``; decides the conv workspace.

    Returns
    -------
    Summary

    Raises
    ------
    ValueError
        Unknown architecture, input too small for the pools, batch < 1, unknown dtype.

    Cost: O(layers) integer arithmetic.
    """
    label, items = resolve_config(arch)
    dt = resolve_dtype(dtype)
    batch = _check_batch(batch)
    # a name (not its list) so the arch's own naming (AlexNet's conv1..) and default input (227) apply
    specs = layer_specs(arch.strip() if isinstance(arch, str) else items, input_size=input_size, in_channels=in_channels, num_classes=num_classes,
                        width=width, fc_width=fc_width, dropout=dropout)
    return summarize_specs(specs, arch=label, config=items, batch=batch, dtype=dt, width=width,
                           algo=algo)


def summarize_specs(specs: Sequence[LayerSpec], *, arch: str = "custom", config: list | None = None,
                    batch: int = 1, dtype="float32", width: float = 1.0,
                    algo: str = "auto") -> Summary:
    """:func:`summarize` for an explicit list of :class:`~minivgg.configs.LayerSpec` (e.g. ``model.specs``)."""
    # the conv algorithms' own arithmetic (pure integer functions; imported here,
    # not at module level, so `import minivgg.analysis.counts` stays free of Numba)
    from ..ops.conv import ALGORITHMS, choose_algorithm, workspace_bytes as conv_workspace

    dt = resolve_dtype(dtype)
    batch = _check_batch(batch)
    if algo != "auto" and algo not in ALGORITHMS:
        raise ValueError(f"analysis: unknown convolution algorithm {algo!r}; expected 'auto' or one of "
                         f"{sorted(ALGORITHMS)}")
    if not specs:
        raise ValueError("analysis: the layer spec list is empty")
    isz = dt.itemsize
    first_in = specs[0].in_shape
    input_size = int(first_in[-1])
    input_bytes = batch * _prod(first_in) * isz

    # Which array is each layer's output? ``owner[i]`` = index of the layer that
    # allocated it (-1: the input batch). Views and pass-throughs inherit.
    owner: list[int] = []
    new_output: list[bool] = []
    for i, s in enumerate(specs):
        new = s.kind in ("conv", "relu", "lrn", "pool", "dense") or (s.kind == "dropout" and s.p > 0)
        new_output.append(new)
        owner.append(i if new else (owner[i - 1] if i else -1))
    kept_arrays: set[int] = set()
    for i, s in enumerate(specs):
        if s.kind in ("conv", "dense", "lrn"):    # caches its input (LRN also its scale, below)
            kept_arrays.add(owner[i - 1] if i else -1)
        elif s.kind == "relu":                    # caches its output
            kept_arrays.add(i)
    kept_arrays.discard(-1)                       # the caller's input batch

    r, j, p = 1, 1, 0
    spatial = input_size
    kept_index = 0
    layers: list[LayerStats] = []
    for i, s in enumerate(specs):
        out_vals = batch * _prod(s.out_shape)
        in_vals = batch * _prod(s.in_shape)
        weights = _prod(s.weight_shape) if s.weight_shape else 0
        biases = _prod(s.bias_shape) if s.bias_shape else 0
        macs = batch * s.macs  # LayerSpec holds the formula: conv H_out*W_out*F*K*K*C, dense D_in*D_out
        bias_adds = relu_cmp = pool_cmp = workspace = index_bytes = scale_bytes = 0
        conv_algo = ""
        if s.kind == "conv":
            bias_adds = out_vals
            # a grouped conv runs one ungrouped conv per group: the workspace of one group's shapes
            x_shape, w_shape = (batch, s.in_shape[0] // s.groups, *s.in_shape[1:]), s.weight_shape
            if s.groups != 1:
                w_shape = (w_shape[0] // s.groups, *w_shape[1:])
            conv_algo = choose_algorithm(x_shape, w_shape, s.stride, s.pad, algo)
            workspace = conv_workspace(x_shape, w_shape, s.stride, s.pad, isz, conv_algo)
        elif s.kind == "dense":
            bias_adds = out_vals
        elif s.kind == "relu":
            relu_cmp = out_vals
        elif s.kind == "lrn":
            scale_bytes = out_vals * isz         # its cache's denominator base s, one float per element
        elif s.kind == "pool":
            pool_cmp = out_vals * (s.kernel * s.kernel - 1)
            workspace = index_bytes = out_vals   # uint8 arg-max, 1 byte each
        elif s.kind == "dropout" and s.p > 0:
            index_bytes = out_vals               # bool mask, training only

        # receptive field recurrences (fc layers as the paper's convolutional view)
        if s.kind in ("conv", "pool"):
            p += s.pad * j
            r += (s.kernel - 1) * j
            j *= s.stride
            spatial = s.out_shape[1]
        elif s.kind == "dense":
            r += (spatial - 1) * j               # fc6: spatial = pool5's side; later: 1
            spatial = 1

        kept = (out_vals * isz if i in kept_arrays else 0) + index_bytes + scale_bytes
        kept_index += index_bytes
        # inference: dropout is the identity, flatten a view; the image is the caller's
        working = in_vals * isz if i > 0 and owner[i - 1] != -1 else 0
        working += (out_vals * isz if s.kind in ("conv", "relu", "lrn", "pool", "dense") else 0) + workspace
        layers.append(LayerStats(
            name=s.name, type=s.kind, output_shape=tuple(s.out_shape), weights=weights, biases=biases,
            params=weights + biases, activations=out_vals, activation_bytes=out_vals * isz, macs=macs,
            flops=2 * macs, receptive_field=r, effective_stride=j, effective_padding=p,
            input_shape=tuple(s.in_shape), kernel=s.kernel, stride=s.stride, pad=s.pad,
            bias_adds=bias_adds, relu_compares=relu_cmp, pool_compares=pool_cmp,
            view=not new_output[i], kept_bytes=kept, workspace_bytes=workspace, algo=conv_algo,
            working_bytes=working))

    params = sum(s.params for s in layers)
    activations = sum(s.activations for s in layers if not s.view)
    backward = sum(s.kept_bytes for s in layers)
    peak_layer = max(layers, key=lambda s: s.working_bytes)
    totals = Totals(
        params=params, macs=sum(s.macs for s in layers), flops=sum(s.flops for s in layers),
        activations=activations, param_bytes=params * isz, forward_bytes=activations * isz,
        backward_bytes=backward, weights=sum(s.weights for s in layers), biases=sum(s.biases for s in layers),
        bias_adds=sum(s.bias_adds for s in layers), relu_compares=sum(s.relu_compares for s in layers),
        pool_compares=sum(s.pool_compares for s in layers), input_bytes=input_bytes,
        kept_float_bytes=backward - kept_index, kept_index_bytes=kept_index,
        inference_peak_bytes=params * isz + input_bytes + peak_layer.working_bytes,
        inference_peak_layer=peak_layer.name)
    return Summary(arch=arch, config=list(config) if config is not None else [], input_size=input_size,
                   batch=batch, dtype=dt.name, layers=layers, totals=totals, width=width,
                   in_channels=int(first_in[0]), num_classes=int(specs[-1].out_shape[0]),
                   algo=algo)
