"""Image-specific class saliency (Simonyan, Vedaldi & Zisserman 2013, §3).

.. math:: M_{ij} = \\max_c |w_{c,i,j}|, \\qquad w = \\partial S_k / \\partial I

the largest absolute input gradient over the colour channels, at each pixel.
Shapes: images ``(N, C, H, W)`` -> map ``(N, H, W)``. Cost: one forward + one backward.
"""

from __future__ import annotations

import numpy as np

from ..vgg import VGG
from .gradients import input_gradient


def saliency(model: VGG, x: np.ndarray, class_index: int) -> np.ndarray:
    """Saliency map ``(N, H, W)``: ``max_channels |dS_c/dx|`` for class ``class_index``."""
    return np.abs(input_gradient(model, x, class_index)).max(axis=1)
