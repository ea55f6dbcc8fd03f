"""Images in, class names out: the two preprocessing conventions real VGG weights were trained with.

Pretrained weights only give their published answers on inputs prepared the
way they were trained:

``"torchvision"`` (torchvision's ``vgg16-397923af.pth`` and friends)
    RGB; shorter side resized to 256 (bilinear, antialiased as Pillow does it),
    center crop 224; scale to [0, 1]; per channel
    ``(x - mean) / std`` with mean ``(0.485, 0.456, 0.406)``, std
    ``(0.229, 0.224, 0.225)``.
``"caffe"`` (alias ``"keras"``; the original Caffe VGG and Keras'
``vgg16_weights_tf_dim_ordering_tf_kernels.h5``)
    Resized straight to 224 x 224 (Keras' ``load_img`` default: nearest
    neighbour); channels reordered RGB -> BGR; values stay in [0, 255] and
    the BGR mean pixel ``(103.939, 116.779, 123.68)`` is subtracted.

Both return float32 NCHW ``(1, 3, S, S)``, the layout of :mod:`minivgg.vgg`.
Reading image files needs Pillow (``pip install minivgg[image]``); the
normalisation itself (:func:`normalize`) is plain NumPy.

The 1000 ImageNet class names ship in ``minivgg/io/resources/imagenet_classes.txt``,
one per line in torchvision's index order (0 "tench" ... 999 "toilet tissue").
"""

from __future__ import annotations

import os
import re
import warnings
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from .files import check_input_file

__all__ = [
    "CONVENTIONS", "TORCHVISION_MEAN", "TORCHVISION_STD", "CAFFE_MEAN_BGR",
    "normalize", "resize_shape", "center_crop_box", "load_image", "read_rgb", "imagenet_classes", "predict_topk",
]

TORCHVISION_MEAN = (0.485, 0.456, 0.406)  # RGB, on [0, 1] pixels
TORCHVISION_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # BGR, on [0, 255] pixels
CONVENTIONS = ("torchvision", "caffe", "keras")


def _convention(name: str) -> str:
    if name not in CONVENTIONS:
        raise ValueError(f"unknown preprocessing {name!r}; expected one of {CONVENTIONS}")
    return "caffe" if name == "keras" else name


def normalize(rgb: np.ndarray, convention: str = "torchvision") -> np.ndarray:
    """Colour-normalise an already-sized RGB image: ``(H, W, 3)`` in [0, 255] -> float32 ``(1, 3, H, W)``.

    torchvision: ``((x / 255) - mean) / std`` per RGB channel.
    caffe/keras: channels reversed to BGR, then ``x - mean_bgr``.
    Cost: a few elementwise passes over ``3 H W`` values.
    """
    conv = _convention(convention)
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"normalize: expected an RGB image of shape (H, W, 3), got {arr.shape}")
    if arr.dtype.kind not in "uif":
        raise TypeError(f"normalize: expected a numeric image, got dtype {arr.dtype}")
    x = arr.astype(np.float32)
    if conv == "torchvision":
        x = (x / np.float32(255.0) - np.asarray(TORCHVISION_MEAN, np.float32)) / np.asarray(TORCHVISION_STD, np.float32)
    else:
        x = x[:, :, ::-1] - np.asarray(CAFFE_MEAN_BGR, np.float32)  # RGB -> BGR, then the BGR mean pixel
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])  # (H, W, 3) -> (1, 3, H, W)


def resize_shape(width: int, height: int, shorter: int) -> tuple[int, int]:
    """torchvision's ``Resize(shorter)``: ``(new_w, new_h)`` with the short side ``shorter``.

    The long side is ``int(shorter * long / short)`` (truncated, as torchvision does).
    """
    if width <= height:
        return shorter, int(shorter * height / width)
    return int(shorter * width / height), shorter


def center_crop_box(width: int, height: int, size: int) -> tuple[int, int, int, int]:
    """torchvision's ``CenterCrop(size)`` box ``(left, top, right, bottom)``: offsets ``round((W - size) / 2)``."""
    if width < size or height < size:
        raise ValueError(f"center crop of {size} does not fit a {width}x{height} image")
    left, top = int(round((width - size) / 2.0)), int(round((height - size) / 2.0))
    return left, top, left + size, top + size


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError("reading image files needs Pillow: pip install minivgg[image]") from exc
    return Image


