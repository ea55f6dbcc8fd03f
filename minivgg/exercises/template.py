'''The student's starting files: ``layers.py`` with nine stubs in cs231n assignment 2's signatures, and a README
(the notebook is :mod:`.notebook`).

The text here is what :func:`minivgg.exercises.workspace.new_workspace` writes;
no solution is shipped: minivgg's own ops (:mod:`minivgg.ops`) are the reference
the checker compares against.
'''

from __future__ import annotations

LAYERS_PY = '''"""Your layers: cs231n assignment 2 style forward/backward pairs (NCHW, any float dtype).

Implement each function, then run `minivgg exercise check .` in this directory.
Every forward returns (out, cache); every backward takes (dout, cache) and returns
the gradient of the loss with respect to each input, with that input's shape.
Gradients are checked in float64 against centered differences, so use only NumPy.
"""

import numpy as np


def affine_forward(x, w, b):
    """Fully-connected layer: out = x.reshape(N, D) @ w + b.

    x: (N, d_1, ..., d_k) with D = d_1 * ... * d_k; w: (D, M); b: (M,).
    Returns out: (N, M) and cache = (x, w, b).
    Cost: N * D * M multiply-adds.
    """
    raise NotImplementedError("affine_forward")


def affine_backward(dout, cache):
    """Backward of affine_forward.

    dout: (N, M). With X = x.reshape(N, D):
    dx = (dout @ w.T).reshape(x.shape), dw = X.T @ dout (D, M), db = sum of dout over the batch (M,).
    Returns (dx, dw, db).
    """
    raise NotImplementedError("affine_backward")


def relu_forward(x):
    """ReLU: out = max(0, x), any shape. Returns (out, cache = x)."""
    raise NotImplementedError("relu_forward")


def relu_backward(dout, cache):
    """Backward of relu_forward: dx = dout * (x > 0). The derivative at exactly 0 is taken as 0."""
    raise NotImplementedError("relu_backward")


def conv_forward_naive(x, w, b, conv_param):
    """Naive convolution (cross-correlation, as every CNN library computes it).

    x: (N, C, H, W); w: (F, C, HH, WW); b: (F,);
    conv_param = {"stride": s, "pad": p}: zero padding of p pixels on every side.
    out[n, f, i, j] = b[f] + sum_{c, k, l} xpad[n, c, i*s + k, j*s + l] * w[f, c, k, l]
    out: (N, F, H', W') with H' = 1 + (H + 2p - HH) // s and W' = 1 + (W + 2p - WW) // s
    (integer division: use //, not /).
    Returns (out, cache = (x, w, b, conv_param)). Cost: N*F*H'*W'*C*HH*WW multiply-adds.
    """
    raise NotImplementedError("conv_forward_naive")


def conv_backward_naive(dout, cache):
    """Backward of conv_forward_naive. dout: (N, F, H', W').

    db[f] = sum of dout[:, f]; dw[f, c, k, l] = sum_{n,i,j} dout[n,f,i,j] * xpad[n, c, i*s+k, j*s+l];
    dxpad[n, c, i*s+k, j*s+l] += dout[n,f,i,j] * w[f,c,k,l], then cut the padding off: dx is (N, C, H, W).
    Returns (dx, dw, db).
    """
    raise NotImplementedError("conv_backward_naive")


def max_pool_forward_naive(x, pool_param):
    """Max pooling. x: (N, C, H, W);
    pool_param = {"pool_height": PH, "pool_width": PW, "stride": s}.
    out[n, c, i, j] = max of x[n, c, i*s : i*s + PH, j*s : j*s + PW]
    out: (N, C, H', W') with H' = 1 + (H - PH) // s, W' = 1 + (W - PW) // s.
    Returns (out, cache = (x, pool_param)).
    """
    raise NotImplementedError("max_pool_forward_naive")


def max_pool_backward_naive(dout, cache):
    """Backward of max pooling: each dout[n, c, i, j] goes to the position of its window's maximum
    only (not spread over the window: that is average pooling). Overlapping windows add (+=).
    Returns dx: (N, C, H, W).
    """
    raise NotImplementedError("max_pool_backward_naive")


def softmax_loss(x, y):
    """Softmax cross-entropy, averaged over the batch.

    x: (N, C) scores; y: (N,) integer labels in [0, C).
    p = exp(x - max(x)) / sum(exp(x - max(x))) per row (subtract the max for stability);
    loss = -(1/N) sum_n log p[n, y[n]];  dx = (p - onehot(y)) / N.
    Returns (loss, dx).
    """
    raise NotImplementedError("softmax_loss")
'''

README_MD = '''# Your minivgg exercise workspace

Implement the nine functions in `layers.py` (cs231n assignment 2 signatures), then:

    minivgg exercise check .              # every exercise: PASS / FAIL / NOT IMPLEMENTED
    minivgg exercise check . --only conv  # one exercise: affine, relu, conv, max_pool, softmax
    minivgg exercise check . --json       # the same as JSON
    minivgg exercise check . --train      # once all pass: train a tiny VGG made of your layers

Or open `walkthrough.ipynb` in Jupyter (from this folder): one section per
exercise, each running the check and plotting the gradient check on every
coordinate, then a short training run and the filters your layers learned.

Each exercise is checked three ways: (1) your forward against minivgg's reference
on fixed and random inputs; (2) your backward against float64 centered differences
of your forward, on inputs away from ReLU kinks and max-pool ties, with a diagnosis
(a constant factor such as a missing 1/N, a sign, a transpose); (3) odd shapes:
batch 1, non-square images, stride 2. A failure names the smallest failing case.
The command exits 0 only when everything passes. Code that runs too long (an
endless loop at import or in a function) is reported, not waited for (`--timeout S`).

`--train` runs 2000 Adam steps (`--steps N`; `--seconds S` caps the time, `--seed`
changes the run); with a correct solution it reaches about 90-95% validation
accuracy on minivgg's shapes data. Your loop-based layers are slow: expect a few minutes.
'''
