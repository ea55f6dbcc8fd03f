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
    res = class_models(model, [class_index], steps=steps, lr=lr, l2=l2, start=start, seed=seed,
                       where="class_model")
    return ClassModel(res.images, res.scores[:, 0], res.objective[:, 0])


class ClassModels(NamedTuple):
    """Result of :func:`class_models`: one ascent per class, run side by side."""

    classes: np.ndarray     # (K,) the class of each image
    images: np.ndarray      # (K, C, S, S) the final images
    scores: np.ndarray      # (steps + 1, K) S_{c_k} of image k at every iterate
    objective: np.ndarray   # (steps + 1, K) S_{c_k} - lambda * ||I_k||^2


def class_models(model: VGG, classes=None, steps: int = 100, lr: float = 1.0, l2: float = 1e-3,
                 start: np.ndarray | None = None, seed: int = 0, *, where: str = "class_models") -> ClassModels:
    """:func:`class_model` for several classes at once (default: every class), one image each.

    The images form one batch: image ``k`` is seeded with ``e_{c_k}`` on the logits, and
    images do not interact in VGG, so each iterate equals its own :func:`class_model` run
    from the same start (the test checks it). ``start`` is ``(K, C, S, S)``; default
    N(0, 0.01^2) noise from ``seed``. Cost per step: one forward and one backward of a
    batch of ``K`` images.
    """
    if steps < 0 or not np.isfinite(lr) or lr <= 0 or not np.isfinite(l2) or l2 < 0:
        raise ValueError(f"{where}: need steps >= 0, lr > 0, l2 >= 0; got steps={steps}, lr={lr}, l2={l2}")
    cls = np.arange(model.num_classes) if classes is None else np.asarray(classes)
    if cls.ndim != 1 or cls.size == 0 or cls.dtype.kind not in "iu" or cls.min() < 0 or cls.max() >= model.num_classes:
        raise ValueError(f"{where}: classes must be a non-empty list of integers in [0, {model.num_classes}), "
                         f"got {classes!r}")
    shape = (len(cls), model.in_channels, model.input_size, model.input_size)
    img = ((0.01 * np.random.default_rng(seed).standard_normal(shape)).astype(model.dtype) if start is None
           else np.array(start, dtype=model.dtype))
    if img.shape != shape:
        raise ValueError(f"{where}: start must have shape {shape}, got {img.shape}")
    rows = np.arange(len(cls))
    seed_grad = np.zeros((len(cls), model.num_classes), dtype=model.dtype)
    seed_grad[rows, cls] = 1.0
    hist_s, hist_o = [], []
    for step in range(steps + 1):
        s = model.layers.forward(img)[rows, cls].astype(np.float64)
        hist_s.append(s)
        hist_o.append(s - l2 * (img.astype(np.float64) ** 2).sum(axis=(1, 2, 3)))
        if step == steps:
            break
        g = model.input_gradient(img, seed_grad)
        img = img + model.dtype.type(lr) * (g - model.dtype.type(2 * l2) * img)
    return ClassModels(cls, img, np.array(hist_s), np.array(hist_o))
