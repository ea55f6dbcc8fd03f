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

Three algorithms with the same signature (``algo=``):

* ``"naive"`` -- the loops above, written to be read. Use it on small shapes
  and as the reference the fast paths are tested against.
* ``"im2col"`` -- unroll the windows into a column matrix (Numba kernel in
  :mod:`minivgg.kernels.im2col`) and do one BLAS GEMM per image:
  ``out[n] = w.reshape(F, C*KH*KW) @ cols[n]``. Backward recomputes the columns
  (the cache keeps only ``x``) and uses ``dw += dout[n] @ cols[n].T`` and
  ``col2im(w.T @ dout[n])``. Columns are built for at most
  :data:`WORKSPACE_BYTES` worth of images at a time, so training at batch N
  does not allocate ``N*C*9*H*W`` values at once. The im2col/col2im loops
  run on all :func:`minivgg.kernels._parallel.get_num_threads` cores (channel slices).
* ``"winograd"`` -- F(2x2, 3x3) for 3x3/stride 1/pad 1 only (Lavin & Gray
  2015; :mod:`minivgg.ops.conv.winograd`): 2.25x fewer multiplications, forward
  and both gradients.

``algo="auto"`` (the default) takes Winograd where it is faster and im2col
elsewhere (:func:`choose_algorithm`).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from ...kernels import _parallel as threads
from ...kernels.im2col import col2im_channels, im2col_channels
from . import winograd as _winograd
from .._validate import check_float_array, check_positive_int, check_same_dtype

#: Upper bound on the im2col column buffer, in bytes. One image's columns are
#: always allowed even if larger (VGG-16 conv1_2 at 224x224: 576 x 50176 floats
#: = 110 MiB in float32).
WORKSPACE_BYTES = 256 * 2**20


class Conv2dCache(NamedTuple):
    """What :func:`conv2d_backward` needs: the input (not the columns) and the settings."""

    x: np.ndarray  # (N, C, H, W), the very array the previous layer returned
    w: np.ndarray  # (F, C, KH, KW), a reference to the parameter, not a copy
    stride: int
    pad: int
    algo: str


def conv_output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """``(size + 2*pad - kernel) // stride + 1`` -- floor division, as PyTorch."""
    return (size + 2 * pad - kernel) // stride + 1


def _check_conv_args(x, w, b, stride, pad, name):
    check_float_array(x, name, "input x", ndim=4)
    check_float_array(w, name, "weight w", ndim=4)
    check_float_array(b, name, "bias b", ndim=1)
    check_same_dtype(name, x, **{"weight w": w, "bias b": b})
    stride = check_positive_int(stride, name, "stride")
    pad = check_positive_int(pad, name, "pad", minimum=0)
    n, c, h, wd = x.shape
    f, wc, kh, kw = w.shape
    if wc != c:
        raise ValueError(
            f"{name}: input has {c} channels but weight w {w.shape} expects {wc} "
            "(weights are (F, C, KH, KW), input is NCHW)"
        )
    if b.shape != (f,):
        raise ValueError(f"{name}: bias b must have shape ({f},) to match weight {w.shape}, got {b.shape}")
    if kh > h + 2 * pad or kw > wd + 2 * pad:
        raise ValueError(
            f"{name}: kernel {kh}x{kw} is larger than the padded input "
            f"{h + 2 * pad}x{wd + 2 * pad} (input {h}x{wd}, pad {pad})"
        )
    return stride, pad


# ---------------------------------------------------------------------------
# naive reference: the formula, loop by loop
# ---------------------------------------------------------------------------

def _naive_forward(x, w, b, stride, pad):
    n_img, _, h, wd = x.shape
    f_out, _, kh, kw = w.shape
    ho, wo = conv_output_size(h, kh, stride, pad), conv_output_size(wd, kw, stride, pad)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))  # (N, C, H+2p, W+2p)
    out = np.empty((n_img, f_out, ho, wo), dtype=x.dtype)
    for n in range(n_img):
        for f in range(f_out):
            for y in range(ho):
                for xo in range(wo):
                    window = xp[n, :, y * stride:y * stride + kh, xo * stride:xo * stride + kw]  # (C, KH, KW)
                    out[n, f, y, xo] = np.sum(window * w[f]) + b[f]
    return out


