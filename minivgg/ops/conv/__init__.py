"""2-D convolution, forward and backward (cs231n lecture 9; VGG's only conv is 3x3/s1/p1).

Layout is NCHW. For input ``x`` (N, C, H, W), weights ``w`` (F, C, KH, KW),
bias ``b`` (F,), stride ``s`` and zero padding ``p``:

.. math::

    out[n, f, y, x] = b[f] + \\sum_{c, i, j} w[f, c, i, j] \\;
                      x_{pad}[n, c, s y + i, s x + j]

    H_{out} = \\lfloor (H + 2p - KH) / s \\rfloor + 1, \\quad
    W_{out} = \\lfloor (W + 2p - KW) / s \\rfloor + 1

(integer division: the cs231n assignment's ``/`` gives a float here and is a
bug). Backward, with upstream gradient ``dout`` (N, F, H_out, W_out):

.. math::

    db[f] = \\sum_{n,y,x} dout[n,f,y,x], \\quad
    dw[f,c,i,j] = \\sum_{n,y,x} dout[n,f,y,x]\\, x_{pad}[n,c,sy+i,sx+j],

    dx_{pad}[n,c,sy+i,sx+j] \\mathrel{+}= \\sum_f w[f,c,i,j]\\, dout[n,f,y,x].

Cost: ``N * F * H_out * W_out * C * KH * KW`` multiply-adds (MACs) forward;
backward is twice that (one product for ``dw``, one for ``dx``).

Four algorithms with the same signature (``algo=``):

* ``"naive"`` -- the loops above, written to be read (:mod:`minivgg.ops.conv.naive`). Use it on small shapes
  and as the reference the fast paths are tested against.
* ``"im2col"`` -- unroll the windows into a column matrix (Numba kernel in
  :mod:`minivgg.kernels.im2col`) and do one BLAS GEMM per image
  (:mod:`minivgg.ops.conv.im2col`):
  ``out[n] = w.reshape(F, C*KH*KW) @ cols[n]``. Backward recomputes the columns
  (the cache keeps only ``x``) and uses ``dw += dout[n] @ cols[n].T`` and
  ``col2im(w.T @ dout[n])``. Columns are built for at most
  :data:`~minivgg.ops.conv.im2col.WORKSPACE_BYTES` worth of images at a time, so training at batch N
  does not allocate ``N*C*9*H*W`` values at once. The im2col/col2im loops
  run on all :func:`minivgg.kernels._parallel.get_num_threads` cores (channel slices).
* ``"winograd"`` -- F(2x2, 3x3) for 3x3/stride 1/pad 1 only (Lavin & Gray
  2015; :mod:`minivgg.ops.conv.winograd`): 2.25x fewer multiplications, forward
  and both gradients.
* ``"winograd4"`` -- F(4x4, 3x3), same case (:mod:`minivgg.ops.conv.winograd4`): 4x fewer
  multiplications, 4-11x the fp32 rounding error of direct convolution. Not chosen by ``"auto"``.

``algo="auto"`` (the default) takes Winograd where it is faster and im2col
elsewhere (:func:`choose_algorithm`).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from .._validate import check_float_array, check_positive_int, check_same_dtype
from . import winograd as _winograd
from . import winograd4 as _winograd4
from .im2col import im2col_backward, im2col_forward, images_per_chunk, is_pointwise
from .naive import conv_output_size, naive_backward, naive_forward

class Conv2dCache(NamedTuple):
    """What :func:`conv2d_backward` needs: the input (not the columns) and the settings."""

    x: np.ndarray  # (N, C, H, W), the very array the previous layer returned
    w: np.ndarray  # (F, C, KH, KW), a reference to the parameter, not a copy
    stride: int
    pad: int
    algo: str
    groups: int = 1  # channel groups (AlexNet's two GPUs: 2); w is (F, C/groups, KH, KW)


def _check_conv_args(x, w, b, stride, pad, name, groups=1):
    check_float_array(x, name, "input x", ndim=4)
    check_float_array(w, name, "weight w", ndim=4)
    check_float_array(b, name, "bias b", ndim=1)
    check_same_dtype(name, x, **{"weight w": w, "bias b": b})
    stride = check_positive_int(stride, name, "stride")
    pad = check_positive_int(pad, name, "pad", minimum=0)
    groups = check_positive_int(groups, name, "groups")
    n, c, h, wd = x.shape
    f, wc, kh, kw = w.shape
    if c % groups or f % groups:
        raise ValueError(f"{name}: groups={groups} must divide both the input channels ({c}) and the "
                         f"filters ({f}) of weight w {w.shape}")
    if wc * groups != c:
        raise ValueError(
            f"{name}: input has {c} channels but weight w {w.shape} with groups={groups} expects {wc * groups} "
            "(weights are (F, C/groups, KH, KW), input is NCHW)"
        )
    if b.shape != (f,):
        raise ValueError(f"{name}: bias b must have shape ({f},) to match weight {w.shape}, got {b.shape}")
    if kh > h + 2 * pad or kw > wd + 2 * pad:
        raise ValueError(
            f"{name}: kernel {kh}x{kw} is larger than the padded input "
            f"{h + 2 * pad}x{wd + 2 * pad} (input {h}x{wd}, pad {pad})"
        )
    return stride, pad, groups


ForwardImpl = Callable[[np.ndarray, np.ndarray, np.ndarray, int, int], np.ndarray]
BackwardImpl = Callable[[np.ndarray, np.ndarray, np.ndarray, int, int], tuple]

#: name -> (forward(x, w, b, stride, pad), backward(dout, x, w, stride, pad) -> (dx, dw)).
ALGORITHMS: dict[str, tuple[ForwardImpl, BackwardImpl]] = {
    "naive": (naive_forward, naive_backward),
    "im2col": (im2col_forward, im2col_backward),
    "winograd": (_winograd.winograd_forward, _winograd.winograd_backward),
    "winograd4": (_winograd4.winograd4_forward, _winograd4.winograd4_backward),
}

#: algo -> ``supports(w_shape, stride, pad)`` for the algorithms limited to some convolutions.
SUPPORTS: dict[str, Callable[[tuple, int, int], bool]] = {"winograd": _winograd.supports,
                                                          "winograd4": _winograd4.supports}

#: algo -> ``transform(w)``, for the algorithms that transform their filters before use.
#: :func:`conv2d_forward` accepts the result as ``filters=`` so a caller that
#: knows ``w`` has not changed (the inference cache of :class:`minivgg.layers.Conv2d`)
#: skips the transform: for VGG-16 that is 16/9 of the conv weights (105 MB)
#: written on every forward.
FILTER_TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "winograd": lambda w: _winograd.transform_filters(w),  # looked up at call time (tests replace it)
    "winograd4": lambda w: _winograd4.transform_filters(w),
}

#: ``"auto"`` picks Winograd only when its 16 GEMMs have at least this many
#: input channels (their inner dimension): conv1_1's C = 3 makes 16 GEMMs with
#: K = 3, which run at a few % of the BLAS peak.
AUTO_WINOGRAD_MIN_CHANNELS = 16

#: ... and at least this many 2x2 tiles in the batch (``N * ceil(H/2) * ceil(W/2)``):
#: the filter transform costs ``16 * F * C`` writes per call whatever the image
#: size, so on VGG's 14x14 block-5 layers at batch 1 (49 tiles) it eats the
#: saving and im2col wins. Measured with ``benchmarks/bench_vgg16.py``.
AUTO_WINOGRAD_MIN_TILES = 128


def choose_algorithm(x_shape: tuple, w_shape: tuple, stride: int, pad: int, algo: str) -> str:
    """Resolve ``"auto"`` to a concrete algorithm name; validate any other name.

    ``"auto"`` is a fixed rule, not a timing run, so the choice (and with it
    the workspace) is the same in every process: Winograd F(2x2,3x3) for a
    3x3/stride-1/pad-1 conv with at least :data:`AUTO_WINOGRAD_MIN_CHANNELS`
    input channels and :data:`AUTO_WINOGRAD_MIN_TILES` tiles, otherwise
    im2col. The thresholds come from the per-layer race in the benchmark
    (``minivgg bench`` prints which algorithm wins each VGG-16 layer).
    """
    if algo == "auto":
        n, c, h, w = x_shape
        if (_winograd.supports(w_shape, stride, pad) and c >= AUTO_WINOGRAD_MIN_CHANNELS
                and n * _winograd.tiles(h, w)[0] * _winograd.tiles(h, w)[1] >= AUTO_WINOGRAD_MIN_TILES):
            return "winograd"
        return "im2col"
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown convolution algorithm {algo!r}; expected 'auto' or one of {sorted(ALGORITHMS)}")
    return algo


def workspace_bytes(x_shape: tuple, w_shape: tuple, stride: int, pad: int, itemsize: int,
                    algo: str = "auto") -> int:
    """Scratch memory one forward call allocates besides its output (not counting ``x``, ``w``, ``b``).

    * im2col: ``chunk * C*KH*KW * H_out*W_out`` values of columns,
      ``chunk = min(N, max(1, WORKSPACE_BYTES // one image))``, plus the
      chunk's padded input ``chunk * C*(H+2p)*(W+2p)`` (if ``p > 0``) and, for
      ``chunk > 1``, the product ``chunk * F*H_out*W_out`` before it is
      transposed into ``out`` (0 for a 1x1/s1/p0 conv);
    * winograd: ``U`` (16*F*C values) plus the blocks of ``V`` and ``M`` in
      flight (:func:`minivgg.ops.conv.winograd.forward_workspace_bytes`);
    * naive: the padded input copy.
    """
    algo = choose_algorithm(x_shape, w_shape, stride, pad, algo)
    n, c, h, wd = x_shape
    f, _, kh, kw = w_shape
    ho, wo = conv_output_size(h, kh, stride, pad), conv_output_size(wd, kw, stride, pad)
    if algo == "winograd":
        return _winograd.forward_workspace_bytes(x_shape, w_shape, itemsize)
    if algo == "winograd4":
        return _winograd4.forward_workspace_bytes(x_shape, w_shape, itemsize)
    if algo == "naive":
        return n * c * (h + 2 * pad) * (wd + 2 * pad) * itemsize
    if is_pointwise(kh, kw, stride, pad):
        return 0
    per_image = c * kh * kw * ho * wo * itemsize
    chunk = min(n, images_per_chunk(per_image))
    padded = chunk * c * (h + 2 * pad) * (wd + 2 * pad) * itemsize if pad else 0
    product = chunk * f * ho * wo * itemsize if chunk > 1 else 0
    return chunk * per_image + padded + product


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 1,
                   *, algo: str = "auto", name: str = "conv2d",
                   filters: np.ndarray | None = None, groups: int = 1) -> tuple[np.ndarray, Conv2dCache]:
    """Convolve ``x`` with ``w`` and add ``b``; return ``(out, cache)``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), float32 or float64
    w : ndarray, shape (F, C, KH, KW), same dtype as ``x``
    b : ndarray, shape (F,), same dtype as ``x``
    stride, pad : int
        Stride >= 1 and zero padding >= 0 on each side.
    algo : {"auto", "naive", "im2col", "winograd", "winograd4"}
        Keys of :data:`ALGORITHMS`; ``"auto"`` picks Winograd for 3x3/s1/p1
        convs where it is faster, else im2col (:func:`choose_algorithm`).
    name : str
        Layer name used in error messages.
    filters : ndarray, optional
        ``FILTER_TRANSFORMS[algo](w)`` computed earlier for this very ``w``
        and the algorithm ``algo`` resolves to; used instead of transforming
        ``w`` again. The caller vouches that ``w`` has not changed since.
        Only with ``groups=1``.
    groups : int
        Channel groups (AlexNet's conv2/4/5 ran on two GPUs: ``groups=2``).
        Group ``g`` convolves input channels ``[g*C/G, (g+1)*C/G)`` with
        filters ``[g*F/G, (g+1)*F/G)``; ``w`` is then (F, C/groups, KH, KW).
        Both C and F must be divisible by ``groups``. Every algorithm runs
        it, one call per group on the channel slices (``algo`` is resolved on
        one group's shapes).

    Returns
    -------
    out : ndarray, shape (N, F, H_out, W_out), dtype of ``x``
        ``H_out = (H + 2*pad - KH) // stride + 1`` (likewise ``W_out``).
    cache : Conv2dCache
        Keeps ``x`` itself (no copy) for :func:`conv2d_backward`.

    Cost: ``N*F*H_out*W_out*C*KH*KW / groups`` MACs.
    """
    stride, pad, groups = _check_conv_args(x, w, b, stride, pad, name, groups)
    if groups != 1:
        return _grouped_forward(x, w, b, stride, pad, algo, name, filters, groups)
    algo = choose_algorithm(x.shape, w.shape, stride, pad, algo)
    x = np.ascontiguousarray(x)
    w_c = np.ascontiguousarray(w)
    if filters is not None and algo not in FILTER_TRANSFORMS:
        raise ValueError(f"{name}: filters= is only for {sorted(FILTER_TRANSFORMS)}, but algo is {algo!r}")
    if algo in FILTER_TRANSFORMS:
        filters = FILTER_TRANSFORMS[algo](w_c) if filters is None else filters
        out = ALGORITHMS[algo][0](x, w_c, b, stride, pad, filters)
    else:
        out = ALGORITHMS[algo][0](x, w_c, b, stride, pad)
    return out, Conv2dCache(x, w, stride, pad, algo)


def conv2d_backward(dout: np.ndarray, cache: Conv2dCache, *,
                    need_dx: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of a convolution: ``dx, dw, db = conv2d_backward(dout, cache)``.

    Parameters
    ----------
    dout : ndarray, shape (N, F, H_out, W_out)
        Upstream gradient, same dtype as the forward input.
    cache : Conv2dCache
        From :func:`conv2d_forward`.
    need_dx : bool
        ``False`` skips the input gradient (``dx`` is returned as ``None``):
        a network's first layer has no layer below to pass it to, and for
        conv1_1 (3 input channels) ``dx`` costs as much as ``dw``.

    Returns
    -------
    dx : (N, C, H, W) or None, dw : (F, C/groups, KH, KW), db : (F,)

    Cost: ``2 * N*F*H_out*W_out*C*KH*KW / groups`` MACs (``dw`` and ``dx``).
    """
    x, w, stride, pad, algo, groups = cache
    name = "conv2d_backward"
    check_float_array(dout, name, "upstream gradient dout", ndim=4)
    check_same_dtype(name, x, dout=dout)
    n, _, h, wd = x.shape
    f, _, kh, kw = w.shape
    expected = (n, f, conv_output_size(h, kh, stride, pad), conv_output_size(wd, kw, stride, pad))
    if dout.shape != expected:
        raise ValueError(f"{name}: dout must have the forward output's shape {expected}, got {dout.shape}")
    if groups != 1:
        dx, dw = _grouped_backward(dout, x, w, stride, pad, algo, groups, need_dx)
        return dx, dw, dout.sum(axis=(0, 2, 3))
    backward = ALGORITHMS[algo][1]
    if need_dx or algo == "naive":  # the naive loops are the reference: always the whole computation
        dx, dw = backward(dout, x, np.ascontiguousarray(w), stride, pad)
    else:
        dx, dw = backward(dout, x, np.ascontiguousarray(w), stride, pad, need_dx=False)
    if not need_dx:
        dx = None
    db = dout.sum(axis=(0, 2, 3))
    return dx, dw, db


def _grouped_forward(x, w, b, stride, pad, algo, name, filters, groups):
    """:func:`conv2d_forward` for ``groups > 1``: one ungrouped convolution per channel slice.

    ``out[:, g-th F/G slice] = conv(x[:, g-th C/G slice], w[g-th F/G slice])``;
    the slices are copied contiguous (the kernels want C-order input).
    """
    if filters is not None:
        raise ValueError(f"{name}: filters= is only for groups=1, got groups={groups}")
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    fg = f // groups
    algo = choose_algorithm((n, cg, h, wd), (fg, cg, kh, kw), stride, pad, algo)
    ho, wo = conv_output_size(h, kh, stride, pad), conv_output_size(wd, kw, stride, pad)
    out = np.empty((n, f, ho, wo), dtype=x.dtype)
    for g in range(groups):
        xg = np.ascontiguousarray(x[:, g * cg:(g + 1) * cg])        # (N, C/G, H, W)
        wg = np.ascontiguousarray(w[g * fg:(g + 1) * fg])           # (F/G, C/G, KH, KW)
        bg = np.ascontiguousarray(b[g * fg:(g + 1) * fg])
        if algo in FILTER_TRANSFORMS:
            out[:, g * fg:(g + 1) * fg] = ALGORITHMS[algo][0](xg, wg, bg, stride, pad, FILTER_TRANSFORMS[algo](wg))
        else:
            out[:, g * fg:(g + 1) * fg] = ALGORITHMS[algo][0](xg, wg, bg, stride, pad)
    return out, Conv2dCache(x, w, stride, pad, algo, groups)


def _grouped_backward(dout, x, w, stride, pad, algo, groups, need_dx):
    """``(dx, dw)`` for ``groups > 1``: each group's backward on its slices, written into its slice."""
    f, cg, _, _ = w.shape
    fg = f // groups
    backward = ALGORITHMS[algo][1]
    dx = np.empty_like(x) if need_dx else None
    dw = np.empty_like(w)
    for g in range(groups):
        xg = np.ascontiguousarray(x[:, g * cg:(g + 1) * cg])        # (N, C/G, H, W)
        wg = np.ascontiguousarray(w[g * fg:(g + 1) * fg])           # (F/G, C/G, KH, KW)
        dg = np.ascontiguousarray(dout[:, g * fg:(g + 1) * fg])     # (N, F/G, H_out, W_out)
        if need_dx or algo == "naive":
            dxg, dw[g * fg:(g + 1) * fg] = backward(dg, xg, wg, stride, pad)
        else:
            dxg, dw[g * fg:(g + 1) * fg] = backward(dg, xg, wg, stride, pad, need_dx=False)
        if need_dx:
            dx[:, g * cg:(g + 1) * cg] = dxg
    return dx, dw
