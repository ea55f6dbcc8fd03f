"""Datasets, augmentation and mini-batches for training VGG (paper §3.1).

Simonyan & Zisserman (arXiv 1409.1556) §3.1 "Training": the only
pre-processing is "subtracting the mean RGB value, computed on the training
set, from each pixel" (§2.1); training images are randomly cropped (fixed
224x224 crops from rescaled images) and "underwent random horizontal flipping
and random RGB colour shift"; mini-batches of 256. Here, at CIFAR scale, one
module per job:

* :mod:`.shapes` -- :func:`make_shapes` / :func:`load_shapes`, an embedded,
  generated 10-class dataset (no download) whose label is carried only by
  *shape*: position, scale, rotation jitter, colours and noise are random, so
  a network must learn translation-invariant shape features, and a linear
  classifier on pixels fails.
* :mod:`.cifar10` -- :func:`load_cifar10`, the cs231n python pickle batches,
  read without executing pickled code.
* :mod:`.mnist` -- :func:`load_mnist`, MNIST / Fashion-MNIST idx files,
  optionally gzipped.
* :mod:`.augment` -- :func:`random_crop` (with zero padding, the CIFAR form of
  the paper's random crops), :func:`random_flip`, :func:`channel_mean` /
  :func:`subtract_mean`, :func:`to_float`.
* :mod:`.batches` -- :func:`iterate_minibatches` and :func:`batch_slices`,
  the one batching loop of :mod:`minivgg.training`.

Everything is NCHW. Randomness always comes from an explicit
``numpy.random.Generator``; augmentations preserve the dtype. The public
names are re-exported here, so ``from minivgg.training import data;
data.make_shapes(...)`` reads as one library.
"""

from __future__ import annotations

from .augment import channel_mean, random_crop, random_flip, subtract_mean, to_float
from .batches import batch_slices, iterate_minibatches
from .cifar10 import CIFAR10_CLASSES, load_cifar10
from .mnist import load_mnist
from .shapes import SHAPE_CLASSES, ShapesSplit, class_names, load_shapes, make_shapes

__all__ = [
    "SHAPE_CLASSES",
    "class_names",
    "ShapesSplit",
    "make_shapes",
    "load_shapes",
    "CIFAR10_CLASSES",
    "load_cifar10",
    "load_mnist",
    "random_crop",
    "random_flip",
    "channel_mean",
    "subtract_mean",
    "to_float",
    "iterate_minibatches",
    "batch_slices",
]
