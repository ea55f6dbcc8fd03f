"""Ensembles win: several independently trained nets, each alone vs their averaged softmax (paper §4.3).

Simonyan & Zisserman §4.3 "ConvNet fusion": averaging the soft-max class
posteriors of several models "improves the performance due to
complementarity of the models"; their 7-net ILSVRC-2014 submission reached
7.3% top-5 test error, and after the submission an ensemble of only the two
best nets (D and E, multi-scale and dense + multi-crop evaluation) 6.8%
(Table 7), while the best single net (same evaluation) had 7.0%.

Here ``M`` copies of config A (the shared recipe, :mod:`.recipe`) differ only
in their training seed. Each member's softmax on the test split is kept (in
``data["member_test_proba"]``) so that the ensemble -- their plain mean, as in
:func:`minivgg.training.evaluate.ensemble_proba` -- can be recomputed from the
JSON. The best pair is chosen on the validation split (choosing it on the
test split would flatter it) and scored on the test split.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..evaluate import accuracy, ensemble_proba
from . import TITLES
from .base import ExperimentResult, Progress
from .recipe import check_seeds, load_data, pick, train_net, warm_up

TITLE = TITLES["ensemble"]
PAPER = ("ILSVRC-2014 (ImageNet test): 7-net ensemble 7.3% top-5 error; after the submission the best 2 nets "
         "(D and E, multi-scale dense + multi-crop) 6.8%, vs 7.0% for the best single net")
COLUMNS = ["model", "seeds", "val acc", "test acc", "test err %", "vs best member (points)"]


def run(*, quick: bool = False, seed: int = 0, progress: Progress | None = None, seeds: Sequence[int] | None = None,
        arch: str = "vgg11", n_train: int | None = None, n_val: int | None = None, epochs: int | None = None,
        width: float | None = None, fc_width: int | None = None) -> ExperimentResult:
    """Train one ``arch`` per training seed (default: quick 3, full 5 seeds from ``seed``) and ensemble them."""
    start = time.perf_counter()
    recipe = pick(quick, dict(n_train=n_train, n_val=n_val, epochs=epochs, width=width, fc_width=fc_width))
    seeds = check_seeds(seeds if seeds is not None else range(seed, seed + (3 if quick else 5)), "ensemble")
    if len(seeds) < 2:
        raise ValueError(f"ensemble: an ensemble needs at least 2 seeds, got {seeds!r}")
    data = load_data(recipe, data_seed=seed)
    warm_up([arch], data, recipe)
    members = [train_net(arch, data, recipe, s, progress, f"member {i + 1}/{len(seeds)} ({arch} seed {s})")
               for i, s in enumerate(seeds)]
    models = [m.model for m in members]
    if progress is not None:
        progress(f"scoring {len(models)} members and their ensembles on {len(data.y_test):,} test images")
    mean_val, val_p = ensemble_proba(models, data.x_val, transforms=data.preprocess)
    mean_test, test_p = ensemble_proba(models, data.x_test, transforms=data.preprocess)
    yv, yt = data.y_val, data.y_test
    val_acc = [accuracy(p, yv) for p in val_p]
    test_acc = [accuracy(p, yt) for p in test_p]
    best_member = max(test_acc)
    rows = [[f"member {i + 1}", str(s), va, ta, 100 * (1 - ta), 100 * (ta - best_member)]
            for i, (s, va, ta) in enumerate(zip(seeds, val_acc, test_acc))]
    pair_acc = {ij: accuracy((val_p[ij[0]] + val_p[ij[1]]) / 2, yv)
                for ij in itertools.combinations(range(len(models)), 2)}
    pair = max(pair_acc, key=pair_acc.get)  # chosen on validation (the first best pair on a tie)
    pair_val = pair_acc[pair]
    pair_test = accuracy((test_p[pair[0]] + test_p[pair[1]]) / 2, yt)
    ens_val = accuracy(mean_val, yv)
    ens_test = accuracy(mean_test, yt)
    rows.append(["best pair (on val)", f"{seeds[pair[0]]},{seeds[pair[1]]}", pair_val, pair_test,
                 100 * (1 - pair_test), 100 * (pair_test - best_member)])
    rows.append([f"ensemble of {len(models)}", ",".join(map(str, seeds)), ens_val, ens_test, 100 * (1 - ens_test),
                 100 * (ens_test - best_member)])
    gain = ens_test - best_member
    mean_member = float(np.mean(test_acc))
    if gain > 0:
        how = f"beats the best member by {gain * 100:.2f} points"
    elif gain == 0:
        how = "ties the best member"
    else:
        how = f"falls {-gain * 100:.2f} points short of the best member"
    verdict = (f"the {len(models)}-net ensemble scores {ens_test:.2%} on the test split and {how} "
               f"({best_member:.2%}; members average {mean_member:.2%}); test error {1 - best_member:.2%} -> "
               f"{1 - ens_test:.2%}, a {(1 - ens_test) / (1 - best_member) if best_member < 1 else float('nan'):.2f}x "
               f"error ratio; the best pair on validation scores {pair_test:.2%}.")
    notes = [f"members are config A ({arch}) differing only in the training seed (same data, same recipe: "
             f"{recipe.n_train:,} shapes, {recipe.epochs} epochs); the paper fused different configs and scales",
             "accuracy is top-1 on the shapes' test split; no flip or multi-crop averaging"]
    data_out = {"recipe": recipe.to_json(), "seeds": seeds, "arch": arch, "test_labels": yt.tolist(),
                "member_test_proba": [p.tolist() for p in test_p], "member_val_acc": val_acc,
                "member_test_acc": test_acc, "ensemble_test_acc": ens_test, "best_pair": [seeds[i] for i in pair],
                "best_pair_test_acc": pair_test, "histories": [m.history for m in members]}
    return ExperimentResult("ensemble", TITLE, COLUMNS, rows, PAPER, verdict, quick, time.perf_counter() - start,
                            notes, data_out)


def plot(result: ExperimentResult, path: str | Path) -> Path:
    """Test accuracy of each member, the best pair and the ensemble."""
    from .plotting import figure, save

    fig, (ax,) = figure(1, result.title, size=(6.0, 3.6))
    names = [r[0] for r in result.rows]
    accs = [r[3] for r in result.rows]
    colors = ["C0"] * (len(names) - 2) + ["C2", "C1"]
    ax.bar(range(len(names)), accs, color=colors)
    ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    ax.axhline(max(accs[:-2]), color="k", lw=0.8, ls="--", label="best member")
    lo = min(accs)
    ax.set_ylim(max(0.0, lo - 0.05), min(1.0, max(accs) + 0.02))
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8)
    return save(fig, path)
