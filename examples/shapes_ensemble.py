"""Train three VGG-11s on the embedded shapes (seeds 0, 1, 2), then compare them with their ensemble.

Each run uses ``minivgg train``'s
defaults; the script prints every model's validation curve, its wall time, the
test accuracy of each member and of the softmax average (paper §4.3), the same
with test-time flips (§3.2), and a linear softmax classifier on raw pixels as
the baseline the VGG must beat by far.

    python examples/shapes_ensemble.py [OUT_DIR]   # ~3 x 2-3 minutes on 2 cores

Checkpoints that already exist in OUT_DIR/seed{0,1,2} are reused, so this
also works on the output of ``minivgg train --data shapes --seed S --out OUT_DIR/seedS``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from minivgg.training import evaluate as ev
from minivgg import training as tr
from minivgg.training.transfer import fit_softmax


class PrintEpochs(tr.TrainCallback):
    """Print each epoch's history entry (the library reports through callbacks and prints nothing)."""

    def on_epoch_end(self, entry: dict) -> None:
        print(f"epoch {entry['epoch']}: val acc {entry['val_acc']:.3f}, {entry['seconds']:.0f} s")


def main(out: Path) -> None:
    data = tr.load_dataset("shapes")  # the defaults of `minivgg train --data shapes`
    models, names = [], []
    for seed in (0, 1, 2):
        run = out / f"seed{seed}"
        if not (run / tr.CHECKPOINT_NAME).exists():
            t0 = time.perf_counter()
            tr.train(data, tr.TrainConfig(seed=seed), out=run, callback=PrintEpochs())
            print(f"seed {seed}: {time.perf_counter() - t0:.0f} s wall time\n")
        model, ckpt = tr.model_from_checkpoint(run / tr.CHECKPOINT_NAME)
        print(f"seed {seed}: val acc per epoch " + ", ".join(f"{e['val_acc']:.3f}" for e in ckpt.meta["history"])
              + f"; {ckpt.meta['history'][-1]['seconds']:.0f} s of training")
        models.append(model)
        names.append(f"seed {seed}")
    for flip in (False, True):
        report = ev.evaluate_ensemble(models, data.x_test, data.y_test, transforms=data.preprocess, flip=flip)
        print("\n" + ev.format_ensemble_report(report, names))
    # The baseline: softmax regression on the (mean-subtracted) pixels of the same images.
    flat = lambda x: data.preprocess(x).reshape(len(x), -1)  # noqa: E731
    clf = fit_softmax(flat(data.x_train), data.y_train, data.num_classes)
    print(f"\nlinear softmax on raw pixels: {clf.score(flat(data.x_train), data.y_train):.1%} train, "
          f"{clf.score(flat(data.x_test), data.y_test):.1%} test accuracy")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/shapes"))