def _naive_backward(dout, x, w, stride, pad):
    n_img, _, h, wd = x.shape
    f_out, _, kh, kw = w.shape
    _, _, ho, wo = dout.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for n in range(n_img):
        for f in range(f_out):
            for y in range(ho):
                for xo in range(wo):
                    ys, xs = y * stride, xo * stride
                    g = dout[n, f, y, xo]
                    dw[f] += g * xp[n, :, ys:ys + kh, xs:xs + kw]
                    dxp[n, :, ys:ys + kh, xs:xs + kw] += g * w[f]
    dx = dxp[:, :, pad:pad + h, pad:pad + wd]
    return np.ascontiguousarray(dx), dw


# ---------------------------------------------------------------------------
# im2col + GEMM
# ---------------------------------------------------------------------------

def _images_per_chunk(col_bytes_per_image: int) -> int:
    return max(1, WORKSPACE_BYTES // max(1, col_bytes_per_image))


#: A channel slice handed to another thread should move at least this many values.
_MIN_VALUES_PER_THREAD = 32768


def _im2col(x, kh, kw, stride, pad, ho, wo, cols):
    """:func:`~minivgg.kernels.im2col.im2col` with the channels split over the threads."""
    grain = max(1, _MIN_VALUES_PER_THREAD // max(1, x.shape[0] * kh * kw * ho * wo))
    threads.parallel_for(lambda lo, hi: im2col_channels(x, lo, hi, kh, kw, stride, pad, ho, wo, cols),
                         x.shape[1], grain)


def _col2im(cols, kh, kw, stride, pad, ho, wo, dx):
    """:func:`~minivgg.kernels.im2col.col2im` with the channels split over the threads."""
    grain = max(1, _MIN_VALUES_PER_THREAD // max(1, dx.shape[0] * kh * kw * ho * wo))
    threads.parallel_for(lambda lo, hi: col2im_channels(cols, lo, hi, kh, kw, stride, pad, ho, wo, dx),
                         dx.shape[1], grain)


def _is_pointwise(kh, kw, stride, pad) -> bool:
    # a 1x1/s1/p0 conv (config C) is already a GEMM on x viewed as (C, H*W)
    return kh == 1 and kw == 1 and stride == 1 and pad == 0


def _im2col_forward(x, w, b, stride, pad):
    n_img, c, h, wd = x.shape
    f_out, _, kh, kw = w.shape
    ho, wo = conv_output_size(h, kh, stride, pad), conv_output_size(wd, kw, stride, pad)
    k, hw = c * kh * kw, ho * wo
    w2 = w.reshape(f_out, k)                       # (F, C*KH*KW)
    out = np.empty((n_img, f_out, ho, wo), dtype=x.dtype)
    out3 = out.reshape(n_img, f_out, hw)           # (N, F, H_out*W_out), a view
    if _is_pointwise(kh, kw, stride, pad):
        np.matmul(w2, x.reshape(n_img, c, h * wd), out=out3)
    else:
        chunk = min(n_img, _images_per_chunk(k * hw * x.itemsize))
        cols = np.empty((chunk, k, hw), dtype=x.dtype)  # (chunk, C*KH*KW, H_out*W_out)
        for n0 in range(0, n_img, chunk):
            nb = min(chunk, n_img - n0)
            _im2col(x[n0:n0 + nb], kh, kw, stride, pad, ho, wo, cols[:nb])
            threads.parallel_matmul(w2, cols[:nb], out3[n0:n0 + nb])  # one GEMM per image
    out += b.reshape(1, f_out, 1, 1)
    return out


def _im2col_backward(dout, x, w, stride, pad):
    n_img, c, h, wd = x.shape
    f_out, _, kh, kw = w.shape
    _, _, ho, wo = dout.shape
    k, hw = c * kh * kw, ho * wo
    w2 = w.reshape(f_out, k)                                   # (F, K)
    dout3 = np.ascontiguousarray(dout).reshape(n_img, f_out, hw)  # (N, F, L)
    dw2 = np.zeros((f_out, k), dtype=x.dtype)                  # (F, K)
    if _is_pointwise(kh, kw, stride, pad):
        x3 = x.reshape(n_img, c, hw)                           # (N, C, L)
        for n in range(n_img):
            dw2 += dout3[n] @ x3[n].T
        dx = np.matmul(w2.T, dout3).reshape(x.shape)           # (N, C, H, W)
        return dx, dw2.reshape(w.shape)
    dx = np.zeros_like(x)
    dw_part = np.empty_like(dw2)
    chunk = min(n_img, _images_per_chunk(k * hw * x.itemsize))
    cols = np.empty((chunk, k, hw), dtype=x.dtype)
    for n0 in range(0, n_img, chunk):
        nb = min(chunk, n_img - n0)
        _im2col(x[n0:n0 + nb], kh, kw, stride, pad, ho, wo, cols[:nb])
        for i in range(nb):
            dw2 += threads.parallel_matmul(dout3[n0 + i], cols[i].T, dw_part)  # (F, L) @ (L, K)
        threads.parallel_matmul(w2.T, dout3[n0:n0 + nb], cols[:nb])  # dcols, reusing the buffer
        _col2im(cols[:nb], kh, kw, stride, pad, ho, wo, dx[n0:n0 + nb])
    return dx, dw2.reshape(w.shape)


ForwardImpl = Callable[[np.ndarray, np.ndarray, np.ndarray, int, int], np.ndarray]
BackwardImpl = Callable[[np.ndarray, np.ndarray, np.ndarray, int, int], tuple]

#: name -> (forward(x, w, b, stride, pad), backward(dout, x, w, stride, pad) -> (dx, dw)).
ALGORITHMS: dict[str, tuple[ForwardImpl, BackwardImpl]] = {
    "naive": (_naive_forward, _naive_backward),
    "im2col": (_im2col_forward, _im2col_backward),
    "winograd": (_winograd.winograd_forward, _winograd.winograd_backward),
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

    * im2col: ``chunk * C*KH*KW * H_out*W_out`` values of columns (0 for a
      1x1/s1/p0 conv), ``chunk = min(N, max(1, WORKSPACE_BYTES // one image))``;
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
    if algo == "naive":
        return n * c * (h + 2 * pad) * (wd + 2 * pad) * itemsize
    if _is_pointwise(kh, kw, stride, pad):
        return 0
    per_image = c * kh * kw * ho * wo * itemsize
    return min(n, _images_per_chunk(per_image)) * per_image


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 1,
                   *, algo: str = "auto", name: str = "conv2d") -> tuple[np.ndarray, Conv2dCache]:
    """Convolve ``x`` with ``w`` and add ``b``; return ``(out, cache)``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), float32 or float64
    w : ndarray, shape (F, C, KH, KW), same dtype as ``x``
    b : ndarray, shape (F,), same dtype as ``x``
    stride, pad : int
        Stride >= 1 and zero padding >= 0 on each side.
    algo : {"auto", "naive", "im2col", "winograd"}
        Keys of :data:`ALGORITHMS`; ``"auto"`` picks Winograd for 3x3/s1/p1
        convs where it is faster, else im2col (:func:`choose_algorithm`).
    name : str
        Layer name used in error messages.

    Returns
    -------
    out : ndarray, shape (N, F, H_out, W_out), dtype of ``x``
        ``H_out = (H + 2*pad - KH) // stride + 1`` (likewise ``W_out``).
    cache : Conv2dCache
        Keeps ``x`` itself (no copy) for :func:`conv2d_backward`.

    Cost: ``N*F*H_out*W_out*C*KH*KW`` MACs.
    """
    stride, pad = _check_conv_args(x, w, b, stride, pad, name)
    algo = choose_algorithm(x.shape, w.shape, stride, pad, algo)
    x = np.ascontiguousarray(x)
    out = ALGORITHMS[algo][0](x, np.ascontiguousarray(w), b, stride, pad)
    return out, Conv2dCache(x, w, stride, pad, algo)


def conv2d_backward(dout: np.ndarray, cache: Conv2dCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of a convolution: ``dx, dw, db = conv2d_backward(dout, cache)``.

    Parameters
    ----------
    dout : ndarray, shape (N, F, H_out, W_out)
        Upstream gradient, same dtype as the forward input.
    cache : Conv2dCache
        From :func:`conv2d_forward`.

    Returns
    -------
    dx : (N, C, H, W), dw : (F, C, KH, KW), db : (F,)

    Cost: ``2 * N*F*H_out*W_out*C*KH*KW`` MACs (``dw`` and ``dx``).
    """
    x, w, stride, pad, algo = cache
    name = "conv2d_backward"
    check_float_array(dout, name, "upstream gradient dout", ndim=4)
    check_same_dtype(name, x, dout=dout)
    n, _, h, wd = x.shape
    f, _, kh, kw = w.shape
    expected = (n, f, conv_output_size(h, kh, stride, pad), conv_output_size(wd, kw, stride, pad))
    if dout.shape != expected:
        raise ValueError(f"{name}: dout must have the forward output's shape {expected}, got {dout.shape}")
    dx, dw = ALGORITHMS[algo][1](dout, x, np.ascontiguousarray(w), stride, pad)
    db = dout.sum(axis=(0, 2, 3))
    return dx, dw, db
