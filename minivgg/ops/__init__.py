"""The textbook: pure forward/backward functions, one file per op family.

Every op follows cs231n's contract ``out, cache = op_forward(...)`` /
``grads = op_backward(dout, cache)``, works in NCHW, and returns the dtype it
was given. Caches are NamedTuples.
"""

from .boxes import BOX_FORMATS, box_iou, cxcywh_to_xyxy, xyxy_to_cxcywh
from .conv import ALGORITHMS as CONV_ALGORITHMS
from .conv import Conv2dCache, conv2d_backward, conv2d_forward, conv_output_size
from .dense import DenseCache, dense_backward, dense_forward
from .dropout import DropoutCache, dropout_backward, dropout_forward
from .loss import l2_loss, softmax, softmax_cross_entropy
from .lrn import LRNCache, lrn_backward, lrn_forward
from .pool import MaxPoolCache, maxpool_backward, maxpool_forward, pool_output_size
from .relu import ReluCache, relu_backward, relu_forward

__all__ = [
    "BOX_FORMATS", "CONV_ALGORITHMS", "Conv2dCache", "DenseCache", "DropoutCache", "LRNCache", "MaxPoolCache", "ReluCache",
    "conv2d_backward", "conv2d_forward", "conv_output_size", "dense_backward", "dense_forward",
    "dropout_backward", "dropout_forward", "lrn_backward", "lrn_forward", "maxpool_backward", "maxpool_forward", "pool_output_size",
    "relu_backward", "relu_forward", "softmax", "softmax_cross_entropy",
    "box_iou", "cxcywh_to_xyxy", "l2_loss", "xyxy_to_cxcywh",
]
