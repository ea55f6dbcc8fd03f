"""minivgg: VGG-11/13/16/19 from scratch in NumPy + Numba.

For students of the forward and backward math of CNNs (cs231n lecture 9),
gradient-check exercises, and CPU benchmarking. Start with ``minivgg tour``.

>>> import minivgg
>>> model = minivgg.vgg16()                      # 138,357,544 parameters
>>> tiny = minivgg.VGG("vgg11", num_classes=10, input_size=32, width=0.125, fc_width=64)
"""

from ._version import __version__
from .configs import ARCHS, CONFIGS, VGGConfig, layer_specs
from .vgg import VGG, vgg11, vgg13, vgg16, vgg19

__all__ = ["ARCHS", "CONFIGS", "VGG", "VGGConfig", "layer_specs", "vgg11", "vgg13", "vgg16", "vgg19",
           "__version__"]
