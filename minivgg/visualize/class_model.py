"""Class-model images (Simonyan, Vedaldi & Zisserman 2013, §2): gradient ascent on the input.

.. math:: I^* = \\arg\\max_I \\; S_c(I) - \\lambda \\|I\\|_2^2

started near the zero image (the paper starts at zero, the training mean
after mean subtraction; we add N(0, 0.01^2) noise because a net with zero biases,
as freshly initialised ones are, is exactly flat at zero: every ReLU is shut), with plain gradient steps
``I <- I + lr * (dS_c/dI - 2 lambda I)``. Each step costs one forward and one backward.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..vgg import VGG
from .gradients import input_gradient, scores


class ClassModel(NamedTuple):
    """Result of :func:`class_model`."""

    image: np.ndarray       # (1, C, S, S) the final image
    scores: np.ndarray      # (steps + 1,) S_c at every iterate, the start included
    objective: np.ndarray   # (steps + 1,) S_c - lambda * ||I||^2 at every iterate


def class_model(model: VGG, class_index: int, steps: int = 100, lr: float = 1.0, l2: float = 1e-3,
                start: np.ndarray | None = None, seed: int = 0) -> ClassModel:
    """Gradient ascent on ``S_c(I) - l2 * ||I||^2``; returns the image and its score history.

    ``start`` is ``(1, C, S, S)`` (default: N(0, 0.01^2) noise from ``seed``). For a small enough ``lr`` the
    objective rises at every step (the test checks it); too large a step overshoots.
    """
    if steps < 0 or not np.isfinite(lr) or lr <= 0 or not np.isfinite(l2) or l2 < 0:
        raise ValueError(f"class_model: need steps >= 0, lr > 0, l2 >= 0; got steps={steps}, lr={lr}, l2={l2}")
    shape = (1, model.in_channels, model.input_size, model.input_size)
    img = (0.01 * np.random.default_rng(seed).standard_normal(shape)).astype(model.dtype) if start is None else np.array(start, dtype=model.dtype)
    if img.shape != shape:
        raise ValueError(f"class_model: start must have shape {shape}, got {img.shape}")
    hist_s, hist_o = [], []
    for step in range(steps + 1):
        s = float(scores(model, img, class_index)[0])
        hist_s.append(s)
        hist_o.append(s - l2 * float((img.astype(np.float64) ** 2).sum()))
        if step == steps:
            break
        g = input_gradient(model, img, class_index)
        img = img + model.dtype.type(lr) * (g - model.dtype.type(2 * l2) * img)
    return ClassModel(img, np.array(hist_s), np.array(hist_o))