def load_image(path: str | os.PathLike, convention: str = "torchvision", size: int = 224,
               resize: int | None = None, interpolation: str | None = None) -> np.ndarray:
    """Read an image file and prepare it like the framework the weights came from.

    Parameters
    ----------
    path : path-like
        Any image Pillow reads (JPEG, PNG, ...); converted to RGB first.
    convention : {"torchvision", "caffe", "keras"}
        See the module docstring.
    size : int
        Side of the square network input (224 for the published weights).
    resize : int, optional
        torchvision only: the shorter side before cropping; default
        ``round(size * 256 / 224)`` (256 for 224).
    interpolation : {"bilinear", "nearest", "bicubic"}, optional
        Default ``"bilinear"`` for torchvision, ``"nearest"`` for caffe/keras
        (Keras' ``load_img`` default).

    Returns
    -------
    ndarray
        float32 ``(1, 3, size, size)``.
    """
    conv = _convention(convention)
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"load_image: size must be a positive int, got {size!r}")
    Image = _pillow()
    interpolation = interpolation or ("bilinear" if conv == "torchvision" else "nearest")
    modes = {"bilinear": Image.BILINEAR, "nearest": Image.NEAREST, "bicubic": Image.BICUBIC}
    if interpolation not in modes:
        raise ValueError(f"load_image: interpolation must be one of {sorted(modes)}, got {interpolation!r}")
    img = _open_rgb(path, Image)
    if conv == "torchvision":
        shorter = resize if resize is not None else int(round(size * 256 / 224))
        if shorter < size:
            raise ValueError(f"load_image: resize {shorter} is smaller than the crop {size}")
        img = img.resize(resize_shape(img.width, img.height, shorter), modes[interpolation])
        img = img.crop(center_crop_box(img.width, img.height, size))
    else:
        img = img.resize((size, size), modes[interpolation])
    return normalize(np.asarray(img), conv)


def _open_rgb(path: str | os.PathLike, Image: Any):
    """Open ``path`` with Pillow as an RGB image; clear one-line errors for missing, damaged or huge files."""
    check_input_file(path, "image", ValueError)
    try:
        with warnings.catch_warnings():
            # between Pillow's limit and twice it Pillow only warns, then decodes anyway: refuse those too
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img = img.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        raise ValueError(f"{path}: image has {size}, more than the {Image.MAX_IMAGE_PIXELS:,} Pillow decodes "
                         "safely (a decompression bomb?)") from None
    except FileNotFoundError:
        raise FileNotFoundError(f"image {path} does not exist (no such file)") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:  # unidentified or damaged files
        raise ValueError(f"{path}: cannot read image ({exc})") from None
    return img


def read_rgb(path: str | os.PathLike, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """An image file as float32 ``(3, size, size)`` RGB in [0, 1] (bilinear resize, no crop, no mean).

    For the small models ``minivgg train`` makes (their own preprocessing
    subtracts the training mean). Returns ``(image, (width, height))`` with
    the file's original size, so a box normalised to the image maps back to
    its pixels. Needs Pillow.
    """
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"read_rgb: size must be a positive int, got {size!r}")
    Image = _pillow()
    img = _open_rgb(path, Image)
    original = (img.width, img.height)
    if original != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / np.float32(255), original


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in torchvision's index order (0 "tench" ... 999 "toilet tissue")."""
    text = resources.files("minivgg.io").joinpath("resources/imagenet_classes.txt").read_text(encoding="utf-8")
    names = tuple(line for line in text.split("\n") if line)
    if len(names) != 1000:
        raise RuntimeError(f"minivgg/io/resources/imagenet_classes.txt has {len(names)} names, expected 1000 "
                           "(damaged install?)")
    return names


def predict_topk(model: Any, image_path: str | os.PathLike, k: int = 5,
                 preprocessing: str = "torchvision") -> list[tuple[int, str, float]]:
    """Top-``k`` classes of one image: ``[(class_index, class_name, probability), ...]``, most likely first.

    The image is prepared with ``preprocessing`` at the model's input size;
    probabilities are the softmax of the logits, computed in float64. Class
    names are ImageNet's when the model has 1000 outputs, ``"class <i>"``
    otherwise. Cost: one inference forward pass.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"predict_topk: k must be a positive int, got {k!r}")
    x = load_image(image_path, preprocessing, size=model.input_size).astype(model.dtype, copy=False)
    logits = np.asarray(model.forward(x), dtype=np.float64)[0]
    z = np.exp(logits - logits.max())  # shift by the max: exp never overflows
    probs = z / z.sum()
    names = imagenet_classes() if len(probs) == 1000 else tuple(f"class {i}" for i in range(len(probs)))
    top = np.argsort(-probs, kind="stable")[: min(k, len(probs))]
    return [(int(i), names[i], float(probs[i])) for i in top]
