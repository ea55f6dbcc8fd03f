"""Dense evaluation (paper §3.2): a VGG trained on 32x32 shapes classifies shapes placed anywhere on a 64x64 canvas.

    python examples/dense_evaluation.py CHECKPOINT   # a checkpoint of `minivgg train --data shapes`

1. Converts fc6/fc7/fc8 into convolutions and checks the converted network
   gives the same scores at 32x32.
2. Pastes each 32x32 test image at a random position of a 64x64 canvas filled
   with the image's own border colour; the fully convolutional network returns
   a 2x2 class score map, which is averaged into one score vector per image.
"""

import sys

import numpy as np

from minivgg import training as tr
from minivgg.training.dense_eval import to_dense
from minivgg.training.evaluate import accuracy


def main(path: str) -> None:
    model, ckpt = tr.model_from_checkpoint(path)
    data = tr.dataset_for_checkpoint(ckpt.meta)
    pre = ckpt.preprocess
    dense = to_dense(model)
    print(dense)
    x = pre(data.x_test)
    diff = np.abs(dense.scores(x) - model.forward(x)).max()
    print(f"training size 32x32: max |dense - original| score difference {diff:.2e} ({model.dtype})")
    print(f"original network, 32x32 test images: {accuracy(model.forward(x), data.y_test):.2%}")
    rng = np.random.default_rng(0)
    n, c, s, _ = x.shape
    big = np.empty((n, c, 2 * s, 2 * s), x.dtype)
    big[...] = x[:, :, :1, :1]  # the background colour of each image (its top-left pixel)
    for i, (oy, ox) in enumerate(rng.integers(0, s + 1, size=(n, 2))):
        big[i, :, oy:oy + s, ox:ox + s] = x[i]
    scores = dense.forward(big)
    print(f"64x64 canvases: score map {scores.shape[2:]} per image; "
          f"averaged scores {accuracy(scores.mean(axis=(2, 3)), data.y_test):.2%}, "
          f"with flips {accuracy(dense.predict_proba(big, flip=True), data.y_test):.2%}")


if __name__ == "__main__":
    main(sys.argv[1])
