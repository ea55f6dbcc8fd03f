"""The PyTorch twin of a minivgg model: the same layers and weights as ``torch.nn`` modules.

The benchmark's "x PyTorch" ratios compare minivgg with PyTorch's CPU kernels
running the same network on the same weights, so the twin is built from the
model's own :class:`~minivgg.configs.LayerSpec` list (no torchvision needed)
and the arrays are copied, never shared. torch is optional: it is imported
inside each function, so importing :mod:`minivgg.bench` never needs it.
"""

from __future__ import annotations

import contextlib

import numpy as np


def have_torch() -> bool:
    """Whether ``import torch`` works here."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def torch_model(model):
    """A ``torch.nn.Sequential`` with the same layers and weights as a minivgg ``model`` (float32/64 alike).

    Dense weights are transposed on the way: minivgg stores ``(D_in, D_out)``
    (``x @ w``), ``torch.nn.Linear`` stores ``(D_out, D_in)``.
    """
    import torch

    dtype = torch.float64 if model.dtype == np.float64 else torch.float32
    mods = []
    for layer, spec in zip(model.layers, model.specs):
        if spec.kind == "conv":
            m = torch.nn.Conv2d(spec.in_channels, spec.out_channels, spec.kernel, spec.stride, spec.pad)
            m.weight.data = torch.from_numpy(layer.params["w"].copy())
            m.bias.data = torch.from_numpy(layer.params["b"].copy())
        elif spec.kind == "dense":
            m = torch.nn.Linear(spec.in_channels, spec.out_channels)
            m.weight.data = torch.from_numpy(np.ascontiguousarray(layer.params["w"].T))
            m.bias.data = torch.from_numpy(layer.params["b"].copy())
        elif spec.kind == "relu":
            m = torch.nn.ReLU()
        elif spec.kind == "pool":
            m = torch.nn.MaxPool2d(spec.kernel, spec.stride)
        elif spec.kind == "flatten":
            m = torch.nn.Flatten()
        else:
            m = torch.nn.Dropout(spec.p)
        mods.append(m)
    return torch.nn.Sequential(*mods).to(dtype)


@contextlib.contextmanager
def torch_threads(n: int):
    """Context manager: ``torch.set_num_threads(n)`` for the body, restored after (no-op without torch).

    Yields the ``torch`` module, or ``None`` when torch is not installed.
    """
    try:
        import torch
    except ImportError:
        yield None
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield torch
    finally:
        torch.set_num_threads(old)
