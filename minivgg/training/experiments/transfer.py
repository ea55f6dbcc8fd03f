"""FC7 features transfer: a frozen net trained on some classes, a softmax on its FC7 for new ones.

cs231n lecture 9: "FC7 features generalize well to other tasks"; the VGG
paper's Appendix B: its ImageNet-trained D and E, frozen, with a linear SVM on
the penultimate-layer features, set the state of the art on PASCAL VOC-2007
and 2012 (89.7 / 89.3 mAP) and Caltech-101 / 256 (92.7 / 86.2%).

Here :func:`minivgg.training.transfer.transfer_experiment` does it on the
embedded shapes with the shared recipe (:mod:`.recipe`): config A is trained on
classes 0-4 only, frozen, and a softmax classifier is fitted on the FC7
(``relu7``) features of held-out classes 5-9 -- against the same classifier on
raw pixels and on FC7 of the same network before training.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..data import SHAPE_CLASSES
from ..datasets import load_dataset
from ..transfer import FEATURE_LAYER, transfer_experiment
from . import TITLES
from .base import ExperimentResult, Progress
from .recipe import ProgressCallback, arch_config, pick, train_config

TITLE = TITLES["transfer"]
PAPER = ("ImageNet-trained D/E frozen, linear SVM on the penultimate features: VOC-2007/2012 89.7/89.3 mAP, "
         "Caltech-101/256 92.7/86.2% (state of the art in 2014)")
COLUMNS = ["classifier on held-out classes", "test acc", "vs pixels (points)"]


def run(*, quick: bool = False, seed: int = 0, progress: Progress | None = None, arch: str = "vgg11",
        n_train: int | None = None, n_val: int | None = None, epochs: int | None = None, width: float | None = None,
        fc_width: int | None = None, n_target_train: int | None = None,
        n_target_test: int | None = None) -> ExperimentResult:
    """Train ``arch`` on shape classes 0-4 (``n_train`` images), transfer its FC7 to classes 5-9."""
    start = time.perf_counter()
    recipe = pick(quick, dict(n_train=n_train, n_val=n_val, epochs=epochs, width=width, fc_width=fc_width))
    n_target_train = n_target_train or (500 if quick else 1_000)
    n_target_test = n_target_test or (500 if quick else 1_000)
    source, target = list(SHAPE_CLASSES[:5]), list(SHAPE_CLASSES[5:])
    probe = load_dataset("shapes", n_train=1, n_val=1, data_seed=seed, classes=source)  # input size and channels
    cfg = arch_config(arch, probe, recipe)  # 5 classes: probe holds the source classes only
    r = transfer_experiment(seed, source=source, target=target, n_source_train=recipe.n_train,
                            n_source_val=recipe.n_val, n_target_train=n_target_train, n_target_test=n_target_test,
                            epochs=recipe.epochs, arch=cfg, config=train_config(recipe, seed),
                            callback=ProgressCallback(progress, f"{arch} on classes 0-4 (seed {seed})"))
    chance = 1 / len(target)
    rows = [[f"softmax on {r.layer} of the trained net (frozen)", r.feature_acc, 100 * (r.feature_acc - r.pixel_acc)],
            [f"softmax on {r.layer} of the same net untrained", r.random_feature_acc,
             100 * (r.random_feature_acc - r.pixel_acc)],
            ["softmax on raw pixels", r.pixel_acc, 0.0],
            ["chance", chance, 100 * (chance - r.pixel_acc)]]
    if r.feature_acc > max(r.pixel_acc, r.random_feature_acc):
        how = (f"beat raw pixels by {100 * (r.feature_acc - r.pixel_acc):.1f} points and the untrained net's "
               f"{r.layer} by {100 * (r.feature_acc - r.random_feature_acc):.1f}: the features transfer")
    else:
        how = (f"do NOT beat both baselines (pixels {r.pixel_acc:.1%}, untrained {r.layer} "
               f"{r.random_feature_acc:.1%}): no transfer shown")
    verdict = (f"a net trained on {', '.join(source)} ({r.source_val_acc:.1%} on its own validation split) gives "
               f"{r.layer} features on which a softmax scores {r.feature_acc:.1%} on the unseen classes "
               f"{', '.join(target)}; they {how}.")
    notes = [f"source and target are both shapes (a near task: the paper moved from ImageNet to VOC/Caltech); "
             f"{r.n_target_train:,} target training and {r.n_target_test:,} test images, {FEATURE_LAYER} is "
             f"{recipe.fc_width} wide here (4096 in the paper)",
             "the classifier is multinomial logistic regression (fit_softmax), not the paper's linear SVM"]
    data = {"recipe": recipe.to_json(), "arch": arch, "source_classes": r.source_classes,
            "target_classes": r.target_classes, "layer": r.layer, "source_val_acc": r.source_val_acc,
            "feature_acc": r.feature_acc, "random_feature_acc": r.random_feature_acc, "pixel_acc": r.pixel_acc,
            "chance": chance, "n_target_train": r.n_target_train, "n_target_test": r.n_target_test,
            "history": r.history}
    return ExperimentResult("transfer", TITLE, COLUMNS, rows, PAPER, verdict, quick, time.perf_counter() - start,
                            notes, data)


def plot(result: ExperimentResult, path: str | Path) -> Path:
    """Held-out-class accuracy of the three classifiers, chance as a line."""
    from .plotting import figure, save

    fig, (ax,) = figure(1, result.title, size=(6.0, 3.6))
    d = result.data
    names = [f"{d['layer']} trained", f"{d['layer']} untrained", "raw pixels"]
    ax.bar(names, [d["feature_acc"], d["random_feature_acc"], d["pixel_acc"]], color=["C1", "C0", "C7"])
    ax.axhline(d["chance"], color="k", ls="--", lw=0.8, label="chance")
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"test accuracy, {len(d['target_classes'])} held-out classes")
    ax.legend(fontsize=8)
    return save(fig, path)
