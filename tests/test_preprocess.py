"""minivgg.io.images: torchvision and Caffe/Keras conventions, class names, top-k prediction.

Expected values are written out from the conventions' definitions (constants
typed here, not imported from the module under test).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from minivgg.io import images as P
from minivgg.vgg import VGG

Image = pytest.importorskip("PIL.Image")

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])
BGR_MEAN = np.array([103.939, 116.779, 123.68])


def pixels(h: int, w: int) -> np.ndarray:
    """An image with a different value in every pixel and channel (so crops/orders are visible)."""
    r, c = np.mgrid[0:h, 0:w]
    return np.stack([10 * r + c, 50 + 20 * c + r, 255 - 30 * c - r], axis=-1).astype(np.uint8)


def png(tmp_path, rgb: np.ndarray, name="img.png"):
    path = tmp_path / name
    Image.fromarray(rgb, "RGB").save(path)
    return path


def test_normalize_by_hand():
    rgb = np.array([[[255, 0, 128], [10, 20, 30]]], dtype=np.uint8)  # (1, 2, 3)
    x = P.normalize(rgb, "torchvision")
    assert x.shape == (1, 3, 1, 2) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, 0, 0], [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225],
                               rtol=1e-6)
    c = P.normalize(rgb, "caffe")
    np.testing.assert_allclose(c[0, :, 0, 1], [30 - 103.939, 20 - 116.779, 10 - 123.68], rtol=1e-6)  # B, G, R
    np.testing.assert_array_equal(P.normalize(rgb, "keras"), c)
    with pytest.raises(ValueError, match="unknown preprocessing 'tf'"):
        P.normalize(rgb, "tf")
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        P.normalize(rgb[..., :2], "caffe")


def test_torchvision_geometry():
    assert P.resize_shape(500, 375, 256) == (341, 256)  # int(256 * 500 / 375) = int(341.33)
    assert P.resize_shape(375, 500, 256) == (256, 341)
    assert P.resize_shape(300, 300, 256) == (256, 256)
    assert P.center_crop_box(341, 256, 224) == (58, 16, 282, 240)  # round(58.5) = 58, as Python rounds
    assert P.center_crop_box(5, 3, 2) == (2, 0, 4, 2)  # round(1.5) = 2, round(0.5) = 0
    with pytest.raises(ValueError, match="does not fit"):
        P.center_crop_box(100, 50, 64)


def test_load_image_torchvision_crop_and_normalise(tmp_path):
    rgb = pixels(3, 5)
    # shorter side already 3 -> no resize; crop 2 at left 2, top 0
    x = P.load_image(png(tmp_path, rgb), "torchvision", size=2, resize=3)
    want = ((rgb[0:2, 2:4] / 255.0 - MEAN) / STD).transpose(2, 0, 1)[None]
    np.testing.assert_allclose(x, want, rtol=1e-5, atol=1e-6)
    # negative control: a crop one pixel to the left is different, so the check above pins the offset
    off = ((rgb[0:2, 1:3] / 255.0 - MEAN) / STD).transpose(2, 0, 1)[None]
    assert np.abs(off - want).max() > 0.1


def test_load_image_torchvision_resizes_shorter_side(tmp_path):
    flat = np.zeros((30, 40, 3), np.uint8)
    flat[...] = (200, 100, 50)
    x = P.load_image(png(tmp_path, flat), size=8)  # resize 9 -> (12, 9), crop 8
    assert x.shape == (1, 3, 8, 8)
    want = (np.array([200, 100, 50]) / 255.0 - MEAN) / STD
    np.testing.assert_allclose(x[0].reshape(3, -1), np.repeat(want[:, None], 64, axis=1), rtol=1e-5)


def test_load_image_caffe_nearest_bgr_mean(tmp_path):
    rgb = pixels(2, 2)
    x = P.load_image(png(tmp_path, rgb), "keras", size=4)  # nearest 2x upscale: each pixel becomes a 2x2 block
    want = np.empty((3, 4, 4))
    for y in range(4):
        for xx in range(4):
            r, g, b = rgb[y // 2, xx // 2]
            want[:, y, xx] = [b - 103.939, g - 116.779, r - 123.68]
    np.testing.assert_allclose(x[0], want, rtol=1e-6, atol=1e-4)


def test_image_errors(tmp_path, monkeypatch):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.png: cannot read image"):
        P.load_image(bad)
    with pytest.raises(FileNotFoundError):
        P.load_image(tmp_path / "missing.png")
    monkeypatch.setitem(sys.modules, "PIL", None)  # Pillow not installed
    with pytest.raises(ImportError, match=r"pip install minivgg\[image\]"):
        P.load_image(bad)


def test_imagenet_classes():
    names = P.imagenet_classes()
    assert len(names) == 1000 and len(set(names)) == 1000
    assert (names[0], names[1], names[281], names[285], names[999]) == (
        "tench", "goldfish", "tabby", "Egyptian cat", "toilet tissue")
    assert (names[134], names[517], names[638], names[639]) == ("crane bird", "crane", "maillot", "maillot tank suit")


def test_predict_topk(tmp_path):
    model = VGG("vgg11", num_classes=1000, input_size=32, width=0.0625, fc_width=8)
    bias = np.zeros(1000)
    bias[[285, 281, 1, 0, 999]] = [4.0, 3.0, 2.0, 1.0, 0.5]
    # fc8.w = 0: the logits are the bias whatever the image, so the probabilities are softmax(bias)
    model.load_params({"fc8.w": np.zeros((8, 1000)), "fc8.b": bias}, strict=False)
    image = png(tmp_path, pixels(40, 40))
    top = P.predict_topk(model, image, k=5)
    denom = 995 + np.exp(4) + np.exp(3) + np.exp(2) + np.exp(1) + np.exp(0.5)
    assert [(i, n) for i, n, _ in top] == [(285, "Egyptian cat"), (281, "tabby"), (1, "goldfish"), (0, "tench"),
                                          (999, "toilet tissue")]
    np.testing.assert_allclose([p for _, _, p in top],
                               [np.exp(4) / denom, np.exp(3) / denom, np.exp(2) / denom, np.e / denom,
                                np.exp(0.5) / denom], rtol=1e-6)
    small = VGG("vgg11", num_classes=3, input_size=32, width=0.0625, fc_width=8)
    top = P.predict_topk(small, image, k=10, preprocessing="caffe")
    assert len(top) == 3 and {n for _, n, _ in top} == {"class 0", "class 1", "class 2"}
    assert abs(sum(p for _, _, p in top) - 1.0) < 1e-9
    with pytest.raises(ValueError, match="k must be a positive int"):
        P.predict_topk(small, image, k=0)
