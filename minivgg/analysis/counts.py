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

import csv
import io
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from ..configs import ARCHS, ConfigItem, LayerSpec, layer_specs, resolve_config

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

    The first thirteen fields are the issue's JSON schema; the rest are extras.
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

def summarize(arch: str | Sequence[ConfigItem] = "vgg16", input_size: int = 224, batch: int = 1,
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
        Side of the square input; at least ``2**pools`` (32 for the paper's configs).
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
    specs = layer_specs(items, input_size=input_size, in_channels=in_channels, num_classes=num_classes,
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
        new = s.kind in ("conv", "relu", "pool", "dense") or (s.kind == "dropout" and s.p > 0)
        new_output.append(new)
        owner.append(i if new else (owner[i - 1] if i else -1))
    kept_arrays: set[int] = set()
    for i, s in enumerate(specs):
        if s.kind in ("conv", "dense"):           # caches its input
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
        macs = bias_adds = relu_cmp = pool_cmp = workspace = index_bytes = 0
        conv_algo = ""
        if s.kind == "conv":
            macs = out_vals * s.kernel * s.kernel * s.in_channels
            bias_adds = out_vals
            x_shape, w_shape = (batch, *s.in_shape), s.weight_shape
            conv_algo = choose_algorithm(x_shape, w_shape, s.stride, s.pad, algo)
            workspace = conv_workspace(x_shape, w_shape, s.stride, s.pad, isz, conv_algo)
        elif s.kind == "dense":
            macs = batch * s.in_channels * s.out_channels
            bias_adds = out_vals
        elif s.kind == "relu":
            relu_cmp = out_vals
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

        kept = (out_vals * isz if i in kept_arrays else 0) + index_bytes
        kept_index += index_bytes
        # inference: dropout is the identity, flatten a view; the image is the caller's
        working = in_vals * isz if i > 0 and owner[i - 1] != -1 else 0
        working += (out_vals * isz if s.kind in ("conv", "relu", "pool", "dense") else 0) + workspace
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


# ---------------------------------------------------------------------------
# receptive fields
# ---------------------------------------------------------------------------

def centre_unit(stats: LayerStats) -> int:
    """Index (per axis) of the centre output unit: ``(side - 1) // 2``; 0 for dense layers."""
    side = stats.output_shape[1] if len(stats.output_shape) == 3 else 1
    return (side - 1) // 2


def field_bounds(stats: LayerStats, input_size: int, index: int | None = None) -> tuple[int, int, int, int]:
    """Input rows (or columns) seen by output unit ``index`` (default: the centre unit).

    Returns ``(lo, hi, lo_clipped, hi_clipped)``, inclusive: ``lo = index*j - P``,
    ``hi = lo + r - 1``, then clipped to ``[0, input_size - 1]``. The field fits in
    the image when ``lo == lo_clipped and hi == hi_clipped``.
    """
    u = centre_unit(stats) if index is None else index
    lo = u * stats.effective_stride - stats.effective_padding
    hi = lo + stats.receptive_field - 1
    return lo, hi, max(lo, 0), min(hi, input_size - 1)


def receptive_fields(arch: str | Sequence[ConfigItem] = "vgg16", input_size: int = 224, *,
                     kinds: Sequence[str] = ("conv", "pool", "dense"), **kwargs) -> list[dict]:
    """Receptive field, effective stride and padding of each layer, with the centre unit's span.

    ``kwargs`` go to :func:`summarize` (``width``, ``in_channels`` ...). Each row:
    ``name, type, output_shape, receptive_field, effective_stride, effective_padding,
    centre, lo, hi`` (centre unit's field, unclipped), ``visible`` (its extent inside
    the image) and ``fits`` (whole field inside the image).
    """
    summary = summarize(arch, input_size=input_size, **kwargs)
    rows = []
    for s in summary.layers:
        if s.type not in kinds:
            continue
        lo, hi, clo, chi = field_bounds(s, summary.input_size)
        rows.append({"name": s.name, "type": s.type, "output_shape": s.output_shape,
                     "receptive_field": s.receptive_field, "effective_stride": s.effective_stride,
                     "effective_padding": s.effective_padding, "centre": centre_unit(s), "lo": lo, "hi": hi,
                     "visible": chi - clo + 1, "fits": (lo, hi) == (clo, chi)})
    return rows


def format_receptive_fields(rows: Sequence[dict]) -> str:
    """Table of :func:`receptive_fields` rows."""
    lines = [f"{'layer':<9} {'output':>12} {'field r':>8} {'stride j':>9} {'pad P':>6}  centre unit sees rows"]
    for r in rows:
        span = f"{r['lo']}..{r['hi']}" + ("" if r["fits"] else f"  (wider than the image: {r['visible']} visible)")
        lines.append(f"{r['name']:<9} {_shape(r['output_shape']):>12} {r['receptive_field']:>8} "
                     f"{r['effective_stride']:>9} {r['effective_padding']:>6}  {span}")
    lines.append("r_l = r_{l-1} + (k_l - 1) j_{l-1}, j_l = j_{l-1} s_l, P_l = P_{l-1} + p_l j_{l-1} "
                 "(Araujo et al., Distill 2019); fc layers as convs over the last map (VGG Sec. 3.2).")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# text, CSV
# ---------------------------------------------------------------------------

def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


def format_bytes(nbytes: int) -> str:
    """``"61,915,648 B = 59.05 MiB = 61.92 MB"`` -- both units, never mixed."""
    return f"{nbytes:,} B = {nbytes / MIB:,.2f} MiB = {nbytes / MB:,.2f} MB"


def format_table(summary: Summary) -> str:
    """The per-layer table (torchinfo-like columns plus memory and receptive field) and the totals."""
    head = (f"{'Layer':<9} {'Type':<7} {'Output shape':>13} {'Params':>12} {'Activations':>12} "
            f"{'Act MiB':>8} {'Kept MiB':>8} {'MACs':>15} {'RF':>4} {'j':>3} {'P':>3}")
    rule = "-" * len(head)
    lines = [f"{summary.arch} ({'custom' if summary.arch == 'custom' else _config_letter(summary.arch)}), "
             f"input {summary.in_channels}x{summary.input_size}x{summary.input_size}, batch {summary.batch}, "
             f"{summary.dtype}" + (f", width x{summary.width:g}" if summary.width != 1.0 else ""), rule, head, rule]
    for s in summary.layers:
        lines.append(f"{s.name:<9} {s.type:<7} {_shape(s.output_shape):>13} {s.params:>12,} {s.activations:>12,} "
                     f"{s.activation_bytes / MIB:>8.2f} {s.kept_bytes / MIB:>8.2f} {s.macs:>15,} "
                     f"{s.receptive_field:>4} {s.effective_stride:>3} {s.effective_padding:>3}")
    t = summary.totals
    lines += [rule,
              f"Parameters        {t.params:,} ({t.weights:,} weights + {t.biases:,} biases)",
              f"Parameter memory  {format_bytes(t.param_bytes)}",
              f"MACs              {t.macs:,}  (FLOPs = 2 x MACs = {t.flops:,})",
              f"Not in FLOPs      bias adds {t.bias_adds:,}, ReLU compares {t.relu_compares:,}, "
              f"pool compares {t.pool_compares:,}",
              f"Input batch       {format_bytes(t.input_bytes)}",
              "Forward activations (every layer output its own array; flatten a view)",
              f"                  {t.activations:,} values = {format_bytes(t.forward_bytes)}",
              "Kept for backward (this implementation, input excluded)",
              f"                  {format_bytes(t.backward_bytes)}",
              f"                  of which uint8 arg-max / bool masks: {t.kept_index_bytes:,} B",
              f"Inference peak    {format_bytes(t.inference_peak_bytes)}",
              f"                  (params + input + working set of {t.inference_peak_layer})",
              "Act = activations of the whole batch; Kept = bytes a train-mode forward keeps, by allocating layer; "
              "RF/j/P = receptive field, effective stride, effective padding in input pixels."]
    return "\n".join(lines)


_CSV_FIELDS = ("name", "type", "output_shape", "weights", "biases", "params", "activations", "activation_bytes",
               "macs", "flops", "receptive_field", "effective_stride", "effective_padding", "bias_adds",
               "relu_compares", "pool_compares", "kept_bytes", "workspace_bytes", "working_bytes")


def to_csv(summary: Summary) -> str:
    """One CSV row per layer (header first); ``output_shape`` written as ``64x224x224``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(_CSV_FIELDS)
    for s in summary.layers:
        d = s.to_dict()
        d["output_shape"] = _shape(s.output_shape)
        writer.writerow([d[k] for k in _CSV_FIELDS])
    return buf.getvalue()


def _config_letter(label: str) -> str:
    return ARCHS.get(label, label)


# ---------------------------------------------------------------------------
# the lecture's comparisons
# ---------------------------------------------------------------------------

def compare(archs: Sequence = ("vgg11", "vgg13", "vgg16", "vgg19"), input_size: int = 224, batch: int = 1,
            dtype="float32", width: float = 1.0, **kwargs) -> list[dict]:
    """All configurations side by side: parameters, MACs and memory (one dict per arch).

    ``archs`` items are names or custom config lists; ``kwargs`` go to :func:`summarize`.
    Keys: ``arch, config, conv_layers, weight_layers, params, param_bytes, macs, flops,
    forward_bytes, backward_bytes, inference_peak_bytes, fc6_param_share``.
    """
    if isinstance(archs, str):
        archs = [archs]
    rows = []
    for a in archs:
        s = summarize(a, input_size=input_size, batch=batch, dtype=dtype, width=width, **kwargs)
        t = s.totals
        convs = sum(1 for x in s.layers if x.type == "conv")
        fc6 = next((x.params for x in s.layers if x.name == "fc6"), 0)
        rows.append({"arch": s.arch, "config": _config_letter(s.arch), "conv_layers": convs,
                     "weight_layers": convs + sum(1 for x in s.layers if x.type == "dense"),
                     "params": t.params, "param_bytes": t.param_bytes, "macs": t.macs, "flops": t.flops,
                     "forward_bytes": t.forward_bytes, "backward_bytes": t.backward_bytes,
                     "inference_peak_bytes": t.inference_peak_bytes, "fc6_param_share": fc6 / t.params,
                     "input_size": s.input_size, "batch": s.batch, "dtype": s.dtype})
    return rows


def format_compare(rows: Sequence[dict]) -> str:
    """Table of :func:`compare` rows; the last two columns are ratios to the first row."""
    if not rows:
        return "(no architectures)"
    r0 = rows[0]
    lines = [f"input {r0['input_size']}x{r0['input_size']}, batch {r0['batch']}, {r0['dtype']}",
             f"{'arch':<8} {'cfg':<3} {'weight layers':>13} {'params':>13} {'GMACs':>7} {'fwd MiB':>8} "
             f"{'kept MiB':>8} {'peak MiB':>8} {'fc6 %':>6} {'params x':>8} {'MACs x':>7}"]
    for r in rows:
        lines.append(f"{r['arch']:<8} {r['config']:<3} {r['weight_layers']:>13} {r['params']:>13,} "
                     f"{r['macs'] / 1e9:>7.2f} {r['forward_bytes'] / MIB:>8.1f} {r['backward_bytes'] / MIB:>8.1f} "
                     f"{r['inference_peak_bytes'] / MIB:>8.1f} {100 * r['fc6_param_share']:>6.1f} "
                     f"{r['params'] / r0['params']:>8.3f} {r['macs'] / r0['macs']:>7.3f}")
    lines.append("GMACs = 10^9 multiply-adds (FLOPs = 2 x MACs); fwd = all layer outputs; kept = what training "
                 "keeps for backward; peak = inference peak incl. params; MiB = 2^20 B.")
    return "\n".join(lines)


def stack_vs_large_kernel(channels: int, depth: int = 3, height: int = 56, width: int | None = None) -> dict:
    """``depth`` stacked 3x3 convs vs one ``(2*depth+1)x(2*depth+1)`` conv, C channels in and out.

    Both see the same field; the stack has ``depth`` ReLUs instead of one and
    ``depth*9 C^2`` weights instead of ``(2 depth+1)^2 C^2`` (27C^2 vs 49C^2 for
    depth 3). MACs are for one ``height x width`` map (stride 1, "same" padding).

    Returns ``{"stack": {...}, "single": {...}, "ratio": {...}}``; each side has
    ``layers, kernel, weights, biases, params, receptive_field, nonlinearities, macs``.
    """
    for label, v in (("channels", channels), ("depth", depth), ("height", height)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"stack_vs_large_kernel: {label} must be an int >= 1, got {v!r}")
    width = height if width is None else width
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"stack_vs_large_kernel: width must be an int >= 1, got {width!r}")

    def side(kernels: list[int]) -> dict:
        r, j = 1, 1
        for k in kernels:            # stride 1 everywhere: j stays 1
            r += (k - 1) * j
        w = sum(k * k * channels * channels for k in kernels)
        return {"layers": len(kernels), "kernel": kernels[0], "weights": w, "biases": channels * len(kernels),
                "params": w + channels * len(kernels), "receptive_field": r, "nonlinearities": len(kernels),
                "macs": w * height * width}

    stack, single = side([3] * depth), side([2 * depth + 1])
    ratio = {k: stack[k] / single[k] for k in ("weights", "params", "macs", "nonlinearities")}
    return {"channels": channels, "depth": depth, "height": height, "width": width,
            "stack": stack, "single": single, "ratio": ratio}


def format_stack_vs_large_kernel(cmp: dict) -> str:
    """Text for :func:`stack_vs_large_kernel`."""
    c, d = cmp["channels"], cmp["depth"]
    k = cmp["single"]["kernel"]
    rows = [("layers", "layers"), ("receptive field", "receptive_field"), ("non-linearities", "nonlinearities"),
            ("weights", "weights"), ("params (with biases)", "params"), ("MACs", "macs")]
    lines = [f"{d} x (3x3 conv) vs 1 x ({k}x{k} conv), C = {c} channels, map {cmp['height']}x{cmp['width']}",
             f"{'':<22} {f'{d} x 3x3':>16} {f'1 x {k}x{k}':>16} {'ratio':>7}"]
    for label, key in rows:
        a, b = cmp["stack"][key], cmp["single"][key]
        lines.append(f"{label:<22} {a:>16,} {b:>16,} {a / b:>7.3f}")
    lines.append(f"weights: {d}*(9C^2) = {9 * d}C^2 vs {k}^2 C^2 = {k * k}C^2 "
                 f"-> {100 * (1 - cmp['ratio']['weights']):.0f}% fewer, same field, {d}x the non-linearities")
    return "\n".join(lines)


def _group(name: str) -> str:
    # conv3_2 / relu3_2 / pool3 -> block3; flatten, fc*, relu6/7, drop* -> classifier
    for prefix in ("conv", "relu", "pool"):
        rest = name[len(prefix):]
        if name.startswith(prefix) and rest[:1].isdigit() and ("_" in rest or prefix == "pool"):
            return f"block{rest.split('_')[0]}"
    return "classifier"


def memory_vs_params(summary: Summary) -> dict:
    """Where memory sits (early convs) vs where parameters sit (fc6), as shares of the totals.

    Returns ``{"groups": [{group, activation_bytes, memory_share, kept_bytes, kept_share,
    params, param_share}], "layers": [{name, activation_bytes, memory_share, params,
    param_share}], "top_params": (name, share), "top_memory": (name, share)}``. Memory is
    ``forward_bytes`` (views excluded); ``kept`` is ``backward_bytes``.
    """
    t = summary.totals
    groups: dict[str, dict] = {}
    layers = []
    for s in summary.layers:
        mem = 0 if s.view else s.activation_bytes
        g = groups.setdefault(_group(s.name), {"group": _group(s.name), "activation_bytes": 0, "kept_bytes": 0,
                                               "params": 0})
        g["activation_bytes"] += mem
        g["kept_bytes"] += s.kept_bytes
        g["params"] += s.params
        layers.append({"name": s.name, "activation_bytes": mem, "memory_share": mem / t.forward_bytes,
                       "params": s.params, "param_share": s.params / t.params})
    for g in groups.values():
        g["memory_share"] = g["activation_bytes"] / t.forward_bytes
        g["kept_share"] = g["kept_bytes"] / t.backward_bytes if t.backward_bytes else 0.0
        g["param_share"] = g["params"] / t.params
    top_p = max(layers, key=lambda x: x["params"])
    top_m = max(layers, key=lambda x: x["activation_bytes"])
    return {"groups": list(groups.values()), "layers": layers,
            "top_params": (top_p["name"], top_p["param_share"]),
            "top_memory": (top_m["name"], top_m["memory_share"])}


def format_memory_vs_params(summary: Summary) -> str:
    """Per-block shares of activation memory and of parameters."""
    mp = memory_vs_params(summary)
    lines = [f"{summary.arch} at {summary.input_size}x{summary.input_size}: where memory and parameters sit",
             f"{'group':<11} {'act MiB':>9} {'memory %':>9} {'kept %':>7} {'params':>13} {'params %':>9}"]
    for g in mp["groups"]:
        lines.append(f"{g['group']:<11} {g['activation_bytes'] / MIB:>9.2f} {100 * g['memory_share']:>9.1f} "
                     f"{100 * g['kept_share']:>7.1f} {g['params']:>13,} {100 * g['param_share']:>9.1f}")
    (pn, ps), (mn, ms) = mp["top_params"], mp["top_memory"]
    lines.append(f"most parameters: {pn} ({100 * ps:.1f}% of all); largest activation: {mn} ({100 * ms:.1f}%)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# "TOTAL memory: 24M * 4 bytes ~= 93MB / image" -- where do such figures come from?
# ---------------------------------------------------------------------------

#: The cs231n notes' VGG-16 lines ("VGGNet in detail"): label, the minivgg layer
#: it describes ("input" = the image) and the memory figure as printed.
LECTURE_LINES: tuple = (
    ("INPUT [224x224x3]", "input", "150K", 150e3),
    ("CONV3-64 [224x224x64]", "conv1_1", "3.2M", 3.2e6), ("CONV3-64 [224x224x64]", "conv1_2", "3.2M", 3.2e6),
    ("POOL2 [112x112x64]", "pool1", "800K", 800e3),
    ("CONV3-128 [112x112x128]", "conv2_1", "1.6M", 1.6e6), ("CONV3-128 [112x112x128]", "conv2_2", "1.6M", 1.6e6),
    ("POOL2 [56x56x128]", "pool2", "400K", 400e3),
    ("CONV3-256 [56x56x256]", "conv3_1", "800K", 800e3), ("CONV3-256 [56x56x256]", "conv3_2", "800K", 800e3),
    ("CONV3-256 [56x56x256]", "conv3_3", "800K", 800e3),
    ("POOL2 [28x28x256]", "pool3", "200K", 200e3),
    ("CONV3-512 [28x28x512]", "conv4_1", "400K", 400e3), ("CONV3-512 [28x28x512]", "conv4_2", "400K", 400e3),
    ("CONV3-512 [28x28x512]", "conv4_3", "400K", 400e3),
    ("POOL2 [14x14x512]", "pool4", "100K", 100e3),
    ("CONV3-512 [14x14x512]", "conv5_1", "100K", 100e3), ("CONV3-512 [14x14x512]", "conv5_2", "100K", 100e3),
    ("CONV3-512 [14x14x512]", "conv5_3", "100K", 100e3),
    ("POOL2 [7x7x512]", "pool5", "25K", 25e3),
    ("FC [1x1x4096]", "fc6", "4096", 4096), ("FC [1x1x4096]", "fc7", "4096", 4096),
    ("FC [1x1x1000]", "fc8", "1000", 1000),
)
#: The notes' total: "24M * 4 bytes ~= 93MB / image (only forward! ~*2 for bwd)".
LECTURE_CLAIM_VALUES = 24_000_000
LECTURE_CLAIM_MB = 93


def lecture_memory_check(dtype="float32") -> dict:
    """Reproduce the lecture's VGG-16 memory lines and test its "24M * 4 bytes ~= 93MB" total.

    Returns ``{"lines": [...], "conventions": [...], "claim": {...}, "summary": Summary}``.
    Each line: ``label, layer, stated, stated_values, exact_values``. Each
    convention: ``label, values`` (None where mixed dtypes), ``bytes, mib, mb``.
    The per-line figures are exact (rounded in print); they sum to 15,237,608
    values, about 61 MB -- no convention we know of gives 24M values, and 24M x 4 B
    is 96 MB or 91.6 MiB, not 93 (only the mixed unit 1000*1024 B gives 93.75).
    """
    s = summarize("vgg16", input_size=224, batch=1, dtype=dtype)
    isz, t = s.itemsize, s.totals
    in_vals = t.input_bytes // isz
    lines = []
    for label, layer, stated, stated_vals in LECTURE_LINES:
        exact = in_vals if layer == "input" else s[layer].activations
        lines.append({"label": label, "layer": layer, "stated": stated, "stated_values": int(stated_vals),
                      "exact_values": exact})
    lecture_sum = sum(x["exact_values"] for x in lines)
    relu_outputs = sum(x.activations for x in s.layers if x.type == "relu")

    def conv(label: str, values: int | None, nbytes: int | None = None) -> dict:
        nbytes = values * isz if nbytes is None else nbytes
        return {"label": label, "values": values, "bytes": nbytes, "mib": nbytes / MIB, "mb": nbytes / MB}

    conventions = [
        conv("lecture lines summed exactly (input + conv/pool/fc outputs; ReLU in place)", lecture_sum),
        conv("lecture lines as printed (rounded: 150K, 3.2M, ...)",
             int(sum(x["stated_values"] for x in lines))),
        conv("lecture lines summed exactly, without the input image", lecture_sum - in_vals),
        conv("ReLU outputs as separate arrays (+ input)", lecture_sum + relu_outputs),
        conv("minivgg forward: every layer output its own array (+ input)", t.activations + in_vals),
        conv("minivgg training keeps for backward (+ input; uint8/bool masks incl.)", None,
             t.backward_bytes + t.input_bytes),
        conv("lecture lines x2 ('~*2 for bwd')", 2 * lecture_sum),
    ]
    claim_bytes = LECTURE_CLAIM_VALUES * isz
    claim = {"values": LECTURE_CLAIM_VALUES, "bytes": claim_bytes, "mb": claim_bytes / MB, "mib": claim_bytes / MIB,
             "mixed_kib_mb": claim_bytes / 1024 / 1000,
             "values_for_93_mb": LECTURE_CLAIM_MB * MB // isz, "values_for_93_mib": LECTURE_CLAIM_MB * MIB // isz,
             "lines_sum": lecture_sum, "ratio_claim_to_lines": LECTURE_CLAIM_VALUES / lecture_sum,
             "kept_ratio_to_lines": (t.backward_bytes + t.input_bytes) / (lecture_sum * isz)}
    return {"lines": lines, "conventions": conventions, "claim": claim, "summary": s}


def format_lecture_memory_check(check: dict | None = None) -> str:
    """Text for :func:`lecture_memory_check`: each line, each convention, and the verdict."""
    check = lecture_memory_check() if check is None else check
    out = ["cs231n VGG-16 memory lines vs minivgg (per image, 224x224)",
           f"{'lecture line':<26} {'printed':>8} {'exact':>11}"]
    for x in check["lines"]:
        out.append(f"{x['label']:<26} {x['stated']:>8} {x['exact_values']:>11,}")
    c = check["claim"]
    out += ["", f"{'convention':<76} {'values':>11} {'MB':>8} {'MiB':>8}"]
    for v in check["conventions"]:
        vals = f"{v['values']:,}" if v["values"] is not None else "-"
        out.append(f"{v['label']:<76} {vals:>11} {v['mb']:>8.2f} {v['mib']:>8.2f}")
    out += ["",
            f"The notes claim {c['values']:,} values ('24M') = {c['bytes']:,} B = {c['mb']:.2f} MB = "
            f"{c['mib']:.2f} MiB, and call it '~= 93MB'.",
            f"* Their own lines sum to {c['lines_sum']:,} values; 24M is {c['ratio_claim_to_lines']:.2f}x that, "
            "and no counting convention above reproduces it.",
            f"* 93 MB would be {c['values_for_93_mb']:,} values, 93 MiB {c['values_for_93_mib']:,}; 24M x 4 B reads "
            f"as 93 only in the mixed unit 1000*1024 B ({c['mixed_kib_mb']:.2f}).",
            f"* '~*2 for bwd': what minivgg's training forward keeps is {c['kept_ratio_to_lines']:.2f}x the lines, "
            "not 2x -- a conv's output dies once its ReLU has copied it, the ReLU output doubles as the "
            "next conv's input, and a pool keeps 1-byte arg-maxes."]
    return "\n".join(out)
